//! `devc_vault::Payload::from_json` alone (the decrypted payload), which
//! is public: no cryptography in the way, so the most executions per
//! second for the JSON grammar and the entry checks.
//!
//! Oracles (docs/FORMAT.md, "Forward compatibility"): what parses
//! serializes to JSON that parses to an equal payload (unknown fields
//! included), and serializing is stable: the second `to_json` is the
//! first, byte for byte.
#![no_main]

use devc_vault::Payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Payload::from_json(data) else {
        return;
    };
    let json = p.to_json();
    let again = Payload::from_json(&json).expect("what to_json writes parses");
    assert_eq!(again, p, "a read-modify-write changed the payload");
    assert_eq!(again.to_json(), json, "to_json is not stable");
});
