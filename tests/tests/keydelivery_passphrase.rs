//! The passphrase at the first pull, through a real pseudo-terminal driven
//! by `expect`: the first `get` prompts on /dev/tty and answers, a detached
//! cache agent remembers the vault key so the second does not prompt,
//! `devc-vault lock` makes the third prompt again, and three wrong
//! passphrases give a clear failure and no credential.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_keydelivery::client::AgentClient;
use devc_vault_tests::agent::Agent;
use devc_vault_tests::fixture::sample::{EXPECTED, PASSPHRASE, SECRET, SERVER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar, NOT_FOUND};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::tools;

/// A vault with the sample docker entry and a passphrase slot, opened
/// only by what each test passes: the key file is not in the environment,
/// and the key order is the built-in one (file, agent, passphrase).
fn fixture(label: &str) -> Option<Fixture> {
    Fixture::build(label)
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .passphrase_slot()
        .create()
}

/// Only the passphrase can open the vault: no key file, no agent.
const ONLY_PASSPHRASE: [(&str, &str); 2] = [
    ("DEVC_VAULT_KEY_FILE", "/nonexistent/devc-vault-key"),
    ("DEVC_VAULT_AGENT_SOCK", "/nonexistent/agent.sock"),
];

struct Pty<'a> {
    env: &'a Fixture,
    expect: PathBuf,
    get_sh: PathBuf,
}

impl Pty<'_> {
    /// Runs an expect script body after `spawn get.sh`; returns expect's outcome.
    fn run(&self, name: &str, body: &str) -> Outcome {
        let script = format!(
            "set timeout 60\nlog_user 1\nspawn -noecho {}\n{body}\ncatch {{expect eof}}\nlassign [wait] pid spawnid os_error value\nexit $value\n",
            self.get_sh.display()
        );
        let path = self.env.dir().write(format!("{name}.exp"), script, 0o600);
        let mut cmd = Command::new(&self.expect);
        cmd.arg(&path);
        self.env.apply(&mut cmd);
        for (k, v) in ONLY_PASSPHRASE {
            cmd.env(k, v);
        }
        let out = process::run(&mut cmd, None, Duration::from_secs(120)).expect("spawn expect");
        eprintln!("[timing] {name}: {:?}", out.elapsed);
        out
    }
}

const ANSWER_ONCE: &str = "expect {\n  \"passphrase for vault\" { send -- \"correct horse battery\\r\" }\n  timeout { exit 101 }\n  eof { exit 102 }\n}\nexpect {\n  \"unlocking\" {}\n  timeout { exit 103 }\n}\n";

const NO_PROMPT: &str = "expect {\n  \"passphrase for vault\" { exit 104 }\n  eof {}\n}\n";

const WRONG_THRICE: &str = "for {set i 0} {$i < 3} {incr i} {\n  expect {\n    \"passphrase for vault\" { send -- \"wrong horse\\r\" }\n    timeout { exit 101 }\n    eof { exit 102 }\n  }\n}\nexpect {\n  \"giving up\" {}\n  timeout { exit 103 }\n}\n";

fn setup(label: &str) -> Option<(Fixture, PathBuf)> {
    let expect = tools::require_tool(
        "expect",
        "drives the passphrase prompt through a pty (apt: expect)",
    )?;
    let env = fixture(label)?;
    Some((env, expect))
}

fn pty<'a>(env: &'a Fixture, expect: &Path) -> Pty<'a> {
    let helper = env.docker_helper_path();
    // stdin carries the protocol payload; the prompt must use /dev/tty.
    let get_sh = env.dir().write(
        "get.sh",
        format!(
            "#!/bin/bash\n\
             # expect leaks its own stdout/stderr pipes (fds above 2) into what it\n\
             # spawns, and the detached cache agent would inherit them; docker's\n\
             # CLI passes only fds 0-2. Close those pipes so only the pty remains.\n\
             for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && [ -p /proc/$$/fd/$fd ] && eval \"exec $fd>&-\"; done\n\
             printf %s '{SERVER}' | exec '{}' get\n",
            helper.display()
        ),
        0o700,
    );
    Pty {
        env,
        expect: expect.to_path_buf(),
        get_sh,
    }
}

fn cache_pid(env: &Fixture) -> Option<u32> {
    let sock = env.runtime_dir().join("devc-vault/cache.sock");
    AgentClient::connect(&sock, devc_keydelivery::endpoint::Trust::Private)
        .and_then(|mut c| c.status())
        .map(|s| s.pid)
        .ok()
}

#[test]
fn passphrase_prompt_once_then_cache_then_lock() {
    let Some((env, expect)) = setup("kd-pass") else {
        return;
    };
    let pty = pty(&env, &expect);

    let first = pty.run("first", ANSWER_ONCE);
    assert_eq!(first.code(), Some(0), "first get\n{}", first.describe());
    assert!(
        first.stdout_str().contains(EXPECTED),
        "{}",
        first.describe()
    );
    assert!(
        !first.stdout_str().contains(PASSPHRASE),
        "the passphrase was echoed\n{}",
        first.describe()
    );

    // The cache agent: detached (own session), stdio closed, not dumpable.
    let pid = cache_pid(&env).expect("a cache agent after the first get");
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(") ")
        .next()
        .unwrap_or_default()
        .split(' ')
        .collect();
    assert_eq!(
        fields.get(3).copied(),
        Some(pid.to_string().as_str()),
        "not a session leader: {stat}"
    );
    for fd in 0..3 {
        let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("fd link");
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }

    let second = pty.run("second", NO_PROMPT);
    assert_eq!(
        second.code(),
        Some(0),
        "second get prompted or failed\n{}",
        second.describe()
    );
    assert!(
        second.stdout_str().contains(EXPECTED),
        "{}",
        second.describe()
    );

    env.cli_ok(&["lock", "--socket", "/nonexistent/agent.sock"], None);
    assert!(
        process::wait_for(Duration::from_secs(5), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "the cache agent kept running after lock"
    );
    let third = pty.run("third", ANSWER_ONCE);
    assert_eq!(
        third.code(),
        Some(0),
        "third get did not prompt again\n{}",
        third.describe()
    );
    assert!(
        third.stdout_str().contains(EXPECTED),
        "{}",
        third.describe()
    );
}

#[test]
fn three_wrong_passphrases_fail_clearly() {
    let Some((env, expect)) = setup("kd-wrong") else {
        return;
    };
    let out = pty(&env, &expect).run("wrong", WRONG_THRICE);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    let text = out.stdout_str();
    assert!(text.contains(NOT_FOUND.trim_end()), "{}", out.describe());
    assert!(
        text.contains("wrong passphrase (3 tries)"),
        "{}",
        out.describe()
    );
    assert!(!text.contains(SECRET), "{}", out.describe());
    assert!(
        cache_pid(&env).is_none(),
        "a cache agent started after a failed unlock"
    );
}

#[test]
fn unlock_ahead_of_time_and_no_terminal_no_prompt() {
    let Some(env) = fixture("kd-unlock") else {
        return;
    };
    let helper = env.docker_helper_path();
    let get = |env: &Fixture| {
        let mut cmd = Command::new(helper);
        cmd.arg("get");
        env.apply(&mut cmd);
        for (k, v) in ONLY_PASSPHRASE {
            cmd.env(k, v);
        }
        // setsid: certainly no controlling terminal, so no prompt is tried.
        let mut wrapped = process::without_terminal(&cmd);
        process::run(
            &mut wrapped,
            Some(SERVER.as_bytes()),
            Duration::from_secs(60),
        )
        .expect("spawn")
    };
    let out = get(&env);
    assert_eq!(
        out.stdout_str().trim_end(),
        NOT_FOUND.trim_end(),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("no terminal"),
        "{}",
        out.describe()
    );

    let mut unlock = env.cli_cmd(&[
        "unlock",
        "--socket",
        "/nonexistent/agent.sock",
        "--passphrase-fd",
        "0",
    ]);
    for (k, v) in ONLY_PASSPHRASE {
        unlock.env(k, v);
    }
    let out = process::run_ok(
        &mut unlock,
        Some(PASSPHRASE.as_bytes()),
        Duration::from_secs(60),
        "devc-vault unlock",
    );
    assert!(
        out.stdout_str().contains("cached for 15m idle, 4h at most"),
        "{}",
        out.describe()
    );
    let out = get(&env);
    out.assert_success("get after unlock, no terminal");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);
}

/// A private runtime directory another user made first (a squatted
/// `/tmp/devc-vault-<uid>`), with fake servers at the cache's socket and at
/// an agent's owner endpoint, never receives a byte: not the vault key
/// `unlock` hands to the cache, not a request from `lock`, `unlock`,
/// `status`, `slot add agent` or the helpers on the agent road. The client
/// checks the peer's uid and the directory before it sends anything.
#[test]
fn vault_key_never_goes_to_another_users_cache() {
    let Some(env) = fixture("kd-squat") else {
        return;
    };
    let Some(setpriv) = tools::require_tool("setpriv", "runs the squatter as another uid") else {
        return;
    };
    if !tools::require_root("switching to uid 65534 needs root") {
        return;
    }
    let dir = env.runtime_dir().join("devc-vault");
    fs::create_dir(&dir).expect("mkdir");
    devc_vault_tests::scratch::set_mode(&dir, 0o700);
    devc_vault_tests::scratch::set_owner(&dir, 65534, 65534);
    devc_vault_tests::scratch::set_mode(env.path(), 0o711);
    devc_vault_tests::scratch::set_mode(&env.runtime_dir(), 0o711);
    let sock = dir.join("cache.sock");
    let recorded = dir.join("recorded");
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(tools::bin_path("devc-test-probe"))
        .arg("listen")
        .args([&sock, &recorded]);
    env.apply(&mut cmd);
    let _squatter = Agent::spawn(cmd, &sock, &env.path().join("squat.log"));
    // The owner endpoint of an agent on `agent_sock`, squatted the same way.
    let agent_sock = env.agent_socket();
    let owner_dir = dir.join("owner");
    fs::create_dir(&owner_dir).expect("mkdir");
    devc_vault_tests::scratch::set_mode(&owner_dir, 0o700);
    devc_vault_tests::scratch::set_owner(&owner_dir, 65534, 65534);
    let owner_sock = owner_dir.join(
        devc_keydelivery::environment::owner_socket(&agent_sock)
            .file_name()
            .expect("a file name"),
    );
    let owner_recorded = dir.join("recorded-owner");
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(tools::bin_path("devc-test-probe"))
        .arg("listen")
        .args([&owner_sock, &owner_recorded]);
    env.apply(&mut cmd);
    let _owner_squatter = Agent::spawn(cmd, &owner_sock, &env.path().join("squat-owner.log"));

    let mut unlock = env.cli_cmd(&[
        "unlock",
        "--socket",
        "/nonexistent/agent.sock",
        "--passphrase-fd",
        "0",
    ]);
    for (k, v) in ONLY_PASSPHRASE {
        unlock.env(k, v);
    }
    let out = process::run(
        &mut unlock,
        Some(PASSPHRASE.as_bytes()),
        Duration::from_secs(60),
    )
    .expect("spawn unlock");
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr_str()
            .contains("belongs to uid 65534, not to you")
            && out.stderr_str().contains("set XDG_RUNTIME_DIR"),
        "{}",
        out.describe()
    );
    // Every other command that talks to the owner endpoint or the cache.
    let s = agent_sock.display().to_string();
    let key = env.key_str();
    let agent_road = [
        ("DEVC_VAULT_KEY_ORDER", "agent,passphrase"),
        ("DEVC_VAULT_AGENT_SOCK", s.as_str()),
        ("DEVC_VAULT_KEY_FILE", "/nonexistent/devc-vault-key"),
    ];
    let store = format!(r#"{{"ServerURL":"{SERVER}","Username":"u","Secret":"squat-test"}}"#);
    let mut runs: Vec<(Command, Option<&[u8]>)> = vec![
        (env.cli_cmd(&["lock", "--socket", &s]), None),
        (env.cli_cmd(&["unlock", "--socket", &s]), None),
        (env.cli_cmd(&["status", "--socket", &s]), None),
        (
            env.cli_cmd(&["slot", "add", "agent", "--socket", &s, "--key-file", &key]),
            None,
        ),
    ];
    for (verb, input) in [("get", SERVER), ("store", store.as_str())] {
        let mut cmd = env.command(env.docker_helper_path());
        cmd.arg(verb);
        runs.push((cmd, Some(input.as_bytes())));
    }
    for (mut cmd, input) in runs {
        for (k, v) in agent_road {
            cmd.env(k, v);
        }
        // setsid: no terminal to prompt on.
        let mut wrapped = process::without_terminal(&cmd);
        let out = process::run(&mut wrapped, input, Duration::from_secs(60)).expect("spawn");
        assert!(!out.timed_out, "{}", out.describe());
        assert!(
            !out.stdout_str().contains(SECRET),
            "a credential came out\n{}",
            out.describe()
        );
    }
    // Not a byte, not even the vault's id: the directory and the peer are
    // refused before anything is sent.
    for (what, log) in [("cache", &recorded), ("owner endpoint", &owner_recorded)] {
        let got = fs::read(log).unwrap_or_default();
        assert!(
            got.is_empty(),
            "the squatter's {what} received {} bytes",
            got.len()
        );
    }
    devc_vault_tests::scratch::set_mode(env.path(), 0o700);
}
