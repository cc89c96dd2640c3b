//! Host-side setup for devc-vault: reading and editing docker's and git's
//! configuration (what `devc-vault install` writes and `devc-vault doctor`
//! checks, through the same code), and importing the credentials the host
//! already has (`devc-vault seal`), keeping what was sealed fresh
//! (`devc-vault seal --refresh`, the agent's `--refresh-every`), and the
//! dev-container setup (`devc-vault devcontainer`: the workspace's
//! devcontainer.json).
#![forbid(unsafe_code)]

pub mod devcontainer;
pub mod docker;
pub mod git;
pub mod refresh;
pub mod token;
