//! The `devc-vault` CLI as a user meets it: the vault-core commands, and
//! every kind of bad input answered with one clear line, a non-zero exit,
//! no secret, and the vault file left byte-for-byte unchanged.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use devc_vault_tests::fixture::{Fixture, KeyFileVar};
use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::set_mode;

const SECRET: &str = "s3cret-registry-token";
const CHEAP: &str = "--kdf-cost=m=64,t=1,p=1";

/// A vault with a key-file slot and one docker entry. The environment
/// names no key file that exists, so every command that opens the vault
/// says `--key-file` (or `--passphrase-fd`) itself.
fn vault() -> Option<Fixture> {
    let f = Fixture::build("cli")
        .key_file_var(KeyFileVar::Missing)
        .create()?;
    f.ok(
        &[
            "add",
            "docker",
            "--server",
            "ghcr.io",
            "--username",
            "me",
            &f.key_arg(),
        ],
        Some(SECRET),
    );
    Some(f)
}

/// This file's checks, on top of the fixture's runner.
trait Cli {
    fn call(&self, args: &[&str], stdin: Option<&str>) -> Outcome;
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Outcome;
    fn refused(&self, args: &[&str], stdin: Option<&str>, expect: &str) -> String;
    fn vault_bytes(&self) -> Vec<u8>;
}

impl Cli for Fixture {
    fn call(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        self.cli(args, stdin.map(str::as_bytes))
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let o = self.call(args, stdin);
        assert!(o.success(), "{}", o.describe());
        o
    }

    /// Runs a command that must fail cleanly, and checks the vault is untouched.
    fn refused(&self, args: &[&str], stdin: Option<&str>, expect: &str) -> String {
        let before = std::fs::read(self.vault()).ok();
        let o = self.call(args, stdin);
        let err = o.stderr_str();
        assert_eq!(o.code(), Some(1), "{}", o.describe());
        assert!(o.stdout.is_empty(), "partial output: {}", o.describe());
        assert_eq!(err.lines().count(), 1, "want one line: {}", o.describe());
        assert!(err.starts_with("devc-vault: error: "), "{err}");
        assert!(err.contains(expect), "want {expect:?} in {err}");
        assert!(!err.contains("panicked") && !err.contains(SECRET), "{err}");
        if let Ok(k) = std::fs::read_to_string(self.key()) {
            assert!(
                !err.contains(k.trim().rsplit(' ').next().unwrap_or("-")),
                "key leaked: {err}"
            );
        }
        assert!(
            std::fs::read(self.vault()).ok() == before,
            "the vault changed: {}",
            o.describe()
        );
        err
    }

    fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(self.vault()).expect("vault")
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn init_creates_private_files_and_refuses_to_overwrite() {
    let Some(e) = vault() else { return };
    assert_eq!(mode(&e.key()), 0o600);
    assert_eq!(mode(&e.vault()), 0o600);
    assert_eq!(mode(e.vault().parent().expect("dir")), 0o700);
    e.refused(&["init", &e.key_arg()], None, "already exists");
}

#[test]
fn list_never_prints_secrets_and_json_has_the_documented_shape() {
    let Some(e) = vault() else { return };
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
    let Some(e) = vault() else { return };
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
    let Some(p) = Fixture::build("pp")
        .key_file_var(KeyFileVar::Missing)
        .no_vault()
        .create()
    else {
        return;
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
    let Some(e) = vault() else { return };
    // Wrong key.
    let other = e.path().join("other-key");
    e.ok(
        &[
            "init",
            &format!("--key-file={}", other.display()),
            "--vault",
            &e.path().join("v2").display().to_string(),
        ],
        None,
    );
    e.refused(
        &["list", &format!("--key-file={}", other.display())],
        None,
        "no key opens this vault",
    );
    // Key file readable by group/others.
    set_mode(&e.key(), 0o640);
    let err = e.refused(&["list", &e.key_arg()], None, "chmod 600");
    assert!(err.contains("0640"), "{err}");
    set_mode(&e.key(), 0o600);
    // Malformed key file.
    let bad = e
        .dir()
        .write("bad-key", "devc-vault-key v1 nothex\n", 0o600);
    e.refused(
        &["list", &format!("--key-file={}", bad.display())],
        None,
        "malformed",
    );
    // Missing key file.
    e.refused(
        &[
            "list",
            &format!("--key-file={}", e.path().join("nope").display()),
        ],
        None,
        "nope",
    );
}

#[test]
fn missing_vault_says_how_to_create_one() {
    let Some(e) = vault() else { return };
    let gone = e.path().join("elsewhere/.credentials.enc");
    let o = e.call(
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
    let Some(e) = vault() else { return };
    let mut bytes = e.vault_bytes();
    damage(&mut bytes);
    std::fs::write(e.vault(), &bytes).expect("write damaged vault");
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
    let Some(e) = vault() else { return };
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
    std::fs::write(e.vault(), &bytes).expect("write");
    e.refused(
        &["list", "--passphrase-fd", "0"],
        Some("anything\n"),
        "excessive key-derivation work",
    );
}

#[test]
fn oversized_vault_is_refused() {
    let Some(e) = vault() else { return };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(e.vault())
        .expect("open");
    f.set_len(16 * 1024 * 1024 + 1).expect("grow sparse");
    e.refused(&["list", &e.key_arg()], None, "too large");
}

#[test]
fn every_single_byte_flip_is_refused_by_the_cli() {
    let Some(e) = vault() else { return };
    let good = e.vault_bytes();
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        std::fs::write(e.vault(), &b).expect("write");
        let o = e.call(&["list", &e.key_arg()], None);
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
    let Some(e) = vault() else { return };
    let good = e.vault_bytes();
    for n in 0..good.len() {
        std::fs::write(e.vault(), &good[..n]).expect("write");
        let o = e.call(&["list", &e.key_arg()], None);
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
    let Some(e) = vault() else { return };
    let spawn = |server: String| {
        let mut c = e.cli_cmd(&[
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
    let Some(e) = vault() else { return };
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
    let old = std::fs::read(e.key()).expect("key");
    let err = e.refused(&["rotate", &e.key_arg()], None, "--drop-locked-slots");
    assert!(err.contains("passphrase"), "{err}");
    e.ok(&["rotate", &e.key_arg(), "--drop-locked-slots"], None);
    assert_ne!(std::fs::read(e.key()).expect("key"), old);
    assert_eq!(mode(&e.key()), 0o600);
    let copy = e.dir().write("old-key", &old, 0o600);
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
    let Some(e) = vault() else { return };
    let slots = e.ok(&["slot", "list"], None).stdout_str();
    let id = slots.split_whitespace().next().expect("id").to_string();
    e.refused(&["slot", "remove", &id, &e.key_arg()], None, "last keyslot");
}

#[test]
fn secrets_are_never_accepted_in_argv() {
    let Some(e) = vault() else { return };
    let o = e.call(
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
    let Some(f) = Fixture::build("demo").no_vault().create() else {
        return;
    };
    let o = run(
        f.cli_cmd(&["demo"])
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
    let Some(e) = vault() else { return };
    let vault = e.path().join("tty/.credentials.enc");
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
        bin = e.cli_path().display(),
        vault = vault.display(),
    );
    let mut c = e.command(expect);
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
    let l = e.call(
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
