//! The wire protocols of Docker's and git's credential helpers, served from
//! a devc-vault vault: everything the two helper binaries run, and nothing
//! else (host-side setup lives in `devc-host`).
#![forbid(unsafe_code)]

pub mod docker;
pub mod git;
pub mod io;
