//! The wire protocols of Docker's and git's credential helpers, served from a devc-vault vault.
#![forbid(unsafe_code)]

pub mod docker;
pub mod git;
#[cfg(test)]
mod random_input;
