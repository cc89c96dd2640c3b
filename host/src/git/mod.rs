//! git's side: its credential-helper list and the host's own helpers.

pub mod config;
pub mod import;
