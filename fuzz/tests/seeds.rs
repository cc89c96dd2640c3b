//! The committed seed corpora, `fuzz/seeds/<target>/`: where each seed
//! comes from, and how to make them again.
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml --test seeds -- --ignored regenerate
//! ```
//!
//! Sources: the vault files of `docs/test-vectors/`, vaults sealed here
//! with the fixed key, and the inputs of the crates' own tests (docker
//! and git helper requests, agent frames). Generated vaults draw fresh
//! salts and nonces, so regenerating changes their bytes, not their use.
// A seed generator: panicking is how it reports a problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use devc_keydelivery::protocol::{
    ErrorCode, KeyInfo, Request, RequestFrame, Response, ResponseFrame, Role, StatusInfo, VERSION,
    encode_frame, wire_master, wire_slots,
};
use devc_vault::{
    AccessKeys, Argon2Cost, DockerEntry, GitEntry, KeySecret, MasterKey, Passphrase, SlotKind,
    Source, Vault, VaultId,
};
use devc_vault_fuzz::{FIXED_KEY_LINE, Sealer, fixed_secret, sample_entries};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Seeds {
    dir: PathBuf,
}

impl Seeds {
    fn new(target: &str) -> Seeds {
        let dir = root().join("seeds").join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Seeds { dir }
    }
    fn put(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let path = self.dir.join(name);
        assert!(!path.exists(), "two seeds named {name}");
        fs::write(path, bytes).unwrap();
    }
}

/// The vault bytes of every test vector (everything after the `---` line).
fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("../docs/test-vectors");
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vector"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            let sep = b"\n---\n";
            let at = bytes.windows(sep.len()).position(|w| w == sep).unwrap();
            let name = p.file_stem().unwrap().to_str().unwrap().to_owned();
            (name, bytes[at + sep.len()..].to_vec())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 14, "the test vectors are missing");
    out
}

/// Vaults the fixed key opens, each exercising more of the payload.
fn fixed_key_vaults() -> Vec<(&'static str, Vault)> {
    let key = fixed_secret();
    let mut out = Vec::new();

    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &key).unwrap();
    out.push(("empty", v));

    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &key).unwrap();
    sample_entries(&mut v);
    out.push(("sample-entries", v));

    // The key's slot last, behind an agent slot and a passphrase slot.
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::Agent, &KeySecret::generate())
        .unwrap();
    v.add_passphrase_slot(
        &Passphrase::new("seed".into()),
        Argon2Cost {
            m_kib: 8,
            t: 1,
            p: 1,
        },
    )
    .unwrap();
    v.add_secret_slot(SlotKind::KeyFile, &key).unwrap();
    sample_entries(&mut v);
    out.push(("three-slots", v));

    // Sources, chain and fields of a newer version.
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, &key).unwrap();
    let mut d = DockerEntry::new("ghcr.io", "me", "tok".into()).with_source(Source::new(
        "docker-helper",
        "desktop",
        1_795_970_000,
    ));
    d.extra
        .insert("future".into(), serde_json::json!([1, 2.5, null]));
    v.upsert_docker(d).unwrap();
    let mut g = GitEntry::new("https", "git.example.com", "", "".into())
        .with_path(Some(String::new()))
        .with_source(Source::new("git", "git.example.com", 1_795_970_000));
    g.extra.insert("note".into(), serde_json::json!({"a": "b"}));
    v.upsert_git(g).unwrap();
    let p = v.payload_mut();
    p.chain.docker_creds_store = Some("desktop".into());
    p.chain.git_helper = Some("cache --timeout=3600".into());
    p.extra
        .insert("future".into(), serde_json::json!({"x": 1, "y": [true]}));
    out.push(("sources-chain-unknown-fields", v));
    out
}

/// Payload plaintexts: the generated vaults' JSON and hand-written cases.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fixed_key_vaults()
        .into_iter()
        .map(|(name, v)| (name.to_owned(), v.payload().to_json().to_vec()))
        .collect();
    for (name, json) in [
        ("empty-object", "{}"),
        (
            "format-md-example",
            r#"{
  "docker": [
    {"server_url": "https://index.docker.io/v1/", "username": "me",
     "secret": "s", "created": 1795970000, "updated": 1795970000}
  ],
  "git": [
    {"protocol": "https", "host": "git.example.com:8443", "path": "org/repo.git",
     "username": "me", "password": "p", "password_expiry_utc": 1795999999,
     "oauth_refresh_token": "r", "created": 1795970000, "updated": 1795970000}
  ],
  "chain": {"docker_creds_store": "desktop", "git_helper": "cache"},
  "updated": 1795970000
}"#,
        ),
        (
            "escapes",
            r#"{"docker":[{"server_url":"h\u00e9","username":"\ud83d\ude00","secret":"a\nb\u0000"}]}"#,
        ),
        (
            "nulls-and-source",
            r#"{"git":[{"protocol":"https","host":"h","username":"u","password":"p","path":null,"source":{"kind":"git","from":"h","fetched":1,"new":{}}}],"chain":{}}"#,
        ),
        ("duplicate-field", r#"{"updated":1,"updated":2}"#),
        (
            "numbers",
            r#"{"future":[0,-1,1.5,1e3,18446744073709551615,-0.0]}"#,
        ),
        // The first crash payload_json found (see vault/src/entry/mod.rs's tests).
        (
            "regression-float-roundtrip",
            r#"{"future":[0,-1,1.5,0e3,108446744073709551615,-0.0]}"#,
        ),
    ] {
        out.push((name.to_owned(), json.as_bytes().to_vec()));
    }
    out
}

// Inputs of helper/src/docker/{protocol,credstore}.rs's tests.
const DOCKER_URLS: &[&str] = &[
    "host:5000",
    "  host:5000\r\n",
    "ho\nst",
    "https://index.docker.io/v1/",
    "docker.io",
    "registry-1.docker.io",
    "https://foobar.example:2376/v1/",
    "//foobar.example:2376",
    "foobar.example:2376?foo=bar",
    "http://foobar.example:2376",
    "[::1]:8080",
    "https://evil.example\\@registry.example/",
];
const DOCKER_STORES: &[&str] = &[
    r#"{"ServerURL":"https://h/v1/","Username":"u","Secret":"p"}"#,
    "{\"serverurl\":\"h\",\n\"USERNAME\":\"u\",\"x\":[1,{}],\"secret\":null}\n \t",
    r#"{"ServerURL":"h","Username":"u","Secret":"a\"b\u00e9"}"#,
    r#"{"ServerURL":"https://[::1]:8080/path","Username":"<token>","Secret":"idtoken"}"#,
    "{\"ServerURL\":\"multi.example\",\"Username\":\"_json_key\",\"Secret\":\"{\\n \\\"k\\\": \\\"v\\\"\\n}\\t\\u0000\"}",
    "{\"ServerURL\":\"h\",\"Username\":\"u\"} garbage",
    r#"{"ServerURL":"h","Username":"u","Secret":123456789}"#,
    "null",
];

// Inputs of helper/src/git/{protocol,ops}.rs's tests.
const GIT_REQUESTS: &[&str] = &[
    "protocol=https\nhost=example.com:8443\npath=a/b.git\nusername=u\npassword=p=q\n\
     password_expiry_utc=9999999999\noauth_refresh_token=tok\n\n",
    "protocol=https\nhost=sso.tld\nusername=\npassword=\n",
    "host=a\ncapability[]=authtype\nwwwauth[]=basic realm=x host=b\n\nhost=evil\n",
    "host=a\r\nhost=b\r\n\r\nhost=c\n",
    "password_expiry_utc=12x\n",
    "host=a\nnonsense\n",
    "username=\u{ff}\n",
    "wwwauth[]=\u{1}\nhost=a\n",
    "protocol=https\nhost=example.com\nusername=alice\npassword=pw1\n",
    "protocol=https\nhost=h\nusername=u\npassword=p\npassword_expiry_utc=2000\noauth_refresh_token=r\n",
];

fn frame(msg: &impl serde::Serialize) -> Vec<u8> {
    encode_frame(msg).unwrap().to_vec()
}

fn agent_frames() -> Vec<(&'static str, Vec<u8>)> {
    let vault = VaultId([7; 16]);
    let vmk = MasterKey::from_bytes([9; 32]);
    let slot = devc_vault::Slot::for_secret(SlotKind::Agent, &vault, &vmk, &fixed_secret());
    let slots = wire_slots(&[slot]);
    let req = |req| frame(&RequestFrame { v: VERSION, req });
    let resp = |resp| frame(&ResponseFrame { v: VERSION, resp });
    let keys = AccessKeys::derive(&vmk, [3; 32]);
    let mut out = vec![
        ("req-ping", req(Request::Ping)),
        (
            "req-open",
            req(Request::Open {
                vault: vault.to_string(),
                salt: "33".repeat(32),
                slots: slots.clone(),
            }),
        ),
        (
            "req-seal",
            req(Request::Seal {
                vault: vault.to_string(),
                slots: slots.clone(),
            }),
        ),
        (
            "req-wrap",
            req(Request::Wrap {
                vault: vault.to_string(),
                key_id: Some(devc_vault::keyfile::key_id(&fixed_secret())),
                master: wire_master(&vmk),
            }),
        ),
        (
            "req-add-master",
            req(Request::AddMaster {
                vault: vault.to_string(),
                master: wire_master(&vmk),
            }),
        ),
        ("req-lock", req(Request::Lock)),
        ("req-status", req(Request::Status)),
        (
            "resp-pong",
            resp(Response::Pong {
                role: Role::Cache,
                locked: false,
            }),
        ),
        ("resp-keys", resp(Response::keys(&keys, "agent:x".into()))),
        (
            "resp-slot",
            resp(Response::Slot {
                slot: slots[0].clone(),
            }),
        ),
        ("resp-ok", resp(Response::Ok)),
        (
            "resp-status",
            resp(Response::Status(Box::new(StatusInfo {
                version: VERSION,
                pid: 1,
                cache: false,
                locked: false,
                locked_reason: String::new(),
                keys: vec![KeyInfo {
                    kind: "keyfile".into(),
                    id: "00".repeat(8),
                    path: Some("/run/secrets/devc-vault-key".into()),
                    idle_left_secs: Some(1),
                    max_left_secs: None,
                }],
                allowed_vaults: vec![vault.to_string()],
                allowed_uids: vec![1000],
                socket: Some("/run/devc-vault/agent.sock".into()),
            }))),
        ),
        (
            "resp-error",
            resp(Response::error(
                ErrorCode::NoKey,
                "no held key opens a slot",
            )),
        ),
        (
            "resp-old-version",
            with_len(br#"{"v":1,"resp":{"master":{"key":"00","via":"x"}}}"#),
        ),
        ("req-old-version", with_len(br#"{"v":1,"req":"lock"}"#)),
        ("req-not-utf8", with_len(&[0xff, 0xfe, 0x00])),
        ("truncated", vec![0, 0, 0, 10, b'{']),
        ("oversized", [&[0, 1, 0, 1][..], b"{}"].concat()),
    ];
    // Several frames on one connection.
    let stream = [req(Request::Ping), req(Request::Unlock), resp(Response::Ok)].concat();
    out.push(("three-frames", stream));
    out
}

fn with_len(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn join(records: &[(u8, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (verb, stdin)) in records.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.push(*verb);
        out.extend_from_slice(stdin.as_bytes());
    }
    out
}

#[test]
#[ignore = "rewrites fuzz/seeds; run on purpose"]
fn regenerate() {
    let s = Seeds::new("keyfile");
    s.put("fixed", format!("{FIXED_KEY_LINE}\n"));
    s.put("fixed-no-newline", FIXED_KEY_LINE);
    s.put("zero", format!("devc-vault-key v1 {}\n", "0".repeat(64)));
    s.put("crlf", format!("{FIXED_KEY_LINE}\r\n"));
    s.put("uppercase", FIXED_KEY_LINE.to_uppercase());

    let s = Seeds::new("vault_file");
    for (name, bytes) in vectors() {
        s.put(&format!("vector-{name}"), bytes);
    }
    for (name, v) in fixed_key_vaults() {
        s.put(&format!("fixed-key-{name}"), v.seal().unwrap());
    }

    for target in ["vault_payload", "payload_json"] {
        let s = Seeds::new(target);
        for (name, json) in payloads() {
            s.put(&name, json);
        }
    }
    // The sealer and the library agree (else nothing would open).
    let sealed = Sealer::new().seal(b"{}");
    devc_vault::SealedVault::parse(sealed)
        .unwrap()
        .open(&devc_vault::Key::Secret(fixed_secret()))
        .expect("the independent sealer's vault opens");

    let s = Seeds::new("docker_stdin");
    for (i, u) in DOCKER_URLS.iter().enumerate() {
        s.put(&format!("url-{i:02}"), u);
    }
    for (i, j) in DOCKER_STORES.iter().enumerate() {
        s.put(&format!("store-{i:02}"), j);
    }

    let s = Seeds::new("docker_helper");
    let store = DOCKER_STORES[0];
    s.put(
        "store-get-list-erase-get",
        join(&[
            (b's', store),
            (b'g', "h"),
            (b'l', ""),
            (b'e', "h"),
            (b'g', "https://h/v1/"),
        ]),
    );
    s.put(
        "hub-spellings",
        join(&[
            (b'g', "docker.io"),
            (b'g', "index.docker.io"),
            (
                b's',
                r#"{"ServerURL":"docker.io","Username":"hub2","Secret":"x"}"#,
            ),
            (b'g', "https://index.docker.io/v1/"),
        ]),
    );
    s.put(
        "url-forms",
        join(&[
            (b'g', "host:5000"),
            (b'g', "//host:5000"),
            (b'g', "host:5000?foo=bar"),
            (b'g', "[::1]:8080"),
            (b'e', "http://plain.example"),
            (b'l', ""),
        ]),
    );
    for (i, j) in DOCKER_STORES.iter().enumerate() {
        s.put(&format!("store-{i:02}"), join(&[(b's', j), (b'l', "")]));
    }

    let s = Seeds::new("git_request");
    for (i, r) in GIT_REQUESTS.iter().enumerate() {
        s.put(&format!("request-{i:02}"), r);
    }
    s.put("not-utf8", b"username=\xff\n");
    s.put("nul", b"password=a\0b\n");

    let s = Seeds::new("git_helper");
    s.put(
        "store-get-erase-get",
        join(&[
            (b's', GIT_REQUESTS[8]),
            (b'g', "protocol=https\nhost=example.com\nusername=alice\n"),
            (
                b'e',
                "protocol=https\nhost=example.com\nusername=alice\npassword=nope\n",
            ),
            (b'e', "protocol=https\nhost=example.com\n"),
            (b'g', "protocol=https\nhost=example.com\n"),
        ]),
    );
    s.put(
        "expiry-and-path",
        join(&[
            (
                b'g',
                "protocol=https\nhost=example.com:8443\npath=org/repo.git\n",
            ),
            (b's', GIT_REQUESTS[9]),
            (b'g', "protocol=https\nhost=h\n"),
        ]),
    );
    for (i, r) in GIT_REQUESTS.iter().enumerate() {
        s.put(&format!("store-{i:02}"), join(&[(b's', r), (b'g', r)]));
    }

    let s = Seeds::new("agent_frames");
    for (name, bytes) in agent_frames() {
        s.put(name, bytes);
    }
}

/// Every committed seed directory is one this file makes.
#[test]
fn seed_directories_match_targets() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "devc-vault-fuzz")
        .collect();
    for t in &targets {
        let dir: &Path = &root().join("seeds").join(t);
        assert!(
            fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()),
            "no seeds for {t}"
        );
    }
}
