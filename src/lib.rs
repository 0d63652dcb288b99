//! `launch`: a TOML manifest → validated [`plan::Plan`] → executed container.

pub mod cli;
pub mod ctl;
pub mod diag;
pub mod error;
pub mod exec;
pub mod exit;
pub mod host;
pub mod manifest;
pub mod plan;
pub mod schema;
pub mod sys;
pub mod validate;
