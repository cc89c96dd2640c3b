//! The payload JSON parser reached the way an attacker who holds a key
//! would reach it: any plaintext, sealed by `devc_vault_fuzz::Sealer` (an
//! independent implementation of docs/FORMAT.md) into a vault that the
//! fixed key opens, then `SealedVault::parse` and `open`.
//!
//! Oracles:
//! - the vault opens exactly when `Payload::from_json` accepts the
//!   plaintext, to the same payload (and otherwise fails with the same
//!   error): opening adds nothing to and takes nothing from the parser;
//! - every failure is a payload error (the sealing is always intact);
//! - what opens seals again and opens to the same payload.
#![no_main]

use std::sync::LazyLock;

use devc_vault::{Error, Key, Payload, SealedVault};
use devc_vault_fuzz::{Sealer, fixed_secret};
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<Key> = LazyLock::new(|| Key::Secret(fixed_secret()));
static SEALER: LazyLock<Sealer> = LazyLock::new(Sealer::new);

fuzz_target!(|plaintext: &[u8]| {
    let file = SEALER.seal(plaintext);
    let sealed = SealedVault::parse(file).expect("the sealer writes a well-formed vault");
    let direct = Payload::from_json(plaintext);
    match (sealed.open(&KEY), direct) {
        (Ok(vault), Ok(p)) => {
            assert_eq!(vault.payload(), &p);
            assert_eq!(vault.created(), Sealer::CREATED);
            let again = SealedVault::parse(vault.seal().expect("seals"))
                .expect("parses")
                .open(&KEY)
                .expect("opens");
            assert_eq!(again.payload(), &p);
        }
        (Err(e), Err(d)) => {
            assert!(
                matches!(e, Error::MalformedPayload { .. } | Error::Oversized { .. }),
                "an intact vault failed outside its payload: {e:?}"
            );
            assert_eq!(e.to_string(), d.to_string());
        }
        (Ok(_), Err(d)) => panic!("the vault opened but its payload alone fails: {d}"),
        (Err(e), Ok(_)) => panic!("the payload parses alone but the vault fails: {e}"),
    }
});
