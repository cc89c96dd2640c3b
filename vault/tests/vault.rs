//! Behaviour of the format and the store: round trips, every single-byte
//! flip and every truncation rejected, caps, rotate, concurrency, forward
//! compatibility.
// Fixtures panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use devc_vault::*;

const CHEAP: Argon2Cost = Argon2Cost {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn docker(server: &str, user: &str, secret: &str) -> DockerEntry {
    DockerEntry::new(server, user, secret.into())
}

fn small_vault(secret: &KeySecret) -> Vec<u8> {
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, secret).unwrap();
    v.upsert_docker(docker("ghcr.io", "me", "hunter2")).unwrap();
    v.seal().unwrap()
}

#[test]
fn keyfile_round_trip_and_wrong_key() {
    let k = KeySecret::generate();
    let bytes = small_vault(&k);
    let sealed = SealedVault::parse(bytes.to_vec()).unwrap();
    let v = sealed.open(&Key::Secret(k)).unwrap();
    assert_eq!(v.docker().len(), 1);
    assert_eq!(v.docker()[0].secret.expose(), "hunter2");
    let err = sealed
        .open(&Key::Secret(KeySecret::generate()))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingKey { .. }), "{err:?}");
}

#[test]
fn passphrase_round_trip_and_wrong_passphrase() {
    let mut v = Vault::create();
    v.add_passphrase_slot(&Passphrase::new("correct horse".into()), CHEAP)
        .unwrap();
    let sealed = SealedVault::parse((v.seal().unwrap()).to_vec()).unwrap();
    assert!(
        sealed
            .open(&Key::Passphrase(Passphrase::new("correct horse".into())))
            .is_ok()
    );
    let err = sealed
        .open(&Key::Passphrase(Passphrase::new("wrong".into())))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingKey { .. }), "{err:?}");
}

#[test]
fn every_write_uses_a_fresh_salt_and_nonce() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    let a = v.seal().unwrap();
    let b = v.seal().unwrap();
    let salt = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .find(|l| l.starts_with("salt "))
            .map(str::to_owned)
    };
    assert_ne!(salt(&a), salt(&b));
    assert_ne!(a, b);
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let k = KeySecret::generate();
    let bytes = small_vault(&k);
    let key = Key::Secret(k);
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80] {
            let mut m = bytes.clone();
            m[i] ^= mask;
            let r = SealedVault::parse(m.to_vec()).and_then(|s| s.open(&key));
            assert!(
                r.is_err(),
                "flip of byte {i} with mask {mask:#x} was accepted"
            );
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let k = KeySecret::generate();
    let bytes = small_vault(&k);
    let key = Key::Secret(k);
    for n in 0..bytes.len() {
        let r = SealedVault::parse((bytes[..n]).to_vec()).and_then(|s| s.open(&key));
        assert!(r.is_err(), "truncation to {n} bytes was accepted");
    }
    // Truncating inside the payload is reported as truncation.
    let err = SealedVault::parse((bytes[..bytes.len() - 1]).to_vec()).unwrap_err();
    assert!(matches!(err, Error::Truncated), "{err:?}");
}

#[test]
fn trailing_data_is_rejected() {
    let k = KeySecret::generate();
    let mut bytes = small_vault(&k);
    bytes.push(b'\n');
    assert!(matches!(
        SealedVault::parse(bytes.to_vec()).unwrap_err(),
        Error::TrailingData { extra: 1 }
    ));
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".credentials.enc");
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: costs no disk, and the store must refuse it by its length.
    f.set_len(MAX_FILE_LEN + 1).unwrap();
    let err = Store::new(&path).read().unwrap_err();
    assert!(matches!(err, Error::Oversized { .. }), "{err:?}");
}

#[test]
fn oversized_secret_is_refused() {
    let mut v = Vault::create();
    let big = "x".repeat(MAX_SECRET_LEN + 1);
    let err = v.upsert_docker(docker("a", "b", &big)).unwrap_err();
    assert!(matches!(err, Error::Oversized { .. }), "{err:?}");
}

#[test]
fn docker_secrets_take_any_string_names_and_git_values_no_control_characters() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    let json_key = "{\n  \"type\": \"service_account\",\n\t\"k\": \"a\\nb\"\r\n}\0é😀";
    v.upsert_docker(docker("h", "u", json_key)).unwrap();
    let back = SealedVault::parse(v.seal().unwrap())
        .unwrap()
        .open(&Key::Secret(k))
        .unwrap();
    assert_eq!(back.docker()[0].secret.expose(), json_key);
    for bad in ["a\nb", "a\rb", "a\0b"] {
        assert!(v.upsert_docker(docker(bad, "u", "s")).is_err());
        assert!(v.upsert_docker(docker("h", bad, "s")).is_err());
        assert!(
            v.upsert_git(GitEntry::new("https", "h", "u", bad.into()))
                .is_err()
        );
    }
}

#[test]
fn excessive_argon2_cost_is_refused_before_work() {
    let huge = Argon2Cost {
        m_kib: 4 * 1024 * 1024,
        t: 3,
        p: 4,
    };
    let mut v = Vault::create();
    let err = v
        .add_passphrase_slot(&Passphrase::new("x".into()), huge)
        .unwrap_err();
    assert!(matches!(err, Error::ExcessiveWork { .. }), "{err:?}");
}

#[test]
fn slot_ops_and_last_slot_refused() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    let b = v
        .add_passphrase_slot(&Passphrase::new("p".into()), CHEAP)
        .unwrap();
    assert_eq!(v.slots().len(), 2);
    let keys = RotateKeys {
        secrets: vec![k.clone()],
        passphrases: vec![],
    };
    v.remove_slot(&b.to_string(), &keys, false).unwrap();
    let a = v.slots()[0].id;
    assert!(matches!(
        v.remove_slot(&a.to_string(), &keys, false).unwrap_err(),
        Error::LastSlot
    ));
    assert!(matches!(
        v.remove_slot("0000000000000000", &keys, false).unwrap_err(),
        Error::UnknownSlot { .. }
    ));
    for _ in 1..MAX_SLOTS {
        v.add_secret_slot(SlotKind::KeyFile, &KeySecret::generate())
            .unwrap();
    }
    assert!(matches!(
        v.add_secret_slot(SlotKind::KeyFile, &KeySecret::generate())
            .unwrap_err(),
        Error::TooManySlots
    ));
}

#[test]
fn ambiguous_slot_id_is_refused_and_kind_prefix_selects() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    let id = v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    v.add_secret_slot(SlotKind::Agent, &k).unwrap();
    let keys = RotateKeys {
        secrets: vec![k.clone()],
        passphrases: vec![],
    };
    assert!(matches!(
        v.remove_slot(&id.to_string(), &keys, false).unwrap_err(),
        Error::InvalidEntry { .. }
    ));
    v.remove_slot(&format!("agent:{id}"), &keys, false).unwrap();
    assert_eq!(v.slots().len(), 1);
    assert_eq!(v.slots()[0].kind, SlotKind::KeyFile);
}

#[test]
fn rotate_rewraps_supplied_slots_and_refuses_to_drop_others() {
    let k = KeySecret::generate();
    let other = KeySecret::generate();
    let p = Passphrase::new("pass".into());
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    v.add_secret_slot(SlotKind::KeyFile, &other).unwrap();
    v.add_passphrase_slot(&p, CHEAP).unwrap();
    let old_vmk = v.master_key().unwrap().expose().to_owned();

    let keys = RotateKeys {
        secrets: vec![k.clone()],
        passphrases: vec![p.clone()],
    };
    let err = v.rotate(&keys, false).unwrap_err();
    assert!(
        matches!(err, Error::LockedSlots { ref slots } if slots.len() == 1),
        "{err:?}"
    );
    assert_eq!(v.slots().len(), 3, "a refused rotate changes nothing");

    let r = v.rotate(&keys, true).unwrap();
    assert_eq!(r.dropped.len(), 1);
    assert_ne!(v.master_key().unwrap().expose(), &old_vmk);
    let new_k = r.new_secrets[0].clone().expect("k opened a slot");
    let sealed = SealedVault::parse((v.seal().unwrap()).to_vec()).unwrap();
    assert!(sealed.open(&Key::Secret(new_k)).is_ok());
    assert!(sealed.open(&Key::Passphrase(p)).is_ok());
    for stale in [k, other] {
        assert!(matches!(
            sealed.open(&Key::Secret(stale)).unwrap_err(),
            Error::NoMatchingKey { .. }
        ));
    }
}

#[test]
fn store_rotate_replaces_key_file_and_old_copy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kpath = dir.path().join("key");
    let vpath = dir.path().join(".credentials.enc");
    let k = KeySecret::generate();
    keyfile::create(&kpath, &k).unwrap();
    let old_copy = std::fs::read(&kpath).unwrap();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    let store = Store::new(&vpath);
    store.create(&v).unwrap();

    store
        .rotate(std::slice::from_ref(&kpath), vec![], false)
        .unwrap();
    assert_ne!(std::fs::read(&kpath).unwrap(), old_copy);
    assert!(!pending_key_path(&kpath).exists());
    let new_k = keyfile::read(&kpath).unwrap();
    assert!(store.read().unwrap().open(&Key::Secret(new_k)).is_ok());
    let old_k = keyfile::parse(&old_copy).unwrap();
    assert!(matches!(
        store.read().unwrap().open(&Key::Secret(old_k)).unwrap_err(),
        Error::NoMatchingKey { .. }
    ));
}

#[test]
fn concurrent_updates_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let vpath = dir.path().join(".credentials.enc");
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    Store::new(&vpath).create(&v).unwrap();
    let k = Arc::new(k);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (k, vpath) = (k.clone(), vpath.clone());
            std::thread::spawn(move || {
                let server = format!("registry{i}.example");
                Store::new(&vpath)
                    .update::<_, Error>(
                        |s| s.open(&Key::Secret((*k).clone())),
                        |v| v.upsert_docker(docker(&server, "u", "s")),
                    )
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = Store::new(&vpath)
        .read()
        .unwrap()
        .open(&Key::Secret((*k).clone()))
        .unwrap();
    assert_eq!(v.docker().len(), 8);
}

#[test]
fn unknown_fields_survive_a_read_modify_write() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    v.upsert_docker(docker("h", "u", "s")).unwrap();
    v.payload_mut()
        .extra
        .insert("future".into(), serde_json::json!({"x": 1}));
    let mut json: serde_json::Value = serde_json::from_slice(&v.payload().to_json()).unwrap();
    json["docker"][0]["future_field"] = serde_json::json!("kept");
    let p: Payload = serde_json::from_value(json).unwrap();
    *v.payload_mut() = p;
    v.upsert_git(GitEntry::new("https", "example.com", "u", "p".into()))
        .unwrap();
    let back = SealedVault::parse((v.seal().unwrap()).to_vec())
        .unwrap()
        .open(&Key::Secret(k))
        .unwrap();
    assert_eq!(back.payload().extra["future"], serde_json::json!({"x": 1}));
    assert_eq!(back.docker()[0].extra["future_field"], "kept");
}

#[test]
fn expiry_and_source_round_trip_and_a_refresh_keeps_unknown_fields() {
    let k = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    let host = |secret: &str, fetched: u64, expires: u64| {
        docker("reg.example", "u", secret)
            .with_expiry(Some(expires))
            .with_source(Source::new("docker-helper", "ecr-login", fetched))
    };
    v.upsert_docker(host("old", 100, 200)).unwrap();
    v.upsert_docker(docker("inside.example", "me", "mine"))
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&v.payload().to_json()).unwrap();
    assert_eq!(json["docker"][0]["expires"], 200);
    assert_eq!(json["docker"][0]["source"]["from"], "ecr-login");
    assert!(json["docker"][1].get("expires").is_none());
    json["docker"][0]["future_field"] = serde_json::json!("kept");
    json["docker"][0]["source"]["future_source_field"] = serde_json::json!(7);
    *v.payload_mut() = serde_json::from_value(json).unwrap();

    // Expired at its `exp`: not found by a lookup at that time, found before.
    assert!(v.find_docker_at("reg.example", 199).is_some());
    assert!(v.find_docker_at("reg.example", 200).is_none());
    assert!(v.find_docker("reg.example").is_some());

    // A refresh replaces the host entry and keeps what a newer version wrote.
    assert_eq!(
        v.refresh_docker(host("new", 300, 400)).unwrap(),
        Some(Upsert::Replaced)
    );
    // The same credential fetched again is a change (the fetch time moved).
    assert_eq!(
        v.refresh_docker(host("new", 301, 400)).unwrap(),
        Some(Upsert::Replaced)
    );
    assert_eq!(
        v.refresh_docker(host("new", 301, 400)).unwrap(),
        Some(Upsert::Unchanged)
    );
    // The container storing the same credential (docker login, git's store
    // after a fetch) changes nothing and keeps the host entry's source.
    assert_eq!(
        v.upsert_docker(docker("reg.example", "u", "new")).unwrap(),
        Upsert::Unchanged
    );
    let mut g = Vault::create();
    let host_git = GitEntry::new("https", "git.example", "u", "pw".into())
        .with_source(Source::new("git", "git credential fill", 5));
    g.upsert_git(host_git).unwrap();
    assert_eq!(
        g.upsert_git(GitEntry::new("https", "git.example", "u", "pw".into()))
            .unwrap(),
        Upsert::Unchanged
    );
    assert!(g.git()[0].source.is_some());
    // Never in place of an entry stored inside the container, nor of one removed.
    let inside =
        docker("inside.example", "x", "y").with_source(Source::new("docker-helper", "h", 1));
    assert_eq!(v.refresh_docker(inside).unwrap(), None);
    let gone = docker("gone.example", "x", "y").with_source(Source::new("docker-helper", "h", 1));
    assert_eq!(v.refresh_docker(gone).unwrap(), None);

    let back = SealedVault::parse(v.seal().unwrap())
        .unwrap()
        .open(&Key::Secret(k))
        .unwrap();
    let e = back.find_docker("reg.example").unwrap();
    assert_eq!(
        (
            e.secret.expose(),
            e.expires,
            e.extra["future_field"].as_str()
        ),
        ("new", Some(400), Some("kept"))
    );
    let src = e.source.as_ref().unwrap();
    assert_eq!(
        (src.fetched, &src.extra["future_source_field"]),
        (301, &serde_json::json!(7))
    );
    assert_eq!(
        back.find_docker("inside.example").unwrap().secret.expose(),
        "mine"
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let k = KeySecret::from_bytes([0xab; 32]);
    let d = docker("h", "u", "hunter2");
    for s in [
        format!("{k:?}"),
        format!("{d:?}"),
        format!("{:?}", Passphrase::new("pw".into())),
    ] {
        assert!(
            !s.contains("hunter2") && !s.contains("abab") && !s.contains("pw\""),
            "{s}"
        );
    }
}

#[test]
fn key_file_permissions_and_form_are_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("key");
    keyfile::create(&p, &KeySecret::generate()).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(keyfile::read(&p).is_ok());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        keyfile::read(&p).unwrap_err(),
        Error::KeyFilePermissions { .. }
    ));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&p, "not a key\n").unwrap();
    assert!(matches!(
        keyfile::read(&p).unwrap_err(),
        Error::MalformedKeyFile { .. }
    ));
    assert!(matches!(
        keyfile::create(&p, &KeySecret::generate()).unwrap_err(),
        Error::AlreadyExists { .. }
    ));
}

/// The removed key together with an older copy of the file opens no later
/// version: removing a slot replaces the master key.
#[test]
fn slot_remove_revokes_the_removed_key() {
    let k1 = KeySecret::generate();
    let k2 = KeySecret::generate();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k1).unwrap();
    let id2 = v.add_secret_slot(SlotKind::KeyFile, &k2).unwrap();
    let old_copy = SealedVault::parse(v.seal().unwrap()).unwrap();
    let keys = RotateKeys {
        secrets: vec![k1.clone()],
        passphrases: vec![],
    };
    v.remove_slot(&id2.to_string(), &keys, false).unwrap();
    v.upsert_docker(docker("ghcr.io", "me", "written-after"))
        .unwrap();
    let current = SealedVault::parse(v.seal().unwrap()).unwrap();
    // The attacker: k2 and the old copy give the old master key...
    let old_vmk = old_copy.unwrap_master(&Key::Secret(k2.clone())).unwrap();
    // ...which opens no later version, and k2 opens no slot of it.
    assert!(current.open(&Key::Master(old_vmk)).is_err());
    assert!(current.open(&Key::Secret(k2)).is_err());
    let back = current.open(&Key::Secret(k1.clone())).unwrap();
    assert_eq!(back.docker()[0].secret.expose(), "written-after");
    // A remaining slot whose key is not given is named, and nothing changes.
    let k3 = KeySecret::generate();
    let mut v = Vault::create();
    let id1 = v.add_secret_slot(SlotKind::KeyFile, &k1).unwrap();
    v.add_secret_slot(SlotKind::KeyFile, &k3).unwrap();
    v.add_passphrase_slot(&Passphrase::new("p".into()), CHEAP)
        .unwrap();
    let err = v.remove_slot(&id1.to_string(), &keys, false).unwrap_err();
    assert!(
        matches!(err, Error::LockedSlots { ref slots } if slots.len() == 2),
        "{err:?}"
    );
    assert_eq!(v.slots().len(), 3);
}

/// A rotate killed between replacing the vault and renaming K.next over K:
/// readers open it with K.next, and the next writer completes the rename.
#[test]
fn an_interrupted_rotate_locks_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let kpath = dir.path().join("key");
    let vpath = dir.path().join(".credentials.enc");
    let k = KeySecret::generate();
    keyfile::create(&kpath, &k).unwrap();
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    Store::new(&vpath).create(&v).unwrap();
    // What the crash leaves: the vault under K.next's secret, K still old.
    let new = KeySecret::generate();
    let mut fresh = Vault::create();
    fresh.add_secret_slot(SlotKind::KeyFile, &new).unwrap();
    std::fs::write(&vpath, fresh.seal().unwrap()).unwrap();
    std::fs::write(pending_key_path(&kpath), keyfile::render(&new).as_bytes()).unwrap();
    std::fs::set_permissions(
        pending_key_path(&kpath),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let sealed = Store::new(&vpath).read().unwrap();
    assert!(
        sealed
            .open(&Key::Secret(keyfile::read(&kpath).unwrap()))
            .is_err()
    );
    let got = keyfile::read_for(&kpath, &sealed).unwrap();
    assert!(
        sealed.open(&Key::Secret(got)).is_ok(),
        "readers fall back to K.next"
    );

    // The next writer that knows the key file completes the rename.
    let store = Store::new(&vpath).with_key_file(&kpath);
    store
        .update(
            |s| s.open(&Key::Secret(keyfile::read_for(&kpath, s)?)),
            |v| v.upsert_docker(docker("h", "u", "s")).map(|_| ()),
        )
        .unwrap();
    assert!(!pending_key_path(&kpath).exists());
    let sealed = store.read().unwrap();
    assert!(
        sealed
            .open(&Key::Secret(keyfile::read(&kpath).unwrap()))
            .is_ok()
    );
}
