//! Process hygiene, checked on the running binaries:
//!
//! - a helper blocked in the middle of answering (a 64 KiB secret into a
//!   pipe nobody reads), run as a non-root uid: core limit 0, and not
//!   dumpable (its `/proc/PID` files belong to root, unlike those of an
//!   ordinary process of that uid);
//! - a passphrase prompt on a real terminal ended by SIGINT, SIGTERM,
//!   SIGHUP or SIGQUIT leaves echo on (`stty -a` on the same pty afterwards);
//! - the detached passphrase cache keeps no descriptor it inherited:
//!   `devc-vault unlock ... 7>&1 | cat` returns at once;
//! - `--passphrase-fd N` reads the descriptor itself: one end of a socket
//!   pair, and a file from where its reader left it.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use devc_vault_tests::agent;
use devc_vault_tests::fixture::sample::{KDF_COST, PASSPHRASE, SERVER, USER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::set_owner_recursive;
use devc_vault_tests::tools;

/// The uid the blocked helper runs as.
const NOBODY: u32 = 65534;

/// A child killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The owner of `/proc/PID/status`, and the real uid in it.
fn proc_owner_and_uid(pid: u32) -> (u32, u32) {
    let path = format!("/proc/{pid}/status");
    let owner = fs::metadata(&path).expect("status").uid();
    let text = fs::read_to_string(&path).expect("status");
    let uid = text
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid: line");
    (owner, uid)
}

/// Whether `pid` sleeps writing into a full pipe.
fn blocked_writing(pid: u32) -> bool {
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
    state == Some('S') && wchan.contains("pipe_write")
}

#[test]
fn a_helper_blocked_answering_has_no_core_limit_and_is_not_dumpable() {
    let Some(setpriv) = tools::require_tool("setpriv", "runs the helper as another uid") else {
        return;
    };
    if !tools::require_root("switching to uid 65534 needs root") {
        return;
    }
    let Some(f) = Fixture::new("hyg-dump") else {
        return;
    };
    // 64 KiB: more than a pipe holds, so the answer blocks half written.
    let secret: String = "0123456789abcdef".repeat(4096);
    f.docker_store("big.example", "u", &secret);
    set_owner_recursive(f.path(), NOBODY, NOBODY).expect("chown");
    let as_nobody = |program: &Path| {
        let mut cmd = Command::new(&setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        f.apply(&mut cmd);
        cmd
    };

    // An ordinary process of that uid owns its /proc files.
    let control = Reaped(
        as_nobody(Path::new("/bin/sleep"))
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let ctl = control.0.id();
    assert!(process::wait_for(Duration::from_secs(5), || {
        fs::read_link(format!("/proc/{ctl}/exe")).is_ok_and(|e| e.ends_with("sleep"))
    }));
    assert_eq!(proc_owner_and_uid(ctl), (NOBODY, NOBODY), "the control");

    let mut cmd = as_nobody(f.docker_helper_path());
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut helper = Reaped(cmd.spawn().expect("spawn helper"));
    let pid = helper.0.id();
    let mut stdin = helper.0.stdin.take().expect("stdin");
    stdin.write_all(b"big.example").expect("write request");
    drop(stdin);
    // Held, never read.
    let _stdout = helper.0.stdout.take().expect("stdout");
    assert!(
        process::wait_for(Duration::from_secs(20), || blocked_writing(pid)),
        "the helper did not block writing its answer (wchan {:?})",
        fs::read_to_string(format!("/proc/{pid}/wchan"))
    );

    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
    assert_eq!(
        proc_owner_and_uid(pid),
        (0, NOBODY),
        "/proc/PID of the helper must belong to root (not dumpable)"
    );
    drop(helper);
    drop(control);
    set_owner_recursive(f.path(), 0, 0).expect("chown back");
}

/// Runs `devc-vault slot add passphrase` on a pty under expect, sends
/// `signal` to it at the prompt, and returns expect's transcript.
fn interrupted_prompt(f: &Fixture, expect: &Path, signal: &str) -> Outcome {
    let cli = f.cli_path().display().to_string();
    let key = f.key_arg();
    // Not an interactive shell: bash would put the terminal back itself.
    let script = format!(
        r#"set timeout 30
log_user 1
spawn -noecho bash --norc --noprofile -c {{{cli} slot add passphrase {key} --kdf-cost {KDF_COST}; echo "STATUS=$?"; stty -a; echo END}}
set shell [exp_pid]
set tty $spawn_out(slave,name)
expect {{
  "New vault passphrase: " {{}}
  timeout {{ exit 101 }}
  eof {{ exit 102 }}
}}
puts "\nDURING: [exec stty -a -F $tty]"
set cli [string trim [exec cat /proc/$shell/task/$shell/children]]
exec kill -s {signal} $cli
expect {{
  -re {{STATUS=[0-9]+}} {{}}
  timeout {{ exit 103 }}
}}
expect {{
  "END" {{}}
  timeout {{ exit 104 }}
}}
catch {{expect eof}}
exit 0
"#
    );
    let path = f.dir().write(format!("prompt-{signal}.exp"), script, 0o600);
    let mut cmd = Command::new(expect);
    cmd.arg(path);
    f.apply(&mut cmd);
    process::run(&mut cmd, None, Duration::from_secs(60)).expect("expect")
}

/// Whether the `stty -a` text in `text` says echo is on.
fn echo_on(text: &str) -> Option<bool> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    if words.contains(&"-echo") {
        Some(false)
    } else if words.contains(&"echo") {
        Some(true)
    } else {
        None
    }
}

#[test]
fn a_prompt_ended_by_a_signal_leaves_echo_on() {
    let Some(expect) =
        tools::require_tool("expect", "drives the prompt through a pty (apt: expect)")
    else {
        return;
    };
    let Some(f) = Fixture::new("hyg-prompt") else {
        return;
    };
    let before = fs::read(f.vault()).expect("vault");
    for (signal, number) in [("INT", 2), ("TERM", 15), ("HUP", 1), ("QUIT", 3)] {
        let out = interrupted_prompt(&f, &expect, signal);
        assert_eq!(out.code(), Some(0), "SIG{signal}\n{}", out.describe());
        let text = out.stdout_str();
        let during = text
            .split("DURING: ")
            .nth(1)
            .and_then(|t| t.split("STATUS=").next())
            .unwrap_or_default();
        assert_eq!(
            echo_on(during),
            Some(false),
            "SIG{signal}: echo was on at the prompt\n{}",
            out.describe()
        );
        assert!(
            text.contains(&format!("STATUS={}", 128 + number)),
            "SIG{signal} did not end the prompt by the signal\n{}",
            out.describe()
        );
        let after = text
            .rsplit("STATUS=")
            .next()
            .and_then(|t| t.split("END").next())
            .unwrap_or_default();
        assert_eq!(
            echo_on(after),
            Some(true),
            "SIG{signal} left echo off\n{}",
            out.describe()
        );
    }
    assert_eq!(fs::read(f.vault()).expect("vault"), before);
}

/// Only the passphrase opens the vault (the key file named in the
/// environment does not exist, and no agent runs).
fn passphrase_fixture(label: &str) -> Option<Fixture> {
    let mut f = Fixture::build(label)
        .key_file_var(KeyFileVar::Missing)
        .sample_entry()
        .passphrase_slot()
        .create()?;
    f.set_env("DEVC_VAULT_KEY_ORDER", "passphrase");
    Some(f)
}

#[test]
fn the_detached_cache_keeps_no_inherited_descriptor() {
    let Some(f) = passphrase_fixture("hyg-cache") else {
        return;
    };
    let pass = f.dir().write("pass", format!("{PASSPHRASE}\n"), 0o600);
    let mut cmd = f.command("bash");
    cmd.args([
        "-c",
        r#""$0" unlock --socket /nonexistent/agent.sock --passphrase-fd 3 3<"$1" 7>&1 | cat"#,
    ])
    .arg(f.cli_path())
    .arg(&pass);
    let out = process::run(&mut cmd, None, Duration::from_secs(30)).expect("bash");
    assert!(
        out.success() && out.elapsed < Duration::from_secs(10),
        "the pipe was held open\n{}",
        out.describe()
    );
    assert!(
        out.stdout_str().contains("cached for"),
        "{}",
        out.describe()
    );
    // The cache runs, holding nothing but its own sockets above fd 2.
    let pids = agent::listeners(&f.cache_socket());
    assert_eq!(pids.len(), 1, "one cache listens");
    for e in fs::read_dir(format!("/proc/{}/fd", pids[0])).expect("fds") {
        let e = e.expect("fd");
        let fd: u32 = e.file_name().to_string_lossy().parse().expect("number");
        let target = fs::read_link(e.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if fd <= 2 {
            assert_eq!(target, "/dev/null", "fd {fd}");
        } else {
            assert!(
                target.starts_with("socket:") || target.starts_with("anon_inode:"),
                "the cache holds fd {fd} -> {target}"
            );
        }
    }
    // And it answers: the helper gets the credential without a prompt.
    let got = f.docker_get(SERVER);
    assert_eq!(got["Username"], USER);
}

#[test]
fn passphrase_fd_reads_a_socket_and_a_partly_read_file() {
    let Some(f) = passphrase_fixture("hyg-fd") else {
        return;
    };
    let listed = |out: &Outcome, what: &str| {
        out.assert_success(what);
        assert!(
            out.stdout_str().contains(&format!("{SERVER}  {USER}")),
            "{what}\n{}",
            out.describe()
        );
    };

    // One end of a socket pair as descriptor 0 (`/proc/self/fd/0` cannot be
    // reopened for a socket: the descriptor itself must be read).
    let (mut ours, theirs) = UnixStream::pair().expect("socketpair");
    ours.write_all(format!("{PASSPHRASE}\nignored second line\n").as_bytes())
        .expect("write");
    ours.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut cmd = f.cli_cmd(&["--passphrase-fd", "0", "list"]);
    let out = process::run_with_stdin(
        &mut cmd,
        Stdio::from(OwnedFd::from(theirs)),
        Duration::from_secs(30),
    )
    .expect("run");
    listed(&out, "a passphrase from a socket");

    // A file whose first line its reader already took, as descriptor 3.
    let file = f.dir().write(
        "two-lines",
        format!("not the passphrase\n{PASSPHRASE}\n"),
        0o600,
    );
    let run_fd3 = |skip: bool| {
        let skip = if skip { "read -r skipped <&3; " } else { "" };
        let mut cmd = f.command("bash");
        cmd.arg("-c")
            .arg(format!(
                r#"exec 3<"$1"; {skip}exec "$0" --passphrase-fd 3 list"#
            ))
            .arg(f.cli_path())
            .arg(&file);
        f.run(&mut cmd, None)
    };
    listed(&run_fd3(true), "fd 3 after its first line was read");
    // The control: from the start, the first line is the wrong passphrase.
    let out = run_fd3(false);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr_str().contains("no key opens this vault"),
        "{}",
        out.describe()
    );

    // The same with a file this process read part of, as descriptor 0.
    let mut handle = fs::File::open(&file).expect("open");
    let mut first = vec![0u8; "not the passphrase\n".len()];
    handle.read_exact(&mut first).expect("read");
    let mut cmd = f.cli_cmd(&["--passphrase-fd", "0", "list"]);
    let out = process::run_with_stdin(&mut cmd, Stdio::from(handle), Duration::from_secs(30))
        .expect("run");
    listed(&out, "fd 0 at its offset");
}
