//! `docker-credential-devc-encrypted`: the Docker credential-helper protocol
//! (`get`, `store`, `erase`, `list`, `version`) served from the vault.

pub mod client;
pub mod credstore;
pub mod protocol;

pub use credstore::{Helper, Reply};
