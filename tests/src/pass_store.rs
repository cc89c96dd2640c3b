//! A real `docker-credential-pass` store (Debian's
//! golang-docker-credential-helpers over `pass`), with a throwaway,
//! passphrase-less gpg key in a private `GNUPGHOME`; the gpg agent is
//! stopped on drop. Every command that should reach this store needs the
//! environment of [`PassStore::apply_env`].

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Outcome};
use crate::scratch::Scratch;
use crate::tools;

/// The password store and its gpg home.
#[derive(Debug)]
pub struct PassStore {
    dir: Scratch,
}

impl PassStore {
    /// Checks (skip or fail) for docker-credential-pass, pass, gpg and gpgconf.
    #[track_caller]
    pub fn available() -> bool {
        tools::require_tools(&[
            (
                "docker-credential-pass",
                "the host's credsStore (apt: golang-docker-credential-helpers)",
            ),
            ("pass", "docker-credential-pass's store (apt: pass)"),
            ("gpg", "encrypts the pass store (apt: gnupg)"),
            ("gpgconf", "stops the gpg agent after the test (apt: gnupg)"),
        ])
    }

    /// Makes a gpg key without a passphrase and `pass init`s a store with it.
    pub fn new() -> PassStore {
        let dir = Scratch::new("pass-store");
        dir.mkdir("gnupg", 0o700);
        let p = PassStore { dir };
        process::run_ok(
            p.command("gpg").args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-gen-key",
                "devc-vault test <test@devc-vault.invalid>",
                "default",
                "default",
                "never",
            ]),
            None,
            Duration::from_secs(60),
            "gpg --quick-gen-key",
        );
        let out = process::run_ok(
            p.command("gpg").args(["--list-keys", "--with-colons"]),
            None,
            Duration::from_secs(30),
            "gpg --list-keys",
        );
        let fpr = out
            .stdout_str()
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .expect("a fingerprint");
        process::run_ok(
            p.command("pass").args(["init", &fpr]),
            None,
            Duration::from_secs(30),
            "pass init",
        );
        p
    }

    /// The variables that point gpg and pass at this store.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("GNUPGHOME", self.dir.join("gnupg")),
            ("PASSWORD_STORE_DIR", self.dir.join("store")),
        ]
    }

    /// Sets [`PassStore::env`] on `cmd`.
    pub fn apply_env(&self, cmd: &mut Command) {
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
    }

    /// `program` with this store's environment (and `HOME` in the scratch dir).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.apply_env(&mut cmd);
        cmd.env("HOME", self.dir.path());
        cmd
    }

    /// `docker-credential-pass ARGS` with `stdin`.
    pub fn helper(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = self.command("docker-credential-pass");
        cmd.args(args);
        process::run(&mut cmd, stdin, Duration::from_secs(60)).expect("docker-credential-pass")
    }

    /// Stores a credential with `docker-credential-pass store`.
    #[track_caller]
    pub fn store(&self, server: &str, user: &str, secret: &str) {
        let json = serde_json::json!({"ServerURL": server, "Username": user, "Secret": secret})
            .to_string();
        self.helper(&["store"], Some(json.as_bytes()))
            .assert_success("docker-credential-pass store");
    }
}

impl Default for PassStore {
    fn default() -> Self {
        PassStore::new()
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = process::run(
            self.command("gpgconf").args(["--kill", "all"]),
            None,
            Duration::from_secs(10),
        );
    }
}
