//! Hostile files and input, through the built binaries: each is refused in
//! bounded time with one clear line, and nothing is written.
//!
//! - the crafted 32-slot vault (`docs/test-vectors/error-excessive-total-work.vector`)
//!   under `prlimit --as=256 MiB`: the CLI and both helpers refuse it in
//!   under 2 s with the excessive-work line, not an allocation failure;
//! - a planted symlink as the lock file: `add` refuses and nothing is
//!   created at the link's target;
//! - a FIFO at the vault's path: `get` and `list` answer at once;
//! - a lock another process holds (`flock` from util-linux): `add` gives up
//!   after the 10 s wait, naming that process;
//! - entries with terminal escapes, a backslash-`@` server URL, trailing
//!   bytes after a `store` request.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::fixture::{Fixture, NOT_FOUND};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::tools;

/// What a hostile input may cost at most, end to end (process start included).
const BOUND: Duration = Duration::from_secs(2);
/// The address space the crafted-vault runs get: far below one Argon2
/// derivation at the slot's cap (1 GiB), far above what a refusal needs.
const AS_LIMIT: u64 = 256 << 20;
const EXCESSIVE: &str = "asks for excessive key-derivation work";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The bytes after the `---` line of a test vector.
fn vector_bytes(name: &str) -> Vec<u8> {
    let path = workspace_root().join("docs/test-vectors").join(name);
    let all = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = all
        .windows(5)
        .position(|w| w == b"\n---\n")
        .expect("a --- line");
    all[at + 5..].to_vec()
}

/// Exactly one line on `bytes`, containing `want`.
#[track_caller]
fn one_line_with(bytes: &[u8], want: &str, out: &Outcome) {
    let text = String::from_utf8_lossy(bytes);
    assert_eq!(text.lines().count(), 1, "want one line\n{}", out.describe());
    assert!(text.contains(want), "want {want:?}\n{}", out.describe());
}

#[track_caller]
fn within(out: &Outcome, bound: Duration) {
    eprintln!("[bounded] {:?}: {}", out.elapsed, out.command);
    assert!(
        !out.timed_out && out.elapsed < bound,
        "took {:?} (bound {bound:?})\n{}",
        out.elapsed,
        out.describe()
    );
}

#[test]
fn crafted_32_slot_vault_is_refused_fast_in_256_mib() {
    let Some(prlimit) = tools::require_tool(
        "prlimit",
        "caps the address space of the refusing process (apt: util-linux)",
    ) else {
        return;
    };
    let Some(f) = Fixture::build("hostile-work").no_vault().create() else {
        return;
    };
    f.dir().mkdir("docker", 0o700);
    f.dir().write(
        "docker/.credentials.enc",
        vector_bytes("error-excessive-total-work.vector"),
        0o600,
    );
    let pass = f.dir().write("pass", "vector passphrase\n", 0o600);
    let limited = |program: &Path, args: &[&str]| {
        let mut cmd = f.command(&prlimit);
        cmd.arg(format!("--as={AS_LIMIT}"))
            .arg("--")
            .arg(program)
            .args(args);
        cmd
    };
    let check = |out: &Outcome, stream: &[u8]| {
        within(out, BOUND);
        assert_eq!(out.code(), Some(1), "{}", out.describe());
        one_line_with(stream, EXCESSIVE, out);
        let all = format!("{}{}", out.stdout_str(), out.stderr_str()).to_lowercase();
        for bad in ["memory allocation", "out of memory", "panicked", "abort"] {
            assert!(!all.contains(bad), "{bad}\n{}", out.describe());
        }
    };

    // The limit is in force where the binaries run.
    let mut cmd = limited(Path::new("bash"), &["-c", "ulimit -v"]);
    let out = f.run(&mut cmd, None);
    assert_eq!(out.stdout_str().trim(), (AS_LIMIT >> 10).to_string());

    // The CLI, with the passphrase on descriptor 3.
    let mut cmd = limited(
        Path::new("bash"),
        &["-c", r#"exec "$0" --passphrase-fd 3 list 3<"$1""#],
    );
    cmd.arg(f.cli_path()).arg(&pass);
    let out = f.run(&mut cmd, None);
    check(&out, &out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.describe());

    // The docker helper answers on stdout, as docker expects its errors.
    let mut cmd = limited(f.docker_helper_path(), &["get"]);
    let out = f.run(&mut cmd, Some(b"ghcr.io"));
    check(&out, &out.stdout);

    // The git helper says it on stderr and answers nothing.
    let mut cmd = limited(f.git_helper_path(), &["get"]);
    let out = f.run(&mut cmd, Some(b"protocol=https\nhost=git.example.com\n\n"));
    within(&out, BOUND);
    one_line_with(&out.stderr, EXCESSIVE, &out);
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn planted_lock_symlink_is_refused_and_nothing_is_created() {
    let Some(f) = Fixture::new("hostile-link") else {
        return;
    };
    let lock = f.docker_config().join(".credentials.enc.lock");
    let _ = fs::remove_file(&lock);
    let elsewhere = f.dir().mkdir("elsewhere", 0o700);
    let target = elsewhere.join("planted");
    std::os::unix::fs::symlink(&target, &lock).expect("symlink");
    let before = fs::read(f.vault()).expect("vault");

    let out = f.cli(
        &[
            "add",
            "docker",
            &f.key_arg(),
            "--server",
            "r.example",
            "--username",
            "u",
        ],
        Some(b"s3cret"),
    );
    within(&out, BOUND);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    one_line_with(
        &out.stderr,
        "the lock file must be a regular file, and it is a symbolic link",
        &out,
    );

    let out = f.docker_helper(
        "store",
        r#"{"ServerURL":"r.example","Username":"u","Secret":"s3cret"}"#,
    );
    within(&out, BOUND);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    one_line_with(&out.stdout, "symbolic link", &out);

    assert!(
        fs::symlink_metadata(&target).is_err(),
        "a file was created at the link's target"
    );
    assert_eq!(fs::read_dir(&elsewhere).expect("dir").count(), 0);
    assert_eq!(fs::read(f.vault()).expect("vault"), before);
}

#[test]
fn fifo_at_the_vault_path_is_answered_at_once() {
    let Some(f) = Fixture::new("hostile-fifo") else {
        return;
    };
    fs::remove_file(f.vault()).expect("rm vault");
    let mut mkfifo = Command::new("mkfifo");
    mkfifo.arg(f.vault());
    process::run_ok(&mut mkfifo, None, Duration::from_secs(10), "mkfifo");
    let want = "the vault must be a regular file, and it is a FIFO";

    let out = f.docker_helper("get", "ghcr.io");
    within(&out, BOUND);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    one_line_with(&out.stdout, want, &out);

    let out = f.cli(&["list", &f.key_arg()], None);
    within(&out, BOUND);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    one_line_with(&out.stderr, want, &out);

    let out = f.cli(
        &[
            "add",
            "docker",
            &f.key_arg(),
            "--server",
            "r.example",
            "--username",
            "u",
        ],
        Some(b"s3cret"),
    );
    within(&out, BOUND);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    one_line_with(&out.stderr, want, &out);
}

/// Whether /proc/locks lists a lock on the file with inode `ino`.
fn locked(ino: u64) -> bool {
    fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.split_whitespace()
                .nth(5)
                .is_some_and(|f| f.ends_with(&format!(":{ino}")))
        })
}

/// `flock` and the command it runs (its own process group), killed and
/// reaped on drop.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        process::kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

#[test]
fn a_held_lock_fails_in_bounded_time_naming_the_holder() {
    let Some(flock) = tools::require_tool("flock", "holds the vault's lock (apt: util-linux)")
    else {
        return;
    };
    let Some(f) = Fixture::new("hostile-lock") else {
        return;
    };
    f.docker_store("r.example", "u", "first");
    let lock = f.docker_config().join(".credentials.enc.lock");
    let ino = fs::metadata(&lock).expect("lock file").ino();
    let holder = Holder(
        Command::new(flock)
            .arg("--exclusive")
            .arg(&lock)
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn flock"),
    );
    let pid = holder.0.id();
    assert!(
        process::wait_for(Duration::from_secs(10), || locked(ino)),
        "flock did not take the lock"
    );
    let before = fs::read(f.vault()).expect("vault");

    let out = f.cli(
        &[
            "add",
            "docker",
            &f.key_arg(),
            "--server",
            "r.example",
            "--username",
            "u",
        ],
        Some(b"second"),
    );
    drop(holder);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.elapsed >= Duration::from_secs(9) && out.elapsed < Duration::from_secs(13),
        "gave up after {:?}\n{}",
        out.elapsed,
        out.describe()
    );
    one_line_with(&out.stderr, "another writer has held", &out);
    one_line_with(&out.stderr, &format!("(pid {pid} (flock))"), &out);
    assert_eq!(fs::read(f.vault()).expect("vault"), before);

    // Released, the next writer goes ahead at once.
    assert!(process::wait_for(Duration::from_secs(10), || !locked(ino)));
    let out = f.cli_ok(
        &[
            "add",
            "docker",
            &f.key_arg(),
            "--server",
            "r.example",
            "--username",
            "u",
        ],
        Some(b"second"),
    );
    within(&out, BOUND);
    assert_eq!(f.docker_get("r.example")["Secret"], "second");
}

#[test]
fn list_escapes_control_characters_from_stored_entries() {
    let Some(f) = Fixture::new("hostile-escape") else {
        return;
    };
    let user = "a\u{1b}[2J\u{1b}]0;owned\u{7}b\u{9b}c";
    f.docker_store("esc.example", user, "s");
    let out = f.cli_ok(&["list", &f.key_arg()], None);
    let text = out.stdout_str();
    assert!(
        text.contains(r"a\u{1b}[2J\u{1b}]0;owned\u{7}b\u{9b}c"),
        "{}",
        out.describe()
    );
    for raw in ["\u{1b}", "\u{7}", "\u{9b}"] {
        assert!(
            !text.contains(raw),
            "raw {raw:?} in list\n{}",
            out.describe()
        );
    }
    // --json escapes them as JSON does, and keeps the value.
    let out = f.cli_ok(&["list", "--json", &f.key_arg()], None);
    assert!(!out.stdout.contains(&0x1b), "{}", out.describe());
    assert_eq!(
        f.list_docker(),
        [("esc.example".to_owned(), user.to_owned())]
    );
}

#[test]
fn a_backslash_at_url_does_not_get_the_other_registrys_entry() {
    let Some(f) = Fixture::new("hostile-url") else {
        return;
    };
    f.docker_store("registry.example", "me", "registry-secret");
    assert_eq!(
        f.docker_get("https://registry.example/")["Secret"],
        "registry-secret"
    );
    for url in [
        r"https://evil.example\@registry.example/",
        r"evil.example\@registry.example",
        "https://registry.example@evil.example/",
        "https://evil.example#@registry.example/",
        "https://evil.example?@registry.example/",
        "https://evil.example/@registry.example/",
    ] {
        let out = f.docker_helper("get", url);
        assert!(
            !out.stdout_str().contains("registry-secret"),
            "{url} got registry.example's secret"
        );
        assert_eq!(
            (out.code(), out.stdout_str().as_str()),
            (Some(1), NOT_FOUND),
            "{url}\n{}",
            out.describe()
        );
    }
}

#[test]
fn store_refuses_trailing_bytes_after_the_json() {
    let Some(f) = Fixture::new("hostile-trailing") else {
        return;
    };
    let before = fs::read(f.vault()).expect("vault");
    let json = r#"{"ServerURL":"t.example","Username":"u","Secret":"s"}"#;
    for input in [
        format!("{json} garbage"),
        format!("{json}{{}}"),
        format!("{json}\n{json}"),
        format!("{json}\0"),
    ] {
        let out = f.docker_helper("store", &input);
        assert_eq!(out.code(), Some(1), "{input:?}\n{}", out.describe());
        assert_eq!(out.stdout_str().lines().count(), 1, "{}", out.describe());
        assert_eq!(fs::read(f.vault()).expect("vault"), before, "{input:?}");
    }
    f.assert_docker_not_found("t.example");
    // What docker's own encoder sends (a newline after the object) is fine.
    let out = f.docker_helper("store", &format!("{json}\n"));
    out.assert_success("store with a final newline");
    assert_eq!(f.docker_get("t.example")["Secret"], "s");
}
