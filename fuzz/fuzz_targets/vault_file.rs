//! A whole vault file: `devc_vault::SealedVault::parse`, then `open` with
//! a fixed key (slots, commitment, header MAC, payload AEAD, payload JSON).
//!
//! The seeds include vaults that the fixed key opens (the `ok-keyfile`
//! test vector and vaults made for the corpus), so the fuzzer reaches the
//! payload only with inputs that keep their cryptography intact.
//!
//! Oracles:
//! - one spelling: what parses re-renders, from its parsed values, to the
//!   same bytes up to the salt line (id, created, every slot line);
//! - what opens seals again (fresh salt) into a file that parses and opens
//!   to the same id, creation time, slots and payload.
#![no_main]

use std::sync::LazyLock;

use devc_vault::{Key, SealedVault, hex};
use devc_vault_fuzz::fixed_secret;
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<Key> = LazyLock::new(|| Key::Secret(fixed_secret()));

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = SealedVault::parse(data.to_vec()) else {
        return;
    };
    let mut head = format!(
        "devc-vault v1\nid {}\ncreated {}\n",
        sealed.id, sealed.created
    );
    for s in &sealed.slots {
        head.push_str(&s.to_line());
        head.push('\n');
    }
    head.push_str(&format!("salt {}\n", hex::encode(sealed.salt())));
    assert!(
        data.starts_with(head.as_bytes()),
        "the header has a second spelling of a value"
    );

    let Ok(vault) = sealed.open(&KEY) else {
        return;
    };
    let bytes = vault.seal().expect("an opened vault seals");
    let again = SealedVault::parse(bytes)
        .expect("a sealed vault parses")
        .open(&KEY)
        .expect("a sealed vault opens with the key that opened it");
    assert_eq!(again.id(), vault.id());
    assert_eq!(again.created(), vault.created());
    assert_eq!(again.slots(), vault.slots());
    assert_eq!(again.payload(), vault.payload());
});
