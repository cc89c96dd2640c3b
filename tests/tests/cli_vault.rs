//! The `devc-vault` CLI as a user meets it: the vault-core commands, and
//! every kind of bad input answered with one clear line, a non-zero exit,
//! no secret, and the vault file left byte-for-byte unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::{Scratch, set_mode};
use devc_vault_tests::tools::bin_path;

const SECRET: &str = "s3cret-registry-token";
const CHEAP: &str = "--kdf-cost=m=64,t=1,p=1";

struct Env {
    dir: Scratch,
    vault: PathBuf,
    key: PathBuf,
}

impl Env {
    /// A vault with a key-file slot and one docker entry.
    fn new() -> Env {
        let dir = Scratch::new("cli");
        let env = Env {
            vault: dir.join("docker/.credentials.enc"),
            key: dir.join("secrets/key"),
            dir,
        };
        env.ok(&["init", &env.key_arg()], None);
        env.ok(
            &[
                "add",
                "docker",
                "--server",
                "ghcr.io",
                "--username",
                "me",
                &env.key_arg(),
            ],
            Some(SECRET),
        );
        env
    }

    fn key_arg(&self) -> String {
        format!("--key-file={}", self.key.display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin_path("devc-vault"));
        c.args(args)
            .env("DEVC_VAULT", &self.vault)
            .env("HOME", self.dir.path())
            .env("DEVC_VAULT_KEY_ORDER", "file")
            .env("DEVC_VAULT_KEY_FILE", self.dir.join("no-such-default-key"))
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        run(
            &mut self.cmd(args),
            stdin.map(str::as_bytes),
            Duration::from_secs(60),
        )
        .expect("spawn devc-vault")
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let o = self.run(args, stdin);
        assert!(o.success(), "{}", o.describe());
        o
    }

    /// Runs a command that must fail cleanly, and checks the vault is untouched.
    fn refused(&self, args: &[&str], stdin: Option<&str>, expect: &str) -> String {
        let before = std::fs::read(&self.vault).ok();
        let o = self.run(args, stdin);
        let err = o.stderr_str();
        assert_eq!(o.code(), Some(1), "{}", o.describe());
        assert!(o.stdout.is_empty(), "partial output: {}", o.describe());
        assert_eq!(err.lines().count(), 1, "want one line: {}", o.describe());
        assert!(err.starts_with("devc-vault: error: "), "{err}");
        assert!(err.contains(expect), "want {expect:?} in {err}");
        assert!(!err.contains("panicked") && !err.contains(SECRET), "{err}");
        if let Ok(k) = std::fs::read_to_string(&self.key) {
            assert!(
                !err.contains(k.trim().rsplit(' ').next().unwrap_or("-")),
                "key leaked: {err}"
            );
        }
        assert!(
            std::fs::read(&self.vault).ok() == before,
            "the vault changed: {}",
            o.describe()
        );
        err
    }

    fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.vault).expect("vault")
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn init_creates_private_files_and_refuses_to_overwrite() {
    let e = Env::new();
    assert_eq!(mode(&e.key), 0o600);
    assert_eq!(mode(&e.vault), 0o600);
    assert_eq!(mode(e.vault.parent().expect("dir")), 0o700);
    e.refused(&["init", &e.key_arg()], None, "already exists");
}

#[test]
fn list_never_prints_secrets_and_json_has_the_documented_shape() {
    let e = Env::new();
    e.ok(
        &[
            "add",
            "git",
            "--protocol",
            "https",
            "--host",
            "git.example.com:8443",
            "--path",
            "org/repo.git",
            "--username",
            "alice",
            &e.key_arg(),
        ],
        Some("git-pass-123\n"),
    );
    let plain = e.ok(&["list", &e.key_arg()], None).stdout_str();
    assert!(
        plain.contains("ghcr.io") && plain.contains("git.example.com:8443"),
        "{plain}"
    );
    let json = e.ok(&["list", "--json", &e.key_arg()], None).stdout_str();
    for out in [&plain, &json] {
        assert!(
            !out.contains(SECRET) && !out.contains("git-pass-123"),
            "{out}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON array");
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "docker");
    assert_eq!(items[0]["server_url"], "ghcr.io");
    assert_eq!(items[0]["username"], "me");
    assert_eq!(items[1]["kind"], "git");
    assert_eq!(items[1]["host"], "git.example.com:8443");
    assert_eq!(items[1]["path"], "org/repo.git");
    // The secret itself is nowhere in the file, in any common encoding.
    let bytes = e.vault_bytes();
    for needle in [SECRET.to_string(), devc_vault_hex(SECRET.as_bytes())] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));
    }
}

fn devc_vault_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn add_replaces_and_remove_deletes_every_spelling() {
    let e = Env::new();
    // A second add for the same registry replaces the first.
    e.ok(
        &[
            "add",
            "docker",
            "--server",
            "ghcr.io",
            "--username",
            "other",
            &e.key_arg(),
        ],
        Some("t2"),
    );
    let listed = e.ok(&["list", &e.key_arg()], None).stdout_str();
    assert_eq!(listed.matches("ghcr.io").count(), 1, "{listed}");
    assert!(listed.contains("other"), "{listed}");
    // Removal matches like `docker logout`: scheme and path do not matter.
    e.ok(
        &[
            "remove",
            "docker",
            "--server",
            "https://ghcr.io/v2/",
            &e.key_arg(),
        ],
        None,
    );
    assert!(
        !e.ok(&["list", &e.key_arg()], None)
            .stdout_str()
            .contains("ghcr.io")
    );
    e.refused(
        &["remove", "docker", "--server", "ghcr.io", &e.key_arg()],
        None,
        "no docker credential",
    );
}

#[test]
fn passphrase_vault_via_fd() {
    let e = Env::new();
    let p = Env {
        vault: e.dir.join("p/.credentials.enc"),
        key: e.key.clone(),
        dir: Scratch::new("pp"),
    };
    p.ok(
        &["init", "--passphrase-fd", "0", CHEAP],
        Some("open sesame\n"),
    );
    // fd 7 is not open: a clear error, not a hang or a panic.
    p.refused(&["list", "--passphrase-fd", "7"], None, "file descriptor 7");
    p.refused(
        &["list", "--passphrase-fd", "0"],
        Some("wrong passphrase\n"),
        "no key opens this vault",
    );
    assert!(
        p.ok(&["list", "--passphrase-fd", "0"], Some("open sesame\n"))
            .stdout_str()
            .contains("empty")
    );
}

#[test]
fn bad_keys_are_refused_cleanly() {
    let e = Env::new();
    // Wrong key.
    let other = e.dir.join("other-key");
    e.ok(
        &[
            "init",
            &format!("--key-file={}", other.display()),
            "--vault",
            &e.dir.join("v2").display().to_string(),
        ],
        None,
    );
    e.refused(
        &["list", &format!("--key-file={}", other.display())],
        None,
        "no key opens this vault",
    );
    // Key file readable by group/others.
    set_mode(&e.key, 0o640);
    let err = e.refused(&["list", &e.key_arg()], None, "chmod 600");
    assert!(err.contains("0640"), "{err}");
    set_mode(&e.key, 0o600);
    // Malformed key file.
    let bad = e.dir.write("bad-key", "devc-vault-key v1 nothex\n", 0o600);
    e.refused(
        &["list", &format!("--key-file={}", bad.display())],
        None,
        "malformed",
    );
    // Missing key file.
    e.refused(
        &[
            "list",
            &format!("--key-file={}", e.dir.join("nope").display()),
        ],
        None,
        "nope",
    );
}

#[test]
fn missing_vault_says_how_to_create_one() {
    let e = Env::new();
    let gone = e.dir.join("elsewhere/.credentials.enc");
    let o = e.run(
        &["list", &e.key_arg(), "--vault", &gone.display().to_string()],
        None,
    );
    assert_eq!(o.code(), Some(1));
    assert!(
        o.stderr_str().contains("devc-vault init"),
        "{}",
        o.describe()
    );
    assert!(!gone.exists());
}

/// Damages the vault in a way, checks every command refuses it with `expect`.
fn assert_damage_refused(damage: impl Fn(&mut Vec<u8>), expect: &str) {
    let e = Env::new();
    let mut bytes = e.vault_bytes();
    damage(&mut bytes);
    std::fs::write(&e.vault, &bytes).expect("write damaged vault");
    e.refused(&["list", &e.key_arg()], None, expect);
    e.refused(
        &[
            "add",
            "docker",
            "--server",
            "x.example",
            "--username",
            "u",
            &e.key_arg(),
        ],
        Some(SECRET),
        expect,
    );
    e.refused(&["rotate", &e.key_arg()], None, expect);
}

#[test]
fn damaged_vaults_are_refused_and_left_unchanged() {
    assert_damage_refused(|b| b.extend_from_slice(b"garbage"), "trailing");
    assert_damage_refused(|b| b.truncate(b.len() - 3), "truncated");
    assert_damage_refused(|b| b[11] = b'9', "unknown vault format version");
    assert_damage_refused(
        |b| {
            let last = b.len() - 1;
            b[last] ^= 0x20;
        },
        "payload authentication failed",
    );
}

#[test]
fn crafted_4gib_argon2_header_is_refused_before_work() {
    let e = Env::new();
    // A passphrase slot asking for 4 GiB: refused at parse, before any KDF runs.
    let text = String::from_utf8_lossy(&e.vault_bytes()).into_owned();
    let slot = text
        .lines()
        .find(|l| l.starts_with("slot keyfile "))
        .expect("slot")
        .to_string();
    let fields: Vec<&str> = slot.split(' ').collect();
    let crafted = format!(
        "slot passphrase {} m=4194304 t=3 p=4 {} {} {}",
        fields[2], fields[3], fields[4], fields[5]
    );
    let mut bytes = e.vault_bytes();
    let at = text.find(&slot).expect("slot offset");
    bytes.splice(at..at + slot.len(), crafted.bytes());
    std::fs::write(&e.vault, &bytes).expect("write");
    e.refused(
        &["list", "--passphrase-fd", "0"],
        Some("anything\n"),
        "excessive key-derivation work",
    );
}

#[test]
fn oversized_vault_is_refused() {
    let e = Env::new();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&e.vault)
        .expect("open");
    f.set_len(16 * 1024 * 1024 + 1).expect("grow sparse");
    e.refused(&["list", &e.key_arg()], None, "too large");
}

#[test]
fn every_single_byte_flip_is_refused_by_the_cli() {
    let e = Env::new();
    let good = e.vault_bytes();
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        std::fs::write(&e.vault, &b).expect("write");
        let o = e.run(&["list", &e.key_arg()], None);
        assert_eq!(o.code(), Some(1), "flip at {i} accepted: {}", o.describe());
        assert!(
            o.stdout.is_empty() && o.stderr_str().lines().count() == 1,
            "{}",
            o.describe()
        );
        assert!(!o.stderr_str().contains("panicked"), "{}", o.describe());
        assert_eq!(e.vault_bytes(), b, "flip at {i}: the vault changed");
    }
}

#[test]
fn truncation_at_every_length_is_refused_by_the_cli() {
    let e = Env::new();
    let good = e.vault_bytes();
    for n in 0..good.len() {
        std::fs::write(&e.vault, &good[..n]).expect("write");
        let o = e.run(&["list", &e.key_arg()], None);
        assert_eq!(
            o.code(),
            Some(1),
            "truncation to {n} accepted: {}",
            o.describe()
        );
        assert!(
            o.stdout.is_empty() && o.stderr_str().lines().count() == 1,
            "{}",
            o.describe()
        );
    }
}

#[test]
fn concurrent_adds_from_two_processes_both_land() {
    let e = Env::new();
    let spawn = |server: String| {
        let mut c = e.cmd(&[
            "add",
            "docker",
            "--server",
            &server,
            "--username",
            "u",
            &e.key_arg(),
        ]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"tok")
            .expect("write");
        child
    };
    let children: Vec<_> = (0..12).map(|i| spawn(format!("r{i}.example"))).collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = e.ok(&["list", &e.key_arg()], None).stdout_str();
    for i in 0..12 {
        assert!(
            listed.contains(&format!("r{i}.example")),
            "r{i} lost:\n{listed}"
        );
    }
}

#[test]
fn rotate_refuses_locked_slots_then_drops_them_and_old_key_stops_working() {
    let e = Env::new();
    e.ok(
        &[
            "slot",
            "add",
            "passphrase",
            "--new-passphrase-fd",
            "0",
            CHEAP,
            &e.key_arg(),
        ],
        Some("pp\n"),
    );
    let old = std::fs::read(&e.key).expect("key");
    let err = e.refused(&["rotate", &e.key_arg()], None, "--drop-locked-slots");
    assert!(err.contains("passphrase"), "{err}");
    e.ok(&["rotate", &e.key_arg(), "--drop-locked-slots"], None);
    assert_ne!(std::fs::read(&e.key).expect("key"), old);
    assert_eq!(mode(&e.key), 0o600);
    let copy = e.dir.write("old-key", &old, 0o600);
    e.refused(
        &["list", &format!("--key-file={}", copy.display())],
        None,
        "no key opens this vault",
    );
    assert!(
        e.ok(&["list", &e.key_arg()], None)
            .stdout_str()
            .contains("ghcr.io")
    );
    let slots = e.ok(&["slot", "list"], None).stdout_str();
    assert_eq!(slots.lines().count(), 1, "{slots}");
}

#[test]
fn last_slot_cannot_be_removed() {
    let e = Env::new();
    let slots = e.ok(&["slot", "list"], None).stdout_str();
    let id = slots.split_whitespace().next().expect("id").to_string();
    e.refused(&["slot", "remove", &id, &e.key_arg()], None, "last keyslot");
}

#[test]
fn secrets_are_never_accepted_in_argv() {
    let e = Env::new();
    let o = e.run(
        &[
            "add",
            "docker",
            "--server",
            "a",
            "--username",
            "b",
            "--secret",
            "x",
            &e.key_arg(),
        ],
        None,
    );
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    // An empty stdin is an error, not an empty secret.
    e.refused(
        &[
            "add",
            "docker",
            "--server",
            "a",
            "--username",
            "b",
            &e.key_arg(),
        ],
        Some(""),
        "empty",
    );
}

#[test]
fn demo_runs_with_no_setup() {
    let o = run(
        Command::new(bin_path("devc-vault"))
            .arg("demo")
            .env_remove("DEVC_VAULT")
            .env_remove("DEVC_VAULT_KEY_FILE"),
        None,
        Duration::from_secs(300),
    )
    .expect("spawn");
    assert!(o.success(), "{}", o.describe());
    let out = o.stdout_str();
    assert!(out.contains("demo complete"), "{out}");
    assert!(
        out.contains("plaintext secret present in the file: no"),
        "{out}"
    );
}

#[test]
fn init_prompts_twice_on_the_terminal() {
    let Some(expect) =
        devc_vault_tests::tools::require_tool("expect", "drives the /dev/tty prompt")
    else {
        return;
    };
    let e = Env::new();
    let vault = e.dir.join("tty/.credentials.enc");
    let script = format!(
        r#"set timeout 60
spawn {bin} init --vault {vault} {CHEAP}
expect "New vault passphrase: "
send "tty pass\r"
expect "Repeat the passphrase: "
send "tty pass\r"
expect eof
catch wait result
exit [lindex $result 3]
"#,
        bin = bin_path("devc-vault").display(),
        vault = vault.display(),
    );
    let mut c = Command::new(expect);
    c.arg("-c")
        .arg(script)
        .env_remove("DEVC_VAULT_KEY_FILE")
        .env_remove("DEVC_VAULT");
    let o = run(&mut c, None, Duration::from_secs(90)).expect("spawn expect");
    assert!(o.success(), "{}", o.describe());
    assert!(
        o.stdout_str().contains("passphrase slot"),
        "{}",
        o.describe()
    );
    assert!(
        !o.stdout_str().contains("tty pass\r\n"),
        "echoed: {}",
        o.describe()
    );
    let l = e.run(
        &[
            "list",
            "--vault",
            &vault.display().to_string(),
            "--passphrase-fd",
            "0",
        ],
        Some("tty pass\n"),
    );
    assert!(l.success(), "{}", l.describe());
}
