//! devc-vault CLI.
#![forbid(unsafe_code)]
fn main() {}
