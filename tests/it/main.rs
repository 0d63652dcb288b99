//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod diagnostics;
mod fuzz;
mod plans;
mod schema;
mod tar_extract;
