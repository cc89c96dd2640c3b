//! `devc_vault::keyfile::parse`: a key file's bytes (a mounted secret, a
//! `key_command`'s output).
//!
//! Oracle: one spelling. Whatever parses is exactly the canonical line,
//! with or without its newline, and renders back to the same secret.
#![no_main]

use devc_vault::keyfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(secret) = keyfile::parse(data) else {
        return;
    };
    let line = keyfile::render(&secret);
    assert!(
        data == line.as_bytes() || data == line.trim_end_matches('\n').as_bytes(),
        "a second spelling of a key line was accepted"
    );
    let again = keyfile::parse(line.as_bytes()).expect("a rendered line parses");
    assert_eq!(again.expose(), secret.expose());
});
