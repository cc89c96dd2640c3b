//! Crash safety, proven by killing real runs: strace sends SIGKILL on
//! entering one system call of `devc-vault rotate`, of the docker helper's
//! `store` and `erase`, and of `devc-vault add`, one call per run. After
//! each kill:
//!
//! - the vault holds the state from before the command or the state after
//!   it, nothing else, and opens with the key file as configured
//!   (`DEVC_VAULT_KEY_FILE`, which falls back to `K.next`);
//! - the docker helper's `get`, configured with that key file, answers the
//!   credentials of that state;
//! - the next write (the docker helper's `store`) succeeds and leaves no
//!   temp file and no `K.next` behind, and the key file alone opens the
//!   vault again.
//!
//! Every call of the run is killed in turn, but its first (the `execve`
//! strace starts it with, where nothing has run yet): strace's log of each
//! killed run confirms the kill landed on the call aimed at, so the runs
//! are deterministic enough to name each point. One run on 2 busy cores
//! (debug build): calls in a full run (and the one that opens the lock
//! file), kills, kills after which the vault was in the "after" state,
//! kills that left a temp file, kills after which only `K.next` opened the
//! vault, kills after which the next write had anything to clean up, and
//! the sweep's time:
//!
//! ```text
//!                 calls (lock)  kills  after  temp  K.next only  cleaned  time
//! rotate          249   (155)   248    16     10    5            21       17.8 s
//! store (helper)  216   (153)   215    11     5     0            5        14.3 s
//! add (CLI)       226   (158)   225    10     5     0            5        17.4 s
//! erase (helper)  216   (153)   215    11     5     0            5        16.9 s
//! ```
//!
//! 903 kills in about 45 s with two tests at a time. Each test prints its
//! own line (`[crash] ...`) with `--nocapture`.
//!
//! And a store killed at its rename (its temp file, which opens with the
//! key, is left on disk), followed by `erase` and `rotate`: no file in the
//! vault's or the key's directory then opens with any key the test held.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use devc_vault::{Key, KeySecret, SealedVault, Store, keyfile, pending_key_path};
use devc_vault_tests::fixture::{Fixture, assert_no_secret};
use devc_vault_tests::scratch::set_mode;
use devc_vault_tests::strace::{self, Call, Strace};

/// Always in the vault; the helper must answer it after every kill.
const STABLE: (&str, &str, &str) = ("stable.example", "keeper", "stable-secret-1");
/// The entry the command under test changes.
const WATCH: &str = "watch.example";
/// What each next write stores.
const NEXT: &str = "next.example";
/// The vault's temp files: `.<name>.tmp-*` for the name `.credentials.enc`.
const VAULT_TEMP: &str = "..credentials.enc.tmp-";

type Entries = BTreeSet<(String, String, String)>;

/// What the vault holds, and the secret of the key that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    entries: Entries,
    key: [u8; 32],
}

fn entry(server: &str, user: &str, secret: &str) -> (String, String, String) {
    (server.to_owned(), user.to_owned(), secret.to_owned())
}

/// Opens the vault on disk as a reader configured with the key file does.
fn state(f: &Fixture) -> Result<State, String> {
    let sealed = Store::new(f.vault()).read().map_err(|e| e.to_string())?;
    let key = keyfile::read_for(&f.key(), &sealed).map_err(|e| e.to_string())?;
    let vault = sealed
        .open(&Key::Secret(key.clone()))
        .map_err(|e| e.to_string())?;
    Ok(State {
        entries: vault
            .docker()
            .iter()
            .map(|e| entry(&e.server_url, &e.username, e.secret.expose()))
            .collect(),
        key: *key.expose(),
    })
}

/// The vault's directory and the key's.
fn dirs(f: &Fixture) -> [PathBuf; 2] {
    [
        f.docker_config(),
        f.key().parent().expect("key dir").to_path_buf(),
    ]
}

/// Every file in the two directories, with its bytes.
fn files(f: &Fixture) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for d in dirs(f) {
        for e in fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_file() {
                let bytes = fs::read(&p).expect("read");
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Puts the two directories back as `snap` had them.
fn restore(f: &Fixture, snap: &[(PathBuf, Vec<u8>)]) {
    for d in dirs(f) {
        for e in fs::read_dir(&d).expect("read dir") {
            fs::remove_file(e.expect("entry").path()).expect("remove");
        }
    }
    for (p, bytes) in snap {
        fs::write(p, bytes).expect("write");
        set_mode(p, 0o600);
    }
}

/// Names in the two directories other than the vault, its lock and the key.
fn leftovers(f: &Fixture) -> Vec<String> {
    let mut out = Vec::new();
    for d in dirs(f) {
        for e in fs::read_dir(&d).expect("read dir") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if ![".credentials.enc", ".credentials.enc.lock", "key"].contains(&name.as_str()) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

/// The vault with the stable entry and `watch` (if any), sealed for the key file.
fn fixture(label: &str, watch: Option<&str>) -> Option<(Fixture, Strace)> {
    let st = Strace::available()?;
    let f = Fixture::new(label)?;
    f.docker_store(STABLE.0, STABLE.1, STABLE.2);
    if let Some(secret) = watch {
        f.docker_store(WATCH, "watcher", secret);
    }
    Some((f, st))
}

/// What one sweep saw.
#[derive(Debug, Default)]
struct Tally {
    calls: usize,
    killed: usize,
    before: usize,
    after: usize,
    /// Kills after which the next write had something to clean up (a temp
    /// file, a `K.next`, a key file that no longer opened the vault).
    cleaned: usize,
    /// Kills that left a temp file of the vault or the key.
    temps: usize,
    /// Kills after which only `K.next` opened the vault (a rotate killed
    /// between replacing the vault and renaming `K.next` over `K`).
    next_only: usize,
}

/// Kills `cmd` before each of its calls, one per run (see the module comment),
/// checking each crash; `is_after` says whether a state is the one the
/// command makes.
fn sweep(
    f: &Fixture,
    st: &Strace,
    what: &str,
    cmd: &Command,
    stdin: Option<&[u8]>,
    is_after: &dyn Fn(&State) -> bool,
) -> Tally {
    let start = Instant::now();
    let snap = files(f);
    let before = state(f).expect("the vault opens before the sweep");
    let log = f.path().join(format!("{what}.strace"));

    let (out, calls) = st.trace(cmd, stdin, &log);
    out.assert_success(&format!("{what} under strace"));
    let done = state(f).expect("the vault opens after a full run");
    assert!(
        is_after(&done) && done != before,
        "{what}: the full run did not make the after state: {done:?}"
    );
    let pid = calls.first().expect("a traced call").pid;
    assert!(
        calls.iter().all(|c| c.pid == pid),
        "{what}: more than one thread; kill points would be ambiguous"
    );
    let lock_at = strace::find(&calls, "openat", ".credentials.enc.lock")
        .unwrap_or_else(|| panic!("{what}: no openat of the lock file in\n{}", dump(&calls)));
    // Not the first call, the execve strace starts the command with
    // (strace cannot inject into it; killed there, nothing ran).
    let points: Vec<&Call> = calls.iter().skip(1).collect();
    assert_eq!(calls[0].name, "execve", "{}", calls[0].line);

    let mut tally = Tally {
        calls: calls.len(),
        ..Tally::default()
    };
    for (i, call) in points.iter().enumerate() {
        restore(f, &snap);
        let killed = st.kill_before(cmd, call, stdin, &log);
        let at = killed.at.as_ref().unwrap_or_else(|| {
            panic!(
                "{what}: no kill at {call:?} (the run made other calls)\n{}",
                killed.outcome.describe()
            )
        });
        assert_eq!(
            (&at.name, at.nth),
            (&call.name, call.nth),
            "{what}: killed elsewhere: {}",
            at.line
        );
        tally.killed += 1;
        let ctx = || format!("{what}, killed before {}", call.line);

        // 1. Before or after, nothing else.
        let s = state(f).unwrap_or_else(|e| panic!("{}: the vault does not open: {e}", ctx()));
        if s == before {
            tally.before += 1;
        } else if is_after(&s) {
            tally.after += 1;
        } else {
            panic!("{}: neither before nor after: {s:?}", ctx());
        }

        // 2. The helper, configured with the key file, answers that state.
        for (server, user, secret) in [entry(STABLE.0, STABLE.1, STABLE.2)]
            .into_iter()
            .chain(s.entries.iter().filter(|e| e.0 == WATCH).cloned())
        {
            let got = f.docker_get(&server);
            assert_eq!(
                (got["Username"].as_str(), got["Secret"].as_str()),
                (Some(user.as_str()), Some(secret.as_str())),
                "{}",
                ctx()
            );
        }
        if !s.entries.iter().any(|e| e.0 == WATCH) {
            f.assert_docker_not_found(WATCH);
        }

        // 3. The next write succeeds and settles everything.
        let k_opens = keyfile::read(&f.key())
            .ok()
            .is_some_and(|k| k.expose() == &s.key);
        let left = leftovers(f);
        if !left.is_empty() || !k_opens {
            tally.cleaned += 1;
        }
        if left.iter().any(|n| n.contains(".tmp-")) {
            tally.temps += 1;
        }
        if !k_opens {
            tally.next_only += 1;
        }
        let next_secret = format!("next-{i}");
        f.docker_store(NEXT, "n", &next_secret);
        let settled = state(f).unwrap_or_else(|e| panic!("{}: after the next write: {e}", ctx()));
        let mut want = s.entries.clone();
        want.insert(entry(NEXT, "n", &next_secret));
        assert_eq!(settled.entries, want, "{}", ctx());
        assert_eq!(
            leftovers(f),
            Vec::<String>::new(),
            "{}: left after the next write",
            ctx()
        );
        let k = keyfile::read(&f.key()).unwrap_or_else(|e| panic!("{}: {e}", ctx()));
        assert_eq!(
            k.expose(),
            &settled.key,
            "{}: the key file alone does not open the vault",
            ctx()
        );
    }
    eprintln!(
        "[crash] {what}: {} calls in a full run (lock opened at call {}), {} killed: {} before, {} after; {} cleaned up by the next write ({} left a temp file, {} only K.next opening); {:.1} s",
        tally.calls,
        lock_at + 1,
        tally.killed,
        tally.before,
        tally.after,
        tally.cleaned,
        tally.temps,
        tally.next_only,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(tally.killed, points.len());
    // The sweep reached the windows that matter: both sides of the
    // vault's rename, and a temp file left on disk.
    assert!(
        tally.before > 0 && tally.after > 0 && tally.temps > 0,
        "{what}: the kills missed the write windows: {tally:?}"
    );
    tally
}

fn dump(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| c.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rotate_killed_before_each_syscall() {
    let Some((f, st)) = fixture("crash-rotate", None) else {
        return;
    };
    let before = state(&f).expect("opens");
    let old = KeySecret::from_bytes(before.key);
    let cmd = f.cli_cmd(&["rotate", &f.key_arg()]);
    let vault = f.vault();
    let is_after = move |s: &State| {
        s.entries == before.entries
            && s.key != before.key
            && Store::new(&vault)
                .read()
                .is_ok_and(|sealed| sealed.open(&Key::Secret(old.clone())).is_err())
    };
    let tally = sweep(&f, &st, "rotate", &cmd, None, &is_after);
    assert!(
        tally.next_only > 0,
        "no kill landed between the vault's rename and the key file's: {tally:?}"
    );
}

#[test]
fn docker_store_killed_before_each_syscall() {
    let Some((f, st)) = fixture("crash-store", None) else {
        return;
    };
    let before = state(&f).expect("opens");
    let mut cmd = f.command(f.docker_helper_path());
    cmd.arg("store");
    let input =
        serde_json::json!({"ServerURL": WATCH, "Username": "watcher", "Secret": "stored-2"})
            .to_string();
    let is_after = move |s: &State| {
        let mut want = before.entries.clone();
        want.insert(entry(WATCH, "watcher", "stored-2"));
        s.entries == want && s.key == before.key
    };
    sweep(&f, &st, "store", &cmd, Some(input.as_bytes()), &is_after);
}

#[test]
fn cli_add_killed_before_each_syscall() {
    let Some((f, st)) = fixture("crash-add", Some("old-secret")) else {
        return;
    };
    let before = state(&f).expect("opens");
    let cmd = f.cli_cmd(&[
        "add",
        "docker",
        &f.key_arg(),
        "--server",
        WATCH,
        "--username",
        "watcher",
    ]);
    let is_after = move |s: &State| {
        let mut want = before.entries.clone();
        want.remove(&entry(WATCH, "watcher", "old-secret"));
        want.insert(entry(WATCH, "watcher", "new-secret"));
        s.entries == want && s.key == before.key
    };
    sweep(&f, &st, "add", &cmd, Some(b"new-secret"), &is_after);
}

#[test]
fn docker_erase_killed_before_each_syscall() {
    let Some((f, st)) = fixture("crash-erase", Some("to-erase")) else {
        return;
    };
    let before = state(&f).expect("opens");
    let mut cmd = f.command(f.docker_helper_path());
    cmd.arg("erase");
    let is_after = move |s: &State| {
        let mut want = before.entries.clone();
        want.remove(&entry(WATCH, "watcher", "to-erase"));
        s.entries == want && s.key == before.key
    };
    sweep(&f, &st, "erase", &cmd, Some(WATCH.as_bytes()), &is_after);
}

/// A store killed at its rename leaves its temp file, which opens with the
/// key; the erase after it removes that file, and after a rotate no file
/// in the vault's or the key's directory opens with any key the test held.
#[test]
fn store_killed_at_rename_then_erase_and_rotate_leave_nothing_that_opens() {
    let Some((f, st)) = fixture("crash-leftover", Some("first-secret")) else {
        return;
    };
    let mut keys = vec![keyfile::read(&f.key()).expect("key")];
    let mut cmd = f.command(f.docker_helper_path());
    cmd.arg("store");
    let input =
        serde_json::json!({"ServerURL": WATCH, "Username": "watcher", "Secret": "second-secret"})
            .to_string();
    let rename = Call {
        pid: 0,
        name: "rename".into(),
        nth: 1,
        line: String::new(),
    };
    let killed = st.kill_before(
        &cmd,
        &rename,
        Some(input.as_bytes()),
        &f.path().join("store.strace"),
    );
    let at = killed
        .at
        .unwrap_or_else(|| panic!("{}", killed.outcome.describe()));
    assert!(at.line.contains(VAULT_TEMP), "{}", at.line);

    // What the crash left: the new version, under the key, in a temp file.
    let temps: Vec<PathBuf> = files(&f)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(VAULT_TEMP))
        })
        .collect();
    assert_eq!(temps.len(), 1, "{:?}", leftovers(&f));
    let temp = SealedVault::parse(fs::read(&temps[0]).expect("temp"))
        .and_then(|s| s.open(&Key::Secret(keys[0].clone())))
        .expect("the temp file is a vault the key opens");
    assert!(
        temp.docker()
            .iter()
            .any(|e| e.secret.expose() == "second-secret")
    );
    assert_eq!(
        f.docker_get(WATCH)["Secret"],
        "first-secret",
        "the vault is the one before the store"
    );

    f.docker_helper("erase", WATCH)
        .assert_success("erase after the crash");
    f.assert_docker_not_found(WATCH);
    assert_eq!(
        leftovers(&f),
        Vec::<String>::new(),
        "the erase's writer removes the temp file"
    );
    f.cli_ok(&["rotate", &f.key_arg()], None);
    keys.push(keyfile::read(&f.key()).expect("key after rotate"));

    let mut opened = Vec::new();
    for (path, bytes) in files(&f) {
        for secret in ["first-secret", "second-secret"] {
            assert_no_secret(&bytes, secret, &path.display().to_string());
        }
        for (n, key) in keys.iter().enumerate() {
            if let Ok(v) =
                SealedVault::parse(bytes.clone()).and_then(|s| s.open(&Key::Secret(key.clone())))
            {
                opened.push((
                    path.clone(),
                    n,
                    v.docker().iter().any(|e| e.server_url == WATCH),
                ));
            }
        }
    }
    assert_eq!(
        opened,
        [(f.vault(), 1, false)],
        "only the vault opens, only with the rotated key, and without the erased entry"
    );
    assert!(!pending_key_path(&f.key()).exists());
}
