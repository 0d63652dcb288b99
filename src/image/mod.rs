//! Images: references, registry credentials, and pulling from OCI distribution registries into
//! the content-addressed store (docs/images.md).

pub mod auth;
pub mod reference;
pub mod registry;
