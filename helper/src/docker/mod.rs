//! `docker-credential-devc-encrypted`: the Docker credential-helper protocol
//! (`get`, `store`, `erase`, `list`, `version`) served from the vault.

pub mod chain;
pub mod config;
pub mod credstore;
pub mod protocol;
pub mod seal;
pub mod server;

pub use credstore::{Helper, Reply, raw_stdin};
