//! OCI runtime bundles (runtime-spec 1.1+): a [`crate::spec::Spec`] converts to a bundle's
//! config.json (`launch export oci`) and from one (`launch run --bundle`).

pub mod import;
