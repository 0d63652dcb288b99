//! `launch export oci`: a Spec becomes an OCI runtime bundle.
