//! `git-credential-devc-encrypted` as git runs it, without git: argument
//! handling, silence on expected misses, `DEVC_VAULT_DEBUG`, and the
//! environment variables that name the vault and key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

const HELPER: &str = "git-credential-devc-encrypted";
const TIMEOUT: Duration = Duration::from_secs(30);

struct Setup {
    dir: Scratch,
    helper: PathBuf,
    cli: PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        let helper = tools::require_bin(HELPER)?;
        let cli = tools::require_bin("devc-vault")?;
        let s = Setup {
            dir: Scratch::new("git-helper"),
            helper,
            cli,
        };
        let mut init = s.command(&s.cli);
        init.arg("init");
        process::run_ok(&mut init, None, TIMEOUT, "devc-vault init");
        Some(s)
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DEVC_VAULT") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.dir.path())
            .env_remove("DOCKER_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.join(".config"))
            .env("DEVC_VAULT", self.dir.join("vault/.credentials.enc"))
            .env("DEVC_VAULT_KEY_FILE", self.dir.join("key"))
            .env("DEVC_VAULT_KEY_ORDER", "file");
        c
    }

    fn helper(&self, args: &[&str], input: &str, env: &[(&str, &str)]) -> Outcome {
        let mut c = self.command(&self.helper);
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        process::run(&mut c, Some(input.as_bytes()), TIMEOUT).expect("running the helper")
    }
}

const CRED: &str = "protocol=https\nhost=git.example:8443\nusername=bob\npassword=pw\n";
const QUERY: &str = "protocol=https\nhost=git.example:8443\n";

#[test]
fn store_get_erase_through_the_binary() {
    let Some(s) = Setup::new() else { return };
    let out = s.helper(&["store"], CRED, &[]);
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
    let out = s.helper(&["get"], QUERY, &[]);
    assert!(out.success() && out.stderr.is_empty(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "username=bob\npassword=pw\n");
    // Options before the operation (as in `credential.helper = "devc-encrypted --x"`)
    // do not change which operation runs.
    let out = s.helper(&["--x", "erase"], QUERY, &[]);
    assert!(out.success() && out.stderr.is_empty(), "{}", out.describe());
    assert_eq!(s.helper(&["get"], QUERY, &[]).stdout_str(), "");
}

#[test]
fn misses_are_silent_and_debug_explains_them() {
    let Some(s) = Setup::new() else { return };
    assert!(s.helper(&["store"], CRED, &[]).success());
    let missing_key = s.dir.join("no-such-key");
    let missing_key = missing_key.to_str().expect("utf-8 path");
    let out = s.helper(&["get"], QUERY, &[("DEVC_VAULT_KEY_FILE", missing_key)]);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        (out.stdout_str(), out.stderr_str()),
        (String::new(), String::new())
    );

    let out = s.helper(
        &["get"],
        QUERY,
        &[
            ("DEVC_VAULT_KEY_FILE", missing_key),
            ("DEVC_VAULT_DEBUG", "1"),
        ],
    );
    assert!(out.success() && out.stdout.is_empty(), "{}", out.describe());
    let err = out.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("{HELPER}: get: no key")), "{err}");
    assert!(
        err.contains("no-such-key"),
        "the line names the source tried: {err}"
    );

    let out = s.helper(
        &["get"],
        QUERY,
        &[("DEVC_VAULT", "/nonexistent/.credentials.enc")],
    );
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
}

#[test]
fn arguments() {
    let Some(s) = Setup::new() else { return };
    let out = s.helper(&["list"], QUERY, &[]);
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
    let out = s.helper(&[], "", &[]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr_str().starts_with("usage:"), "{}", out.describe());
    let out = s.helper(&["--version"], "", &[]);
    assert!(
        out.success() && out.stdout_str().starts_with(HELPER),
        "{}",
        out.describe()
    );
}

#[test]
fn oversized_input_is_refused_without_output() {
    let Some(s) = Setup::new() else { return };
    let mut big = String::from("protocol=https\nhost=git.example:8443\nwwwauth[]=");
    big.push_str(&"x".repeat(2 << 20));
    let out = s.helper(&["get"], &big, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr_str().contains("larger than"),
        "{}",
        out.describe()
    );
}
