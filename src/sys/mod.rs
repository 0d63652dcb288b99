//! One module per kernel facility. Each holds the parent (host) side and the child (container) side
//! of its facility together.

pub mod tar;
