//! Docker's side: its config file (`config.json`) and the host's stores.

pub mod config;
pub mod import;
