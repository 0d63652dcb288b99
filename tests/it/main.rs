//! Integration tests: one binary, one module per area.

mod caps;
mod cli;
mod common;
mod devices;
mod diagnostics;
mod fixtures;
mod fuzz;
mod image_cancel;
mod image_root;
mod limits;
mod masked_paths;
mod oci_export;
mod oci_import;
mod oci_roundtrip;
mod plans;
mod registry;
mod rollback;
mod run;
mod schema;
mod seccomp;
mod security;
mod store;
mod supervise;
mod tar_extract;
mod trust;
mod writable;
