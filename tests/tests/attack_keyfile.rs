//! The key-file road against the container's own code (issue 8, "Prove
//! it"): the container can read the mounted key file, so it has the key
//! itself, not just access: a copy opens every version the host writes,
//! `lock` changes nothing, and the copy can even add a slot of its own.
//! Only `rotate` ends it: afterwards neither the copy nor the planted slot's
//! key opens anything written, and `rotate` names the planted slot before
//! dropping it.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use devc_vault::{Key, Store, keyfile};
use devc_vault_tests::fixture::Fixture;

#[test]
fn a_copied_key_file_opens_everything_until_rotate() {
    let Some(env) = Fixture::build("atk-keyfile").sample_entry().create() else {
        return;
    };
    // The container copies the key file it can read.
    let copy = env.path().join("stolen-key");
    fs::copy(env.key(), &copy).expect("copy the key");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).expect("chmod");
    let copy_arg = format!("--key-file={}", copy.display());
    let stolen = Key::Secret(keyfile::read(&copy).expect("the copy"));

    // lock is for agents and caches: the key file is not affected.
    env.cli_ok(&["lock", "--socket", "/nonexistent/agent.sock"], None);
    env.cli_ok(
        &[
            "add",
            "docker",
            &env.key_arg(),
            "--server",
            "after-lock.example",
            "--username",
            "u",
        ],
        Some(b"written-after-lock"),
    );
    let out = env.cli_ok(&["list", &copy_arg], None).stdout_str();
    assert!(
        out.contains("after-lock.example"),
        "the copy reads every version: {out}"
    );
    let sealed = Store::new(env.vault()).read().expect("read");
    let vault = sealed
        .open(&stolen)
        .expect("the copy opens the host's latest version");
    assert!(
        vault.master_key().is_ok(),
        "a key file gives the master key itself"
    );

    // With the master key the container can add a way in of its own.
    let planted = env.path().join("planted-key");
    env.cli_ok(
        &[
            "slot",
            "add",
            "keyfile",
            &planted.display().to_string(),
            &copy_arg,
        ],
        None,
    );
    let planted_arg = format!("--key-file={}", planted.display());
    env.cli_ok(&["list", &planted_arg], None);

    // rotate: refuses while a slot it has no key for remains, naming it...
    let planted_id = keyfile::key_id(&keyfile::read(&planted).expect("planted"));
    let refused = env.cli(&["rotate", &env.key_arg()], None);
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused.stderr_str().contains(&planted_id),
        "rotate should name the slot it cannot keep\n{}",
        refused.describe()
    );
    // ...and drops it when told to.
    env.cli_ok(&["rotate", &env.key_arg(), "--drop-locked-slots"], None);
    env.cli_ok(
        &[
            "add",
            "docker",
            &env.key_arg(),
            "--server",
            "after-rotate.example",
            "--username",
            "u",
        ],
        Some(b"written-after-rotate"),
    );
    for (what, arg) in [("the copy", &copy_arg), ("the planted key", &planted_arg)] {
        let out = env.cli(&["list", arg], None);
        assert!(
            !out.success(),
            "{what} still opens the vault\n{}",
            out.describe()
        );
    }
    let after = Store::new(env.vault()).read().expect("read");
    assert!(
        after.open(&stolen).is_err(),
        "the copy opens the rotated vault"
    );
    // The master key the copy gave before the rotate opens nothing after it.
    let old_vmk = vault.master_key().expect("master").clone();
    assert!(
        after.open_with_master(old_vmk).is_err(),
        "the old master key opens the rotated vault"
    );
    assert_eq!(
        after.slots.len(),
        1,
        "only the host's rotated key-file slot remains"
    );
}
