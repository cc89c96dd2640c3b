//! `slot remove` against the holder of the removed key (issue 8, "Prove
//! it"): someone who kept the removed key file and a copy of the vault from
//! before the removal recovers that version's master key, and it opens
//! neither the current file nor anything written after.

use std::fs;
use std::sync::Arc;

use devc_vault::{
    AccessKeys, Key, KeyService, MasterKey, SealedVault, Slot, Store, VaultId, keyfile,
};
use devc_vault_tests::fixture::Fixture;
use devc_vault_tests::fixture::sample::SERVER;

fn read(path: &std::path::Path) -> SealedVault {
    Store::new(path).read().expect("read a vault")
}

/// Everything the holder of K2 and the old copy can try on `sealed`.
#[track_caller]
fn assert_locked_out(sealed: &SealedVault, old_vmk: &MasterKey, k2: &Key, what: &str) {
    assert!(
        sealed.open_with_master(old_vmk.clone()).is_err(),
        "{what}: the old master key opens it"
    );
    assert!(sealed.open(k2).is_err(), "{what}: the removed key opens it");
    assert!(
        sealed.unwrap_master(k2).is_err(),
        "{what}: the removed key unwraps a slot"
    );
    // The old master key's keys moved onto this version's salt, as an
    // agent would derive them.
    let keys = AccessKeys::derive(old_vmk, *sealed.salt());
    assert!(
        sealed
            .open(&Key::Delegated(keys, Arc::new(NoWrites)))
            .is_err(),
        "{what}: keys derived from the old master key open it"
    );
}

#[test]
fn the_removed_key_and_an_old_copy_open_nothing_written_after_the_removal() {
    let Some(env) = Fixture::build("atk-slotrm").sample_entry().create() else {
        return;
    };
    // init with K1 (the fixture's key), then a second key-file slot K2.
    let k2_path = env.path().join("secrets/k2");
    let k2s = k2_path.display().to_string();
    env.cli_ok(&["slot", "add", "keyfile", &k2s, &env.key_arg()], None);
    let k2_secret = keyfile::read(&k2_path).expect("K2");
    let k2 = Key::Secret(k2_secret.clone());
    // The holder of K2 keeps a copy of the vault, as a container would.
    let old_path = env.path().join("old.credentials.enc");
    fs::copy(env.vault(), &old_path).expect("copy the vault");
    assert!(
        env.cli(&["list", "--key-file", &k2s], None).success(),
        "control: K2 opens the vault before the removal"
    );

    env.cli_ok(
        &[
            "slot",
            "remove",
            &keyfile::key_id(&k2_secret),
            &env.key_arg(),
        ],
        None,
    );
    env.cli_ok(
        &[
            "add",
            "docker",
            &env.key_arg(),
            "--server",
            "after-remove.example",
            "--username",
            "u",
        ],
        Some(b"written-after-the-removal"),
    );

    // The attack: K2 and the old copy give that version's master key...
    let old = read(&old_path);
    let old_vmk = old.unwrap_master(&k2).expect("K2 still opens the old copy");
    let opened = old.open_with_master(old_vmk.clone()).expect("the old copy");
    assert!(
        opened.find_docker(SERVER).is_some(),
        "control: the old copy's entry"
    );
    // ...which opens neither the current file...
    let current = read(&env.vault());
    assert_locked_out(&current, &old_vmk, &k2, "the current vault");
    let k1 = Key::Secret(keyfile::read(&env.key()).expect("K1"));
    let new_vmk = current.unwrap_master(&k1).expect("K1 opens it");
    assert!(new_vmk != old_vmk, "slot remove replaced the master key");
    // ...nor anything written after.
    env.cli_ok(
        &[
            "add",
            "docker",
            &env.key_arg(),
            "--server",
            "later.example",
            "--username",
            "u",
        ],
        Some(b"written-later-still"),
    );
    let later = read(&env.vault());
    assert_locked_out(&later, &old_vmk, &k2, "a later version");
    // Through the CLI as well: K2 is refused, the vault unchanged.
    let before = fs::read(env.vault()).expect("vault");
    let out = env.cli(&["list", "--key-file", &k2s], None);
    assert!(!out.success(), "{}", out.describe());
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.describe());
    let out = env.cli(
        &[
            "add",
            "docker",
            "--key-file",
            &k2s,
            "--server",
            "x.example",
            "--username",
            "u",
        ],
        Some(b"k2-write"),
    );
    assert!(!out.success(), "{}", out.describe());
    assert_eq!(fs::read(env.vault()).expect("vault"), before);
    // The slot is gone from the file, not just unusable.
    let id = keyfile::key_id(&k2_secret);
    assert!(
        later.slots.iter().all(|s| s.id.to_string() != id),
        "K2's slot is still listed"
    );
}

#[derive(Debug)]
struct NoWrites;

impl KeyService for NoWrites {
    fn write_keys(&self, _: &VaultId, _: &[Slot]) -> devc_vault::Result<AccessKeys> {
        Err(devc_vault::Error::KeyService {
            reason: "the attacker does not write".into(),
        })
    }
}
