//! The key agent end to end (issue 5): the docker helper through an agent
//! only, peer-uid refusal, TTL/lock/unlock, rotate while serving, socket
//! directory rules, 100 concurrent clients, malformed messages, hardening,
//! the no-key-source message and the `key_command` source.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use devc_keydelivery::client::AgentClient;
use devc_keydelivery::endpoint::Trust;
use devc_keydelivery::protocol::{self, ErrorCode, Request, RequestFrame, Response};
use devc_vault::{Key, Store};
use devc_vault_tests::agent::Agent;
use devc_vault_tests::fixture::sample::{EXPECTED, SERVER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar, NOT_FOUND};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch;
use devc_vault_tests::tools;

const NO_KEY: &str = "/nonexistent/devc-vault-key";

/// A vault with the sample docker entry, opened only by what each test
/// passes: no key file in the environment, and the key order is
/// the built-in one (file, agent, passphrase).
fn fixture(label: &str) -> Option<Fixture> {
    Fixture::build(label)
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
}

/// The docker helper's `get` of the sample server, with `extra` environment.
fn get(env: &Fixture, extra: &[(&str, &Path)]) -> Outcome {
    let mut cmd = env.command(env.docker_helper_path());
    cmd.arg("get");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    env.run(&mut cmd, Some(SERVER.as_bytes()))
}

/// Runs an agent command expected to fail at start; returns its outcome.
fn agent_start_fails(env: &Fixture, socket: &Path, args: &[&str]) -> Outcome {
    let mut cmd = env.cli_cmd(&["agent", "--socket", &socket.display().to_string()]);
    cmd.args(args);
    process::run(&mut cmd, None, Duration::from_secs(20)).expect("spawn agent")
}

fn only_agent(sock: &Path) -> [(&'static str, &Path); 2] {
    [
        ("DEVC_VAULT_AGENT_SOCK", sock),
        ("DEVC_VAULT_KEY_FILE", Path::new(NO_KEY)),
    ]
}

#[test]
fn docker_get_through_the_agent_only() {
    let Some(env) = fixture("kd-get") else {
        return;
    };
    let sock = env.path().join("sock/agent.sock");
    let agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);

    let out = get(&env, &only_agent(&sock));
    out.assert_success("get through the agent");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);

    // An agent slot made by the agent opens the vault through it as well.
    env.cli_ok(
        &[
            "slot",
            "add",
            "agent",
            "--socket",
            &sock.display().to_string(),
            "--key-file",
            &env.key_str(),
        ],
        None,
    );
    let list = env.cli_ok(&["slot", "list"], None).stdout_str();
    assert!(list.contains(" agent"), "{list}");

    // status names the key id and never a secret.
    let st = env
        .cli_ok(&["status", "--socket", &sock.display().to_string()], None)
        .stdout_str();
    let key_text = fs::read_to_string(env.key()).expect("key");
    let secret_hex = key_text.trim().rsplit(' ').next().expect("hex");
    assert!(
        st.contains("keyfile ") && st.contains("opens via agent"),
        "{st}"
    );
    assert!(!st.contains(secret_hex), "status printed the key");
    assert!(
        !agent.log().contains(secret_hex),
        "the agent logged the key"
    );
}

#[test]
fn another_uid_is_refused_by_peer_credentials() {
    let Some(env) = fixture("kd-uid") else {
        return;
    };
    let Some(setpriv) = tools::require_tool("setpriv", "runs a client as another uid (util-linux)")
    else {
        return;
    };
    if !tools::require_root("switching to uid 65534 needs root") {
        return;
    }
    let sock = env.path().join("sock/agent.sock");
    let agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    // Let uid 65534 reach the binary and through the private scratch dir.
    scratch::set_mode(env.path(), 0o711);
    let cli = env.cli_path().display().to_string();
    let s = sock.display().to_string();
    // With CAP_DAC_OVERRIDE kept, the directory mode does not stop it: only
    // the agent's SO_PEERCRED check can.
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([
            "--inh-caps",
            "+dac_override",
            "--ambient-caps",
            "+dac_override",
        ])
        .args([&cli, "status", "--socket", &s]);
    env.apply(&mut cmd);
    // Its own runtime directory: it reaches the agent as a container would.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_RUNTIME_DIR", "/nonexistent");
    let out = process::run(&mut cmd, None, Duration::from_secs(20)).expect("setpriv");
    assert!(
        out.stdout_str().contains("uid 65534 is not allowed"),
        "{}",
        out.describe()
    );
    assert!(
        agent.log().contains("refused connection from uid 65534"),
        "agent log: {}",
        agent.log()
    );
    // Without the capability the 0700 directory already stops it.
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([&cli, "status", "--socket", &s]);
    env.apply(&mut cmd);
    cmd.env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_RUNTIME_DIR", "/nonexistent");
    let out = process::run(&mut cmd, None, Duration::from_secs(20)).expect("setpriv");
    assert!(
        out.stdout_str().contains("Permission denied") || out.stdout_str().contains("not allowed"),
        "{}",
        out.describe()
    );
    scratch::set_mode(env.path(), 0o700);
}

#[test]
fn idle_ttl_and_lock_stop_service_until_unlock() {
    let Some(env) = fixture("kd-ttl") else {
        return;
    };
    let sock = env.path().join("sock/agent.sock");
    let _agent = env.start_agent(&sock, &["--key-file", &env.key_str(), "--idle-ttl", "2s"]);
    get(&env, &only_agent(&sock)).assert_success("first get");

    thread::sleep(Duration::from_millis(2500));
    let out = get(&env, &only_agent(&sock));
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert_eq!(out.stdout_str().trim_end(), NOT_FOUND.trim_end());
    assert!(out.stderr_str().contains("idle TTL"), "{}", out.describe());

    let s = sock.display().to_string();
    env.cli_ok(&["unlock", "--socket", &s], None);
    get(&env, &only_agent(&sock)).assert_success("get after unlock");

    env.cli_ok(&["lock", "--socket", &s], None);
    let out = get(&env, &only_agent(&sock));
    assert_eq!(
        out.stdout_str().trim_end(),
        NOT_FOUND.trim_end(),
        "{}",
        out.describe()
    );
    assert!(out.stderr_str().contains("locked"), "{}", out.describe());
    let st = env.cli_ok(&["status", "--socket", &s], None).stdout_str();
    assert!(st.contains("locked (lock)"), "{st}");

    env.cli_ok(&["unlock", "--socket", &s], None);
    get(&env, &only_agent(&sock)).assert_success("get after second unlock");
}

#[test]
fn rotate_while_the_agent_runs() {
    let Some(env) = fixture("kd-rotate") else {
        return;
    };
    let sock = env.path().join("sock/agent.sock");
    let _agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    get(&env, &only_agent(&sock)).assert_success("get before rotate");
    let old = env.path().join("old-key");
    fs::copy(env.key(), &old).expect("copy key");
    fs::set_permissions(&old, fs::Permissions::from_mode(0o600)).expect("chmod");

    env.cli_ok(&["rotate", "--key-file", &env.key_str()], None);

    let out = get(&env, &only_agent(&sock));
    out.assert_success("get through the agent after rotate");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);
    // The old key no longer opens the vault.
    let out = get(
        &env,
        &[
            ("DEVC_VAULT_KEY_FILE", &old),
            (
                "DEVC_VAULT_AGENT_SOCK",
                Path::new("/nonexistent/agent.sock"),
            ),
        ],
    );
    assert_eq!(
        out.stdout_str().trim_end(),
        NOT_FOUND.trim_end(),
        "{}",
        out.describe()
    );
    // And SIGHUP re-reads (no change now, still serving).
    _agent.signal("HUP");
    get(&env, &only_agent(&sock)).assert_success("get after SIGHUP");
}

#[test]
fn socket_directory_rules_stale_socket_and_sigterm() {
    let Some(env) = fixture("kd-sockdir") else {
        return;
    };
    let open_dir = env.dir().mkdir("open", 0o755);
    let out = agent_start_fails(
        &env,
        &open_dir.join("agent.sock"),
        &["--key-file", &env.key_str()],
    );
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("mode 0755") && out.stderr_str().contains("chmod 700"),
        "{}",
        out.describe()
    );
    assert!(!open_dir.join("agent.sock").exists());

    // A created directory is 0700; a second agent on a live socket is refused.
    let sock = env.path().join("fresh/sub/agent.sock");
    let mut agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    let mode = fs::metadata(sock.parent().expect("dir"))
        .expect("stat")
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o700);
    let out = agent_start_fails(&env, &sock, &["--key-file", &env.key_str()]);
    assert!(
        out.stderr_str().contains("already running"),
        "{}",
        out.describe()
    );

    // SIGTERM removes the socket.
    agent.signal("TERM");
    assert!(
        agent.wait_exit(Duration::from_secs(10)).is_some(),
        "agent ignored SIGTERM"
    );
    assert!(!sock.exists(), "socket left behind after SIGTERM");

    // A dead agent's socket (SIGKILL leaves it) is replaced.
    let agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    drop(agent);
    assert!(sock.exists(), "SIGKILL leaves the socket file");
    let _again = env.start_agent(&sock, &["--key-file", &env.key_str()]);
}

#[test]
fn hundred_concurrent_clients() {
    let Some(env) = fixture("kd-100") else {
        return;
    };
    let sock = env.path().join("sock/agent.sock");
    let _agent = env.start_agent(&sock, &["--key-file", &env.key_str(), "--quiet"]);
    let sealed = Arc::new(Store::new(env.vault()).read().expect("vault"));
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (sealed, barrier, sock) = (Arc::clone(&sealed), Arc::clone(&barrier), sock.clone());
            thread::spawn(move || {
                let c = AgentClient::connect(&sock, Trust::ContainerFacing);
                // Everyone reaches the barrier, even a failed connect, so
                // one failure cannot deadlock the rest.
                barrier.wait();
                let mut c = c.map_err(|e| e.to_string())?;
                // Every tenth client also sends garbage first: it gets an
                // error and the same connection keeps working.
                if i % 10 == 0 {
                    let mut raw = UnixStream::connect(&sock).map_err(|e| e.to_string())?;
                    raw.write_all(&[0, 0, 0, 3, b'{', b'x', b'}'])
                        .map_err(|e| e.to_string())?;
                    let body = protocol::read_frame(&mut raw)
                        .map_err(|e| e.to_string())?
                        .ok_or("no reply")?;
                    match protocol::parse_response(&body) {
                        Ok(Response::Error {
                            code: ErrorCode::Malformed,
                            ..
                        }) => {}
                        other => return Err(format!("garbage got {other:?}")),
                    }
                }
                for _ in 0..5 {
                    c.open(&sealed).map_err(|e| e.to_string()).and_then(|k| {
                        // The answer opens the vault: version keys, not the master key.
                        sealed
                            .open(&Key::Delegated(k, Arc::new(NoWrites)))
                            .map_err(|e| e.to_string())
                    })?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .filter_map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("thread panicked".into()))
                .err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 100 clients failed: {:?}",
        failures.len(),
        failures
    );
}

fn raw_request(stream: &mut UnixStream, body: &[u8]) -> Option<Response> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).ok()?;
    let reply = protocol::read_frame(stream).ok()??;
    protocol::parse_response(&reply).ok()
}

#[test]
fn malformed_oversized_and_wrong_version_messages() {
    let Some(env) = fixture("kd-malformed") else {
        return;
    };
    let sock = env.path().join("sock/agent.sock");
    let mut agent = env.start_agent(&sock, &["--key-file", &env.key_str()]);
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for (body, want) in [
        (&b"not json"[..], ErrorCode::Malformed),
        (br#"{"v":2,"req":{"open":{"vault":"zz","salt":"00","slots":[]}}}"#, ErrorCode::Malformed),
        (br#"{"v":7,"req":"status"}"#, ErrorCode::Version),
        // A client of protocol 1 (which asked for the master key) is told so.
        (br#"{"v":1,"req":{"unwrap":{"vault":"zz","slots":[]}}}"#, ErrorCode::Version),
        (br#"{"v":2,"req":{"add_master":{"vault":"00000000000000000000000000000000","master":"00"}}}"#, ErrorCode::Malformed),
        // The container-facing socket answers key requests only.
        (br#"{"v":2,"req":"status"}"#, ErrorCode::Refused),
    ] {
        match raw_request(&mut s, body) {
            Some(Response::Error { code, .. }) => assert_eq!(code, want, "{}", String::from_utf8_lossy(body)),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
    // Still serving on the same connection.
    let ok = serde_json::to_vec(&RequestFrame {
        v: protocol::VERSION,
        req: Request::Ping,
    })
    .expect("json");
    assert!(matches!(
        raw_request(&mut s, &ok),
        Some(Response::Pong { .. })
    ));
    // An oversized length prefix: an error reply, then the connection closes.
    let mut big = UnixStream::connect(&sock).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    big.write_all(&(16u32 << 20).to_be_bytes()).expect("write");
    let body = protocol::read_frame(&mut big)
        .expect("reply")
        .expect("frame");
    assert!(matches!(
        protocol::parse_response(&body),
        Ok(Response::Error {
            code: ErrorCode::TooLarge,
            ..
        })
    ));
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    // A client that connects and hangs up at once does not disturb it either.
    drop(UnixStream::connect(&sock).expect("connect"));
    assert!(agent.running());
    AgentClient::connect(&sock, Trust::ContainerFacing)
        .and_then(|mut c| c.ping())
        .expect("ping after abuse");
}

#[test]
fn agent_is_not_dumpable_and_its_socket_dir_is_private() {
    let Some(env) = fixture("kd-dump") else {
        return;
    };
    let Some(setpriv) =
        tools::require_tool("setpriv", "runs the agent as a non-root uid (util-linux)")
    else {
        return;
    };
    if !tools::require_root("switching to uid 65534 needs root") {
        return;
    }
    // Run as uid 65534: /proc/PID of a non-dumpable process is owned by
    // root instead of its uid (proc(5)), which is visible from outside.
    let home = env.dir().mkdir("nobody", 0o700);
    let runtime = env.dir().mkdir("nobody/run", 0o700);
    scratch::set_owner(&home, 65534, 65534);
    scratch::set_owner(&runtime, 65534, 65534);
    let key = home.join("key");
    fs::copy(env.key(), &key).expect("copy key");
    scratch::set_owner(&key, 65534, 65534);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    scratch::set_mode(env.path(), 0o711);
    let sock = home.join("sock/agent.sock");
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env.cli_path())
        .args([
            "agent",
            "--socket",
            &sock.display().to_string(),
            "--key-file",
            &key.display().to_string(),
        ]);
    env.apply(&mut cmd);
    cmd.env("XDG_RUNTIME_DIR", &runtime);
    let agent = Agent::spawn(cmd, &sock, &env.path().join("dump-agent.log"));
    let proc_dir = format!("/proc/{}", agent.pid());
    // setpriv execs the agent, so the pid is the agent's.
    let status = fs::read_to_string(format!("{proc_dir}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    let owner = fs::metadata(format!("{proc_dir}/status"))
        .expect("stat")
        .uid();
    assert_eq!(
        owner, 0,
        "/proc/PID of the agent is owned by {owner}: it is dumpable"
    );
    let limits = fs::read_to_string(format!("{proc_dir}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    let dir_mode = fs::metadata(sock.parent().expect("dir"))
        .expect("stat")
        .mode()
        & 0o7777;
    assert_eq!(dir_mode, 0o700);
    drop(agent);
    // The control: an ordinary process of the same uid owns its /proc/PID,
    // so the check above does tell dumpable from not.
    let mut sleeper = Command::new(&setpriv)
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "sleep",
            "30",
        ])
        .spawn()
        .expect("spawn sleep");
    let status = format!("/proc/{}/status", sleeper.id());
    // Until setpriv has switched uid and exec'd, the process is still root's.
    process::wait_for(Duration::from_secs(5), || {
        fs::read_to_string(&status).is_ok_and(|s| s.contains("Name:\tsleep"))
    });
    let owner = fs::metadata(&status).map(|m| m.uid());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(
        owner.ok(),
        Some(65534),
        "an ordinary uid-65534 process should own its /proc/PID"
    );
    scratch::set_mode(env.path(), 0o700);
}

#[test]
fn no_key_source_is_not_found_with_one_stderr_line() {
    let Some(env) = fixture("kd-nokey") else {
        return;
    };
    let out = get(&env, &only_agent(Path::new("/nonexistent/agent.sock")));
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert_eq!(out.stdout_str().trim_end(), NOT_FOUND.trim_end());
    let err = out.stderr_str();
    assert_eq!(err.lines().count(), 1, "{}", out.describe());
    for word in [
        "file:",
        "agent:",
        "passphrase:",
        NO_KEY,
        "/nonexistent/agent.sock",
    ] {
        assert!(err.contains(word), "missing {word:?}: {err}");
    }
}

#[test]
fn key_command_source() {
    let Some(env) = fixture("kd-cmd") else {
        return;
    };
    let conf = env.dir().write(
        "vault.toml",
        format!("order = [\"command\"]\nkey_command = [\"cat\", \"{}\"]\nkey_command_timeout_secs = 5\n", env.key().display()),
        0o600,
    );
    let out = get(&env, &[("DEVC_VAULT_CONFIG", &conf)]);
    out.assert_success("get via key_command");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);

    let conf = env.dir().write(
        "bad.toml",
        "order = [\"command\"]\nkey_command = [\"false\"]\n",
        0o600,
    );
    let out = get(&env, &[("DEVC_VAULT_CONFIG", &conf)]);
    assert_eq!(out.stdout_str().trim_end(), NOT_FOUND.trim_end());
    assert!(
        out.stderr_str().contains("key_command \"false\" failed"),
        "{}",
        out.describe()
    );
}

#[test]
fn passphrase_opened_agent_and_vault_allow_list() {
    let Some(env) = Fixture::build("kd-passagent")
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .passphrase_slot()
        .create()
    else {
        return;
    };
    // The agent opens the vault with its passphrase once, at start, and
    // holds the vault's master key; no key file is involved.
    let sock = env.path().join("sock/agent.sock");
    let agent = env.passphrase_agent(&sock, &env.path().join("pass-agent.log"));
    let out = get(&env, &only_agent(&sock));
    out.assert_success("get through a passphrase-opened agent");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);
    drop(agent);

    // --allow-vault with another id: this vault is not served.
    let other = "0123456789abcdef0123456789abcdef";
    let _agent = env.start_agent(
        &sock,
        &["--key-file", &env.key_str(), "--allow-vault", other],
    );
    let out = get(&env, &only_agent(&sock));
    assert_eq!(
        out.stdout_str().trim_end(),
        NOT_FOUND.trim_end(),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("--allow-vault"),
        "{}",
        out.describe()
    );
}

/// A key service for opening only: these tests never write through it.
#[derive(Debug)]
struct NoWrites;

impl devc_vault::KeyService for NoWrites {
    fn write_keys(
        &self,
        _: &devc_vault::VaultId,
        _: &[devc_vault::Slot],
    ) -> devc_vault::Result<devc_vault::AccessKeys> {
        Err(devc_vault::Error::KeyService {
            reason: "not for writing".into(),
        })
    }
}
