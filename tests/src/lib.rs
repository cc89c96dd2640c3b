//! Support for devc-vault's end-to-end tests: locating the built binaries,
//! requiring external tools, and starting (and always stopping) real servers.
#![forbid(unsafe_code)]

pub mod debian_image;
pub mod devcontainer;
pub mod docker;
pub mod git_http;
pub mod image;
pub mod leak_scan;
pub mod podman;
pub mod process;
pub mod random_input;
pub mod registry;
pub mod rootless;
pub mod scratch;
pub mod skopeo;
pub mod tools;
