//! The trust boundary between host and container, played by the attacker
//! (issue 8, "Prove it"). Code in the container, running as the container's
//! user, talks to the agent's container-facing socket and to a passphrase
//! cache of its own user, records every byte they send while unlocked, and
//! tries all of it on the versions the host writes after `lock` or a TTL
//! expiry; it asks the container-facing socket for what only the owner may
//! have; and it puts fake servers where our clients look for an agent.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use devc_keydelivery::protocol::{self, ErrorCode, Response};
use devc_vault::{
    ACCESS_KEYS_LEN, AccessKeys, Key, KeySecret, KeyService, MasterKey, SALT_LEN, SealedVault,
    Slot, Store, VaultId, hex, keyfile,
};
use devc_vault_tests::agent::Agent;
use devc_vault_tests::fixture::sample::{PASSPHRASE, SECRET, SERVER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar, assert_no_secret};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::tools;

// ---------------------------------------------------------------------------
// The attacker's tools.

/// Everything an endpoint sent the attacker, and every `keys` answer.
#[derive(Default)]
struct Recording {
    /// Every byte read from the sockets, length prefixes included.
    bytes: Vec<u8>,
    /// The `keys` answers (salt, payload key, MAC key, commitment).
    keys: Vec<[u8; ACCESS_KEYS_LEN]>,
}

impl Recording {
    /// Sends `body` as one frame on `s` and records the whole answer.
    #[track_caller]
    fn ask(&mut self, s: &mut UnixStream, body: &[u8]) -> Response {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        s.write_all(&frame).expect("write a request");
        let mut len = [0u8; 4];
        s.read_exact(&mut len).expect("read an answer's length");
        let n = u32::from_be_bytes(len) as usize;
        assert!(n <= protocol::MAX_MESSAGE_LEN, "answer of {n} bytes");
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).expect("read an answer");
        self.bytes.extend_from_slice(&len);
        self.bytes.extend_from_slice(&buf);
        let resp = protocol::parse_response(&buf)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf)));
        if let Response::Keys { keys, .. } = &resp {
            self.keys.push(*keys.0);
        }
        resp
    }
}

/// A connection as the container makes it: straight to the socket.
fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s
}

fn body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("json")
}

fn open_req(sealed: &SealedVault, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    body(serde_json::json!({"v": 2, "req": {"open": {
        "vault": sealed.id.to_string(),
        "salt": hex::encode(salt),
        "slots": protocol::wire_slots(&sealed.slots),
    }}}))
}

fn seal_req(sealed: &SealedVault) -> Vec<u8> {
    body(serde_json::json!({"v": 2, "req": {"seal": {
        "vault": sealed.id.to_string(),
        "slots": protocol::wire_slots(&sealed.slots),
    }}}))
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b
}

/// `rounds` connections, each asking for everything a container may ask:
/// ping, the keys of the current version, the keys of a salt of its own
/// choosing, two write keys, and `status`. Returns the answers.
fn harvest(sock: &Path, sealed: &SealedVault, rounds: usize, rec: &mut Recording) -> Vec<Response> {
    let mut answers = Vec::new();
    for _ in 0..rounds {
        let mut s = connect(sock);
        for req in [
            body(serde_json::json!({"v": 2, "req": "ping"})),
            open_req(sealed, sealed.salt()),
            open_req(sealed, &random32()),
            seal_req(sealed),
            seal_req(sealed),
            body(serde_json::json!({"v": 2, "req": "status"})),
        ] {
            answers.push(rec.ask(&mut s, &req));
        }
    }
    answers
}

/// A key service for opening only.
#[derive(Debug)]
struct NoWrites;

impl KeyService for NoWrites {
    fn write_keys(&self, _: &VaultId, _: &[Slot]) -> devc_vault::Result<AccessKeys> {
        Err(devc_vault::Error::KeyService {
            reason: "the attacker does not write".into(),
        })
    }
}

fn delegated(blob: &[u8; ACCESS_KEYS_LEN]) -> Key {
    Key::Delegated(AccessKeys::from_bytes(blob), Arc::new(NoWrites))
}

/// How many recorded `keys` answers open `sealed`.
fn keys_that_open(rec: &Recording, sealed: &SealedVault) -> usize {
    rec.keys
        .iter()
        .filter(|b| sealed.open(&delegated(b)).is_ok())
        .count()
}

/// Every 32-byte window of the recording, raw and after decoding each run
/// of hex digits (at both alignments): the candidates for a master key or
/// a key-file secret.
fn windows32(bytes: &[u8]) -> HashSet<[u8; 32]> {
    let mut out = HashSet::new();
    let mut add = |b: &[u8]| {
        for w in b.windows(32) {
            out.insert(<[u8; 32]>::try_from(w).expect("32 bytes"));
        }
    };
    add(bytes);
    let is_hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
    let mut i = 0;
    while i < bytes.len() {
        if !is_hex(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_hex(&bytes[i]) {
            i += 1;
        }
        for align in 0..2 {
            let run = &bytes[start + align..i];
            let decoded: Vec<u8> = run
                .chunks_exact(2)
                .filter_map(|p| hex::decode::<1>(p).map(|[b]| b))
                .collect();
            add(&decoded);
        }
    }
    out
}

/// The attack on a version written after access ended: every recorded
/// `keys` answer (as it came, and moved onto this version's salt), and
/// every 32-byte window as a master key and as a key-file secret. None may
/// open it.
#[track_caller]
fn assert_nothing_opens(rec: &Recording, sealed: &SealedVault, what: &str) {
    assert!(!rec.keys.is_empty(), "{what}: nothing was recorded to try");
    for blob in &rec.keys {
        assert!(
            sealed.open(&delegated(blob)).is_err(),
            "{what}: recorded keys open it"
        );
        let mut moved = *blob;
        moved[..SALT_LEN].copy_from_slice(sealed.salt());
        assert!(
            sealed.open(&delegated(&moved)).is_err(),
            "{what}: recorded keys moved onto its salt open it"
        );
    }
    let candidates = windows32(&rec.bytes);
    assert!(candidates.len() > 1000, "{what}: too little recorded");
    for c in &candidates {
        assert!(
            sealed.open_with_master(MasterKey::from_bytes(*c)).is_err(),
            "{what}: a recorded window is the master key"
        );
        assert!(
            sealed
                .open(&Key::Secret(KeySecret::from_bytes(*c)))
                .is_err(),
            "{what}: a recorded window is a key-file secret"
        );
    }
}

/// `needle` appears in `hay` neither raw nor as lowercase or uppercase hex.
#[track_caller]
fn assert_absent(hay: &[u8], needle: &[u8], what: &str) {
    let h = hex::encode(needle);
    for form in [
        needle.to_vec(),
        h.clone().into_bytes(),
        h.to_uppercase().into_bytes(),
    ] {
        assert!(
            !hay.windows(form.len()).any(|w| w == form.as_slice()),
            "{what} found in the recording"
        );
    }
}

/// The master key of `sealed`, through the fixture's key file.
fn master_key(env: &Fixture, sealed: &SealedVault) -> MasterKey {
    let k = keyfile::read(&env.key()).expect("key file");
    sealed
        .unwrap_master(&Key::Secret(k))
        .expect("the key opens it")
}

/// Neither the master key nor the key-file secret is anywhere in `bytes`
/// (the keys of the versions a client asked for are, by design).
#[track_caller]
fn assert_no_long_term_keys(bytes: &[u8], env: &Fixture, sealed: &SealedVault, what: &str) {
    let vmk = master_key(env, sealed);
    assert_absent(bytes, vmk.expose(), &format!("{what}: the master key"));
    let secret = keyfile::read(&env.key()).expect("key file");
    assert_absent(
        bytes,
        secret.expose(),
        &format!("{what}: the key-file secret"),
    );
}

/// Nor are the payload and MAC keys of `sealed`.
#[track_caller]
fn assert_no_key_material(bytes: &[u8], env: &Fixture, sealed: &SealedVault, what: &str) {
    assert_no_long_term_keys(bytes, env, sealed, what);
    let vmk = master_key(env, sealed);
    let keys = AccessKeys::derive(&vmk, *sealed.salt()).to_bytes();
    assert_absent(
        bytes,
        &keys[SALT_LEN..SALT_LEN + 32],
        &format!("{what}: the payload key"),
    );
    assert_absent(
        bytes,
        &keys[SALT_LEN + 32..SALT_LEN + 64],
        &format!("{what}: the MAC key"),
    );
}

fn vault(env: &Fixture) -> SealedVault {
    Store::new(env.vault()).read().expect("read the vault")
}

/// The host writes a new version with its key file (`add docker`).
fn host_write(env: &Fixture, server: &str, secret: &str) -> SealedVault {
    let before = vault(env);
    env.cli_ok(
        &[
            "add",
            "docker",
            &env.key_arg(),
            "--server",
            server,
            "--username",
            "host-user",
        ],
        Some(secret.as_bytes()),
    );
    let after = vault(env);
    assert_ne!(after.salt(), before.salt(), "a write draws a new salt");
    // The same master key: only the per-write keys separate the versions.
    assert!(master_key(env, &after) == master_key(env, &before));
    after
}

fn code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// A vault with the sample entry, opened only by what each test passes.
fn fixture(label: &str) -> Option<Fixture> {
    Fixture::build(label)
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
}

/// The agent's control run and the checks after access ended, shared by
/// the lock and TTL tests: a harvest while unlocked opens the version it
/// was for; after `end` nothing recorded opens two later versions.
fn agent_attack(env: &Fixture, agent_args: &[&str], end: impl FnOnce(&Path)) {
    let sock = env.path().join("facing/agent.sock");
    let key = env.key_str();
    let mut args = vec!["--key-file", key.as_str()];
    args.extend_from_slice(agent_args);
    let _agent = env.start_agent(&sock, &args);
    let v1 = vault(env);
    let mut rec = Recording::default();
    let answers = harvest(&sock, &v1, 40, &mut rec);
    assert!(
        answers.iter().all(
            |r| matches!(r, Response::Pong { .. } | Response::Keys { .. })
                || code(r) == Some(ErrorCode::Refused)
        ),
        "unexpected answers while unlocked"
    );
    // The control: what was recorded does open the version it was for.
    assert!(
        keys_that_open(&rec, &v1) >= 40,
        "the recorded keys should open the version they were asked for"
    );
    assert_no_long_term_keys(&rec.bytes, env, &v1, "while unlocked");

    end(&sock);
    // Asking again gets nothing but errors, which are recorded too.
    for r in harvest(&sock, &v1, 3, &mut rec) {
        assert!(
            matches!(r, Response::Pong { locked: true, .. })
                || matches!(code(&r), Some(ErrorCode::Locked | ErrorCode::Refused)),
            "after access ended: {r:?}"
        );
    }
    // What the recorded keys still allow: a version of the container's own
    // making, sealed with write keys it was given, which the host accepts.
    forge(env, &v1, &rec);
    let v2 = host_write(env, "after.example", "written-after-access-ended");
    assert!(
        vault(env)
            .open(&Key::Secret(keyfile::read(&env.key()).expect("key")))
            .expect("open")
            .find_docker(FORGED_SERVER)
            .is_some(),
        "the host's write kept the forged entry"
    );
    assert_nothing_opens(&rec, &v2, "the first version written after");
    assert_no_key_material(&rec.bytes, env, &v2, "after");
    let v3 = host_write(env, "later.example", "written-later-still");
    assert_nothing_opens(&rec, &v3, "a later version");
}

const FORGED_SERVER: &str = "forged.example";

/// A key service that hands out one recorded write key.
#[derive(Debug)]
struct Replay([u8; ACCESS_KEYS_LEN]);

impl KeyService for Replay {
    fn write_keys(&self, _: &VaultId, _: &[Slot]) -> devc_vault::Result<AccessKeys> {
        Ok(AccessKeys::from_bytes(&self.0))
    }
}

/// After access ended, the container rewrites the vault (its directory is
/// mounted read-write) with a version of its own: opened with the keys it
/// recorded for `v1`, sealed with a write key it recorded. The integrity of
/// the entries is not protected against it; their secrecy after the host's
/// next write is.
fn forge(env: &Fixture, v1: &SealedVault, rec: &Recording) {
    let open = rec
        .keys
        .iter()
        .find(|k| k[..SALT_LEN] == v1.salt()[..])
        .expect("keys recorded for v1");
    let write = rec
        .keys
        .iter()
        .find(|k| k[..SALT_LEN] != v1.salt()[..])
        .expect("write keys recorded");
    let key = Key::Delegated(AccessKeys::from_bytes(open), Arc::new(Replay(*write)));
    Store::new(env.vault())
        .update(
            |s| s.open(&key),
            |v| {
                v.upsert_docker(devc_vault::DockerEntry::new(
                    FORGED_SERVER,
                    "attacker",
                    devc_vault::Secret::from("planted"),
                ))
            },
        )
        .expect("the container writes a version of its own");
    let forged = vault(env);
    assert!(
        forged.open(&delegated(write)).is_ok(),
        "control: the forged version"
    );
}

// ---------------------------------------------------------------------------
// 1. Nothing recorded while unlocked opens what the host writes afterwards.

#[test]
fn keys_recorded_from_the_agent_open_nothing_written_after_lock() {
    let Some(env) = fixture("atk-lock") else {
        return;
    };
    agent_attack(&env, &[], |sock| {
        env.cli_ok(&["lock", "--socket", &sock.display().to_string()], None);
    });
}

#[test]
fn keys_recorded_from_the_agent_open_nothing_written_after_the_idle_ttl() {
    let Some(env) = fixture("atk-ttl") else {
        return;
    };
    agent_attack(&env, &["--idle-ttl", "3s"], |sock| {
        // The container stops asking; the agent forgets after 3 s idle.
        let locked = process::wait_for(Duration::from_secs(15), || {
            let mut rec = Recording::default();
            let mut s = connect(sock);
            thread::sleep(Duration::from_millis(300));
            matches!(
                rec.ask(&mut s, br#"{"v":2,"req":"ping"}"#),
                Response::Pong { locked: true, .. }
            )
        });
        assert!(
            locked,
            "the agent did not forget its keys after the idle TTL"
        );
    });
}

/// The passphrase road: the cache the container's own helper started, asked
/// by other code running as the same user.
fn cache_attack(env: &Fixture, end: impl FnOnce()) {
    let mut unlock = env.cli_cmd(&[
        "unlock",
        "--socket",
        "/nonexistent/agent.sock",
        "--passphrase-fd",
        "0",
    ]);
    unlock.env("DEVC_VAULT_AGENT_SOCK", "/nonexistent/agent.sock");
    let out = env.run(&mut unlock, Some(PASSPHRASE.as_bytes()));
    out.assert_success("unlock with the passphrase");
    let sock = env.cache_socket();
    let v1 = vault(env);
    let mut rec = Recording::default();
    let answers = harvest(&sock, &v1, 40, &mut rec);
    // The cache answers its user's status too: vault ids, never a key.
    assert!(
        answers.iter().any(|r| matches!(r, Response::Status(_))),
        "the cache answers status to its user"
    );
    assert!(keys_that_open(&rec, &v1) >= 40, "control: the keys open v1");
    assert_no_long_term_keys(&rec.bytes, env, &v1, "cache, while unlocked");
    assert_no_secret(&rec.bytes, PASSPHRASE, "the cache's answers");

    end();
    let gone = process::wait_for(Duration::from_secs(15), || {
        UnixStream::connect(&sock).is_err()
    });
    assert!(gone, "the cache still answers after access ended");
    let v2 = host_write(env, "after.example", "written-after-the-cache");
    assert_nothing_opens(&rec, &v2, "the version written after the cache ended");
    assert_no_key_material(&rec.bytes, env, &v2, "cache, after");
    let v3 = host_write(env, "later.example", "written-later-still");
    assert_nothing_opens(&rec, &v3, "a later version");
}

fn cache_fixture(label: &str) -> Option<Fixture> {
    Fixture::build(label)
        .key_order(None)
        .key_file_var(KeyFileVar::Missing)
        .sample_entry()
        .passphrase_slot()
        .create()
}

#[test]
fn keys_recorded_from_the_passphrase_cache_open_nothing_written_after_lock() {
    let Some(env) = cache_fixture("atk-cache-lock") else {
        return;
    };
    cache_attack(&env, || {
        env.cli_ok(&["lock", "--socket", "/nonexistent/agent.sock"], None);
    });
}

#[test]
fn keys_recorded_from_the_passphrase_cache_open_nothing_written_after_its_ttl() {
    let Some(mut env) = cache_fixture("atk-cache-ttl") else {
        return;
    };
    let conf = env
        .dir()
        .write("vault.toml", "cache_idle_ttl_secs = 3\n", 0o600);
    env.set_env("DEVC_VAULT_CONFIG", &conf);
    // The cache exits by itself once its key expired: nothing to do but wait.
    cache_attack(&env, || {});
}

// ---------------------------------------------------------------------------
// 2. The container-facing socket answers key requests only.

/// Sends `req` raw and returns the answer and its bytes.
fn raw(sock: &Path, req: &[u8]) -> (Response, Vec<u8>) {
    let mut rec = Recording::default();
    let mut s = connect(sock);
    let r = rec.ask(&mut s, req);
    (r, rec.bytes)
}

#[test]
fn the_container_facing_socket_refuses_every_owner_request() {
    let Some(env) = fixture("atk-owner-reqs") else {
        return;
    };
    let sock = env.path().join("facing/agent.sock");
    let s = sock.display().to_string();
    // --allow-uid: the directory is 0711 and the socket 0666, the loosest setup.
    let _agent = env.start_agent(
        &sock,
        &["--key-file", &env.key_str(), "--allow-uid", "65534"],
    );
    let v = vault(&env);
    let id = v.id.to_string();
    let key_id = keyfile::key_id(&keyfile::read(&env.key()).expect("key"));
    let slots = protocol::wire_slots(&v.slots);
    let master = "ab".repeat(32);

    // The directory a container mounts holds exactly one entry: the socket.
    let dir = sock.parent().expect("dir");
    let entries: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["agent.sock"], "{}", dir.display());
    let mode = fs::metadata(dir).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o711);

    use serde_json::json;
    let cases: Vec<(serde_json::Value, ErrorCode)> = vec![
        (json!({"v": 2, "req": "lock"}), ErrorCode::Refused),
        (json!({"v": 2, "req": "unlock"}), ErrorCode::Refused),
        (json!({"v": 2, "req": "status"}), ErrorCode::Refused),
        (
            json!({"v": 2, "req": {"wrap": {"vault": id, "key_id": null, "master": master}}}),
            ErrorCode::Refused,
        ),
        (
            json!({"v": 2, "req": {"wrap": {"vault": id, "key_id": key_id, "master": master}}}),
            ErrorCode::Refused,
        ),
        (
            json!({"v": 2, "req": {"add_master": {"vault": id, "master": master}}}),
            ErrorCode::Refused,
        ),
        // Master-key requests: protocol 1's `unwrap`, and the same asked as v2.
        (
            json!({"v": 1, "req": {"unwrap": {"vault": id, "slots": slots}}}),
            ErrorCode::Version,
        ),
        (
            json!({"v": 2, "req": {"unwrap": {"vault": id, "slots": slots}}}),
            ErrorCode::Malformed,
        ),
        (
            json!({"v": 2, "req": {"master": {"vault": id, "slots": slots}}}),
            ErrorCode::Malformed,
        ),
        (json!({"v": 1, "req": "lock"}), ErrorCode::Version),
        (json!({"v": 1, "req": "unlock"}), ErrorCode::Version),
        (json!({"v": 1, "req": "status"}), ErrorCode::Version),
        (
            json!({"v": 1, "req": {"wrap": {"vault": id, "key_id": null, "master": master}}}),
            ErrorCode::Version,
        ),
        (
            json!({"v": 1, "req": {"add_master": {"vault": id, "master": master}}}),
            ErrorCode::Version,
        ),
        (json!({"req": "lock"}), ErrorCode::Malformed),
        (
            json!({"v": 2, "req": "lock", "as": "owner"}),
            ErrorCode::Malformed,
        ),
    ];
    for (req, want) in &cases {
        let (resp, bytes) = raw(&sock, &body(req.clone()));
        assert_eq!(code(&resp), Some(*want), "{req}: {resp:?}");
        // Refusals name no vault and no key.
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&key_id), "{req}: {text}");
        assert_no_key_material(&bytes, &env, &v, &req.to_string());
    }
    // Nothing happened: not locked, still serving.
    let (resp, _) = raw(&sock, &open_req(&v, v.salt()));
    assert!(matches!(resp, Response::Keys { .. }), "{resp:?}");

    // Locked by its owner, the container cannot unlock it either.
    env.cli_ok(&["lock", "--socket", &s], None);
    let (resp, _) = raw(&sock, br#"{"v":2,"req":"unlock"}"#);
    assert_eq!(code(&resp), Some(ErrorCode::Refused));
    let (resp, _) = raw(&sock, &open_req(&v, v.salt()));
    assert_eq!(code(&resp), Some(ErrorCode::Locked), "{resp:?}");

    // ping: which endpoint and whether it is locked, nothing else.
    let (_, bytes) = raw(&sock, br#"{"v":2,"req":"ping"}"#);
    assert_eq!(
        &bytes[4..],
        br#"{"v":2,"resp":{"pong":{"role":"agent","locked":true}}}"#
    );
    env.cli_ok(&["unlock", "--socket", &s], None);
    let (_, bytes) = raw(&sock, br#"{"v":2,"req":"ping"}"#);
    assert_eq!(
        &bytes[4..],
        br#"{"v":2,"resp":{"pong":{"role":"agent","locked":false}}}"#
    );
}

#[test]
fn ping_names_no_vault_even_when_the_agent_holds_a_vault_key() {
    let Some(env) = Fixture::build("atk-ping")
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .passphrase_slot()
        .create()
    else {
        return;
    };
    // Opened with its passphrase, the agent holds this vault's master key,
    // filed under the vault's id.
    let sock = env.path().join("facing/agent.sock");
    let _agent = env.passphrase_agent(&sock, &env.unique_log("agent"));
    let v = vault(&env);
    let (resp, _) = raw(&sock, &open_req(&v, v.salt()));
    assert!(matches!(resp, Response::Keys { .. }), "{resp:?}");
    let (_, bytes) = raw(&sock, br#"{"v":2,"req":"ping"}"#);
    assert_eq!(
        &bytes[4..],
        br#"{"v":2,"resp":{"pong":{"role":"agent","locked":false}}}"#
    );
    let (resp, bytes) = raw(&sock, br#"{"v":2,"req":"status"}"#);
    assert_eq!(code(&resp), Some(ErrorCode::Refused));
    assert!(
        !String::from_utf8_lossy(&bytes).contains(&v.id.to_string()),
        "the refusal names the vault"
    );
    let entries = fs::read_dir(sock.parent().expect("dir"))
        .expect("list")
        .count();
    assert_eq!(entries, 1, "the facing directory holds only the socket");
}

// ---------------------------------------------------------------------------
// 3. Fake servers where our clients look for an agent.

/// The fixture's secrets that must never reach a fake server.
#[track_caller]
fn assert_no_secrets_sent(got: &[u8], env: &Fixture, sealed: &SealedVault, what: &str) {
    assert_no_key_material(got, env, sealed, what);
    assert_no_secret(got, PASSPHRASE, &format!("{what}: the passphrase"));
    assert_no_secret(got, SECRET, &format!("{what}: the stored credential"));
    let vmk = master_key(env, sealed);
    let blob = AccessKeys::derive(&vmk, *sealed.salt()).to_bytes();
    assert_absent(got, &blob[..], &format!("{what}: the version's keys"));
}

/// Runs every command of ours that may look for an agent at `sock`, all at
/// once (a silent fake makes each wait for its 10 s I/O timeout): the CLI's
/// `slot add agent`, `lock`, `unlock`, `status`, `unlock --passphrase-fd`
/// (which hands the master key to the passphrase cache), and the docker
/// helper's `get` and `store` on the agent road.
fn every_command_that_asks_an_agent(env: &Fixture, sock: &Path) -> Vec<(String, Outcome)> {
    let s = sock.display().to_string();
    let k = env.key_str();
    // No key file: the agent is the only source.
    let agent_road = |mut cmd: Command| {
        cmd.env("DEVC_VAULT_KEY_ORDER", "agent")
            .env("DEVC_VAULT_AGENT_SOCK", sock)
            .env_remove("DEVC_VAULT_KEY_FILE");
        cmd
    };
    let helper = |verb: &str| {
        let mut cmd = env.command(env.docker_helper_path());
        cmd.arg(verb);
        agent_road(cmd)
    };
    let store_json = serde_json::json!({
        "ServerURL": "store.example", "Username": "u", "Secret": "stored-through-a-fake"
    })
    .to_string();
    let jobs: Vec<(&str, Command, Option<Vec<u8>>)> = vec![
        (
            "slot add agent",
            env.cli_cmd(&["slot", "add", "agent", "--socket", &s, "--key-file", &k]),
            None,
        ),
        ("lock", env.cli_cmd(&["lock", "--socket", &s]), None),
        ("unlock", env.cli_cmd(&["unlock", "--socket", &s]), None),
        ("status", env.cli_cmd(&["status", "--socket", &s]), None),
        (
            "unlock --passphrase-fd",
            env.cli_cmd(&["unlock", "--socket", &s, "--passphrase-fd", "0"]),
            Some(PASSPHRASE.as_bytes().to_vec()),
        ),
        (
            "docker get",
            helper("get"),
            Some(SERVER.as_bytes().to_vec()),
        ),
        (
            "docker store",
            helper("store"),
            Some(store_json.into_bytes()),
        ),
        (
            "add docker (agent road)",
            agent_road(env.cli_cmd(&[
                "add",
                "docker",
                "--server",
                "add.example",
                "--username",
                "u",
            ])),
            Some(b"added-through-a-fake".to_vec()),
        ),
    ];
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(name, cmd, stdin)| {
            let mut cmd = process::without_terminal(&cmd);
            thread::spawn(move || {
                let out = process::run(&mut cmd, stdin.as_deref(), Duration::from_secs(90))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                (name.to_owned(), out)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("command thread"))
        .collect()
}

#[test]
fn a_fake_server_at_the_agent_socket_receives_no_key_material() {
    let Some(env) = Fixture::build("atk-fake")
        .key_order(None)
        .key_file_var(KeyFileVar::Missing)
        .sample_entry()
        .passphrase_slot()
        .create()
    else {
        return;
    };
    // The container's user (this uid) listens where the agent would, in
    // the agent's directory; no agent runs.
    let sock = env.agent_socket();
    let recorded = env.path().join("fake-recorded");
    let mut probe = Command::new(tools::bin_path("devc-test-probe"));
    probe.arg("listen").args([&sock, &recorded]);
    let _fake = Agent::spawn(probe, &sock, &env.unique_log("fake"));
    let v = vault(&env);

    let outcomes = every_command_that_asks_an_agent(&env, &sock);
    for (name, out) in &outcomes {
        // None got a key from the fake; each says so in one line or less.
        assert!(!out.timed_out, "{name}\n{}", out.describe());
        if matches!(
            name.as_str(),
            "slot add agent" | "docker get" | "docker store" | "add docker (agent road)"
        ) {
            assert!(!out.success(), "{name} succeeded\n{}", out.describe());
        }
    }
    let got = fs::read(&recorded).unwrap_or_default();
    // It was asked (the helpers' `open`, public header data), so it saw
    // all it could; and none of it is a secret.
    assert!(
        String::from_utf8_lossy(&got).contains("\"open\""),
        "the fake was never asked; the test proves nothing"
    );
    assert_no_secrets_sent(&got, &env, &v, "the fake agent");
    assert_no_secret(&got, "stored-through-a-fake", "the fake agent");
    assert_no_secret(&got, "added-through-a-fake", "the fake agent");
    assert!(vault(&env).salt() == v.salt(), "nothing was written");
}

/// A fake that answers like an agent, replaying keys recorded from the real
/// one: `open` with the keys of the salt asked for, `seal` with recorded
/// write keys. Counts its connections.
struct Replayer {
    connections: Arc<Mutex<usize>>,
}

impl Replayer {
    fn start(sock: &Path, rec: &Recording) -> Replayer {
        let listener = UnixListener::bind(sock).expect("bind the fake");
        let opens: Vec<[u8; ACCESS_KEYS_LEN]> = rec.keys.clone();
        let connections = Arc::new(Mutex::new(0));
        let count = Arc::clone(&connections);
        let mut seals = rec.keys.clone().into_iter().cycle();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                *count.lock().expect("count") += 1;
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                while let Ok(Some(req)) = protocol::read_frame(&mut s) {
                    let v: serde_json::Value = serde_json::from_slice(&req).unwrap_or_default();
                    let resp = if let Some(salt) = v["req"]["open"]["salt"].as_str() {
                        let salt = hex::decode::<SALT_LEN>(salt.as_bytes()).unwrap_or_default();
                        match opens.iter().find(|k| k[..SALT_LEN] == salt) {
                            Some(k) => {
                                Response::keys(&AccessKeys::from_bytes(k), "replayed".into())
                            }
                            None => Response::error(ErrorCode::NoKey, "no"),
                        }
                    } else if v["req"].get("seal").is_some() {
                        let k = seals.next().expect("recorded keys");
                        Response::keys(&AccessKeys::from_bytes(&k), "replayed".into())
                    } else {
                        Response::Pong {
                            role: protocol::Role::Agent,
                            locked: false,
                        }
                    };
                    let frame = protocol::ResponseFrame {
                        v: protocol::VERSION,
                        resp,
                    };
                    if protocol::write_frame(&mut s, &frame).is_err() {
                        break;
                    }
                }
            }
        });
        Replayer { connections }
    }

    fn connections(&self) -> usize {
        *self.connections.lock().expect("count")
    }
}

/// A container of the agent's user may replace the socket in the directory
/// it mounts (read-write). Once the agent stops, a fake that replays keys
/// it recorded would hand the host keys the container knows, if the host
/// still asked that socket: a host write would then be readable in the
/// container. The host must not ask a socket its own agent served once that
/// agent is gone.
#[test]
fn a_replaced_agent_socket_gets_no_host_write_after_the_agent_stops() {
    let Some(env) = Fixture::build("atk-replay")
        .key_order(Some("agent"))
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
    else {
        return;
    };
    // The host keeps its key in the agent only (as with --key-command).
    let sock = env.agent_socket();
    let mut agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    let v1 = vault(&env);
    // The host's own tools work through the agent (its owner endpoint).
    let list = env.cli_ok(&["list"], None).stdout_str();
    assert!(list.contains(SERVER), "{list}");
    // The container harvests while unlocked.
    let mut rec = Recording::default();
    harvest(&sock, &v1, 5, &mut rec);
    assert!(keys_that_open(&rec, &v1) >= 5, "control");

    agent.signal("TERM");
    assert!(
        agent.wait_exit(Duration::from_secs(10)).is_some(),
        "agent ignored SIGTERM"
    );
    // The container binds its replayer where the agent was.
    let _ = fs::remove_file(&sock);
    let fake = Replayer::start(&sock, &rec);

    // The host stores new credentials, the CLI and the helper way.
    let out = env.cli(
        &[
            "add",
            "docker",
            "--server",
            "host-after-stop.example",
            "--username",
            "u",
        ],
        Some(b"host-secret-after-the-agent-stopped"),
    );
    let store = env.docker_helper(
        "store",
        &serde_json::json!({"ServerURL": "login.example", "Username": "u", "Secret": "docker-login-after-stop"})
            .to_string(),
    );
    // Whatever the host wrote, the container must not read it.
    let now = vault(&env);
    if now.salt() != v1.salt() {
        assert_nothing_opens(&rec, &now, "the vault after the host's writes");
    }
    // And it wrote nothing: with its agent gone, it has no key.
    assert!(
        !out.success() && !store.success(),
        "the host wrote through the replaced socket\nadd: {}\nstore: {}",
        out.describe(),
        store.describe()
    );
    assert_eq!(
        fake.connections(),
        0,
        "the host asked the socket a container can replace"
    );
    // Only the owner endpoint's absence said the agent is gone: the host
    // says so rather than turn to the container-facing socket.
    let st = env
        .cli_ok(&["status", "--socket", &sock.display().to_string()], None)
        .stdout_str();
    assert!(st.contains("not running"), "{st}");
}

// ---------------------------------------------------------------------------
// The private runtime directory another user made first.

/// The agent refuses to put its owner endpoint in a private runtime
/// directory that another user created (here open to everyone, so that
/// even a non-root agent could create `owner/` inside it): that user could
/// swap the endpoint's directory at will.
#[test]
fn the_agent_refuses_a_runtime_directory_another_user_made() {
    let Some(env) = fixture("atk-squat-agent") else {
        return;
    };
    if !tools::require_root("giving the directory to uid 65534 needs root") {
        return;
    }
    let squatted = env.runtime_dir().join("devc-vault");
    fs::create_dir(&squatted).expect("mkdir");
    fs::set_permissions(&squatted, fs::Permissions::from_mode(0o777)).expect("chmod");
    devc_vault_tests::scratch::set_owner(&squatted, 65534, 65534);
    let sock = env.path().join("facing/agent.sock");
    let mut cmd = env.cli_cmd(&[
        "agent",
        "--socket",
        &sock.display().to_string(),
        "--key-file",
        &env.key_str(),
    ]);
    let out = process::run(&mut cmd, None, Duration::from_secs(20)).expect("spawn agent");
    assert!(!out.success(), "the agent started\n{}", out.describe());
    assert!(
        out.stderr_str().contains("belongs to uid 65534"),
        "{}",
        out.describe()
    );
    assert!(
        !squatted.join("owner").exists(),
        "the agent created its owner directory in the squatted one"
    );
    assert!(
        !sock.exists(),
        "the container-facing socket was left behind"
    );
}
