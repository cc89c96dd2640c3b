//! The docker credential helper's stdin, per verb, parsers only:
//! `parse_server_url` (`get`, `erase`) and `parse_store` (`store`), plus
//! `parse_credentials` (how a chained helper's answer is read).
//!
//! Oracles: a server URL is non-empty, one line, already trimmed; a
//! `store` request has a server URL and a user name; credentials survive
//! `encode_credentials` (the Go-compatible encoder of `get` replies)
//! and parse back equal, also as a `store` request.
#![no_main]

use devc_helper::docker::protocol::{
    encode_credentials, parse_credentials, parse_server_url, parse_store,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(url) = parse_server_url(data) {
        assert!(!url.is_empty());
        assert!(!url.contains('\n'), "a server URL kept a line break");
        assert_eq!(url.trim(), url, "a server URL was not trimmed");
    }
    if let Ok(c) = parse_credentials(data) {
        let out = encode_credentials(&c);
        let back = parse_credentials(&out).expect("an encoded reply parses");
        assert_eq!(back, c, "encode_credentials does not round-trip");
    }
    if let Ok(c) = parse_store(data) {
        assert!(!c.server_url.is_empty() && !c.username.is_empty());
        let out = encode_credentials(&c);
        assert_eq!(
            parse_store(&out).ok(),
            Some(c),
            "a re-encoded store differs"
        );
    }
});
