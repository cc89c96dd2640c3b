//! Support for devc-vault's end-to-end tests: building and locating the
//! workspace binaries, the one fixture every test runs them in, requiring
//! external tools, and starting (and always stopping) real servers.
#![forbid(unsafe_code)]

pub mod agent;
pub mod bins;
pub mod container_script;
pub mod debian_image;
pub mod devcontainer;
pub mod docker;
pub mod fixture;
pub mod git_http;
pub mod image;
pub mod leak_scan;
pub mod pass_store;
pub mod podman;
pub mod process;
pub mod random_input;
pub mod registry;
pub mod rootless;
pub mod scratch;
pub mod skopeo;
pub mod strace;
pub mod token_registry;
pub mod tools;
