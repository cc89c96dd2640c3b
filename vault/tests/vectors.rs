//! The test vectors in docs/test-vectors/: one file per case, each naming
//! the key, the expected outcome and the vault bytes. One table-driven test
//! runs them all and asserts the exact error variant.
//!
//! Regenerate (only when the format changes on purpose):
//! `cargo test -p devc-vault --test vectors -- --ignored regenerate`
// Fixtures panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use devc_vault::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors")
}

struct Vector {
    name: String,
    expect: String,
    key: Key,
    vault: Vec<u8>,
}

fn parse_vector(name: &str, bytes: &[u8]) -> Vector {
    let sep = b"\n---\n";
    let at = bytes
        .windows(sep.len())
        .position(|w| w == sep)
        .unwrap_or_else(|| panic!("{name}: no --- separator"));
    let head = std::str::from_utf8(&bytes[..at]).expect("text header");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("devc-vault test vector"), "{name}");
    let (mut expect, mut key) = (None, None);
    for line in lines {
        let (k, v) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{name}: bad line {line:?}"));
        match k {
            "expect" => expect = Some(v.to_owned()),
            "key" => {
                key = Some(match v.split_once(' ') {
                    Some(("keyfile", text)) => {
                        Key::Secret(keyfile::parse(text.as_bytes()).expect("key"))
                    }
                    Some(("passphrase", text)) => Key::Passphrase(Passphrase::new(text.to_owned())),
                    _ => panic!("{name}: bad key {v:?}"),
                })
            }
            "comment" => {}
            _ => panic!("{name}: unknown field {k:?}"),
        }
    }
    Vector {
        name: name.to_owned(),
        expect: expect.expect("expect"),
        key: key.expect("key"),
        vault: bytes[at + sep.len()..].to_vec(),
    }
}

fn class(e: &Error) -> &'static str {
    match e {
        Error::UnknownVersion { .. } => "unknown-version",
        Error::MalformedHeader { .. } => "malformed-header",
        Error::NoMatchingKey { .. } => "no-matching-key",
        Error::ExcessiveWork { .. } => "excessive-work",
        Error::HeaderTampered => "header-tampered",
        Error::CommitmentMismatch => "commitment-mismatch",
        Error::PayloadTampered => "payload-tampered",
        Error::MalformedPayload { .. } => "malformed-payload",
        Error::Truncated => "truncated",
        Error::TrailingData { .. } => "trailing-data",
        Error::Oversized { .. } => "oversized",
        other => panic!("not a format error: {other:?}"),
    }
}

#[test]
fn all_vectors() {
    let mut names: Vec<_> = std::fs::read_dir(dir())
        .expect("docs/test-vectors exists")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".vector"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 14,
        "expected at least 14 vectors, found {}",
        names.len()
    );
    let mut classes_seen = std::collections::BTreeSet::new();
    for name in &names {
        let v = parse_vector(name, &std::fs::read(dir().join(name)).expect("read"));
        let outcome = SealedVault::parse((v.vault).to_vec()).and_then(|s| s.open(&v.key));
        match (v.expect.split_once(' '), outcome) {
            (Some(("ok", counts)), Ok(vault)) => {
                let got = format!("docker={} git={}", vault.docker().len(), vault.git().len());
                assert_eq!(got, counts, "{}", v.name);
                classes_seen.insert("ok");
            }
            (Some(("error", want)), Err(e)) => {
                assert_eq!(class(&e), want, "{}: {e}", v.name);
                classes_seen.insert(class(&e));
            }
            (_, Ok(_)) => panic!("{}: expected {}, but it opened", v.name, v.expect),
            (_, Err(e)) => panic!("{}: expected {}, got {e:?}", v.name, v.expect),
        }
    }
    for c in [
        "ok",
        "unknown-version",
        "malformed-header",
        "no-matching-key",
        "excessive-work",
        "header-tampered",
        "commitment-mismatch",
        "payload-tampered",
        "truncated",
        "trailing-data",
        "oversized",
    ] {
        assert!(classes_seen.contains(c), "no vector for {c}");
    }
}

// ---- generation ----

const CHEAP: Argon2Cost = Argon2Cost {
    m_kib: 256,
    t: 2,
    p: 1,
};

fn sample_entries(v: &mut Vault) {
    v.upsert_docker(DockerEntry::new(
        "https://index.docker.io/v1/",
        "vector",
        "vector-secret".into(),
    ))
    .unwrap();
    v.upsert_git(GitEntry::new(
        "https",
        "git.example.com",
        "vector",
        "vector-password".into(),
    ))
    .unwrap();
}

fn write(name: &str, expect: &str, key: &str, comment: &str, vault: &[u8]) {
    let mut out =
        format!("devc-vault test vector\nexpect: {expect}\nkey: {key}\ncomment: {comment}\n---\n")
            .into_bytes();
    out.extend_from_slice(vault);
    std::fs::write(dir().join(format!("{name}.vector")), out).unwrap();
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} not found"));
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

fn header_line<'a>(bytes: &'a [u8], keyword: &str) -> &'a str {
    std::str::from_utf8(&bytes[..bytes.windows(4).position(|w| w == b"mac ").unwrap()])
        .unwrap()
        .lines()
        .find(|l| l.starts_with(keyword))
        .unwrap()
}

#[test]
#[ignore = "writes docs/test-vectors; run on purpose"]
fn regenerate() {
    std::fs::create_dir_all(dir()).unwrap();
    let k = KeySecret::generate();
    let ktext = format!("keyfile {}", keyfile::render(&k).trim_end());
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &k).unwrap();
    sample_entries(&mut v);
    let good = v.seal().unwrap();
    write(
        "ok-keyfile",
        "ok docker=1 git=1",
        &ktext,
        "one key-file slot, one docker and one git entry",
        &good,
    );

    let mut pv = Vault::create();
    pv.add_passphrase_slot(&Passphrase::new("vector passphrase".into()), CHEAP)
        .unwrap();
    sample_entries(&mut pv);
    let pgood = pv.seal().unwrap();
    write(
        "ok-passphrase",
        "ok docker=1 git=1",
        "passphrase vector passphrase",
        "one passphrase slot (argon2id m=256 t=2 p=1, cheap for tests)",
        &pgood,
    );

    let mut two = Vault::create();
    two.add_passphrase_slot(&Passphrase::new("first".into()), CHEAP)
        .unwrap();
    two.add_passphrase_slot(&Passphrase::new("second".into()), CHEAP)
        .unwrap();
    write(
        "ok-second-slot",
        "ok docker=0 git=0",
        "passphrase second",
        "two passphrase slots; the key opens the second",
        &two.seal().unwrap(),
    );

    write(
        "error-unknown-version",
        "error unknown-version",
        &ktext,
        "version line says v2",
        &replace(&good, "devc-vault v1\n", "devc-vault v2\n"),
    );
    write(
        "error-malformed-header",
        "error malformed-header",
        &ktext,
        "slot kind misspelled",
        &replace(&good, "slot keyfile ", "slot keyfyle "),
    );
    let other = KeySecret::generate();
    write(
        "error-no-matching-key",
        "error no-matching-key",
        &format!("keyfile {}", keyfile::render(&other).trim_end()),
        "a valid vault and a different key",
        &good,
    );
    let m = format!("m={}", CHEAP.m_kib);
    write(
        "error-excessive-work",
        "error excessive-work",
        "passphrase vector passphrase",
        "passphrase slot rewritten to ask for 4 GiB of argon2id memory",
        &replace(&pgood, &format!("{m} "), "m=4194304 "),
    );
    let pslot = header_line(&pgood, "slot passphrase ");
    let capped = pslot.replacen(
        &format!("{m} t={} p={}", CHEAP.t, CHEAP.p),
        "m=1048576 t=10 p=8",
        1,
    );
    write(
        "error-excessive-total-work",
        "error excessive-work",
        "passphrase vector passphrase",
        "32 passphrase slots, each at the per-slot caps (m=1 GiB t=10 p=8): about 170 times the per-file budget of ten default unlocks, refused before any derivation",
        &replace(&pgood, pslot, &vec![capped.as_str(); 32].join("\n")),
    );
    let created = header_line(&good, "created ");
    let n: u64 = created[8..].parse().unwrap();
    write(
        "error-header-tampered",
        "error header-tampered",
        &ktext,
        "created time changed, MAC not",
        &replace(&good, created, &format!("created {}", n + 1)),
    );
    let commit = header_line(&good, "commit ");
    let flipped = format!(
        "commit {}{}",
        if &commit[7..8] == "0" { "1" } else { "0" },
        &commit[8..]
    );
    write(
        "error-commitment-mismatch",
        "error commitment-mismatch",
        &ktext,
        "first digit of the commitment changed",
        &replace(&good, commit, &flipped),
    );
    let mut tampered = good.clone();
    *tampered.last_mut().unwrap() ^= 1;
    write(
        "error-payload-tampered",
        "error payload-tampered",
        &ktext,
        "last byte (GCM tag) flipped",
        &tampered,
    );
    write(
        "error-truncated",
        "error truncated",
        &ktext,
        "last 5 bytes of the payload cut",
        &good[..good.len() - 5],
    );
    let salt_at = good.windows(5).position(|w| w == b"salt ").unwrap();
    write(
        "error-truncated-header",
        "error truncated",
        &ktext,
        "cut in the middle of the salt line",
        &good[..salt_at + 20],
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"extra");
    write(
        "error-trailing-data",
        "error trailing-data",
        &ktext,
        "5 bytes after the payload",
        &trailing,
    );
    let slot = header_line(&good, "slot ");
    let many = vec![slot; 33].join("\n");
    write(
        "error-oversized-slots",
        "error oversized",
        &ktext,
        "33 slot lines (the cap is 32)",
        &replace(&good, slot, &many),
    );
}
