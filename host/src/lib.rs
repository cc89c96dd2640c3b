//! Host-side setup for devc-vault: reading and editing docker's and git's
//! configuration (what `devc-vault install` writes and `devc-vault doctor`
//! checks, through the same code), and importing the credentials the host
//! already has (`devc-vault seal`), and keeping what was sealed fresh
//! (`devc-vault seal --refresh`, the agent's `--refresh-every`).
#![forbid(unsafe_code)]

pub mod docker;
pub mod git;
pub mod refresh;
pub mod token;
