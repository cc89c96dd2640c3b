//! The docker CLI without a daemon, with an isolated `DOCKER_CONFIG`, plus a
//! shell-script fake credential helper that records every call.
//!
//! `DOCKER_HOST` points at a socket that does not exist, so `docker login`
//! always takes the CLI's client-side path (it first asks the daemon and
//! falls back only on a connection failure; on a machine with a real
//! daemon the login would otherwise happen inside the daemon).
//! `docker manifest inspect` is always client-side.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Outcome};
use crate::scratch::Scratch;
use crate::tools;

/// Limit for one docker CLI call.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// A docker CLI environment private to one test.
#[derive(Debug)]
pub struct Docker {
    path_prefix: Vec<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    dir: Scratch,
}

impl Docker {
    /// Checks (skip or fail) that the docker CLI is installed.
    #[track_caller]
    pub fn available() -> bool {
        tools::require_tool(
            "docker",
            "the docker CLI is the credential helper's main client (install the docker CLI)",
        )
        .is_some()
    }

    /// Fresh `DOCKER_CONFIG` (mode 0700, no `config.json` yet), `HOME`, and
    /// a `DOCKER_HOST` with no daemon behind it.
    pub fn new() -> Docker {
        let dir = Scratch::new("docker");
        dir.mkdir("config", 0o700);
        dir.mkdir("home", 0o700);
        Docker {
            path_prefix: Vec::new(),
            env: Vec::new(),
            dir,
        }
    }

    /// The `DOCKER_CONFIG` directory.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// `$DOCKER_CONFIG/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("config.json")
    }

    /// Writes `config.json` (pretty JSON, mode 0600).
    pub fn write_config(&self, config: &serde_json::Value) {
        let text = serde_json::to_string_pretty(config).expect("serializing docker config");
        self.dir.write("config/config.json", text, 0o600);
    }

    /// Reads `config.json` (`null` if absent).
    pub fn read_config(&self) -> serde_json::Value {
        match fs::read_to_string(self.config_path()) {
            Ok(text) => serde_json::from_str(&text).expect("config.json is JSON"),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// Puts `dir` in front of `PATH` (where `docker-credential-*` are found).
    pub fn prepend_path(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.path_prefix.push(dir.into());
        self
    }

    /// Sets an extra environment variable for every call.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Applies environment changes (`None`: remove the variable) to every
    /// call, e.g. a [`crate::fixture::Fixture`]'s isolation rule.
    pub fn envs(
        &mut self,
        vars: impl IntoIterator<Item = (OsString, Option<OsString>)>,
    ) -> &mut Self {
        self.env.extend(vars);
        self
    }

    /// A `docker` command with the isolated environment applied.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.config_dir())
            .env("HOME", self.dir.join("home"))
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.join("no-daemon.sock").display()),
            )
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_TLS_VERIFY")
            .env("PATH", tools::path_with_prefix(&self.path_prefix));
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// `docker ARGS...` with optional stdin.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = self.command();
        cmd.args(args);
        process::run(&mut cmd, stdin, DOCKER_TIMEOUT).expect("running docker")
    }

    /// `docker login -u USER --password-stdin HOST` (password on stdin).
    pub fn login(&self, host: &str, user: &str, pass: &str) -> Outcome {
        self.run(
            &["login", "-u", user, "--password-stdin", host],
            Some(pass.as_bytes()),
        )
    }

    /// `docker logout HOST`.
    pub fn logout(&self, host: &str) -> Outcome {
        self.run(&["logout", host], None)
    }

    /// `docker manifest inspect --insecure REFERENCE` (a registry round
    /// trip that needs credentials but no daemon).
    pub fn manifest_inspect(&self, reference: &str) -> Outcome {
        self.run(&["manifest", "inspect", "--insecure", reference], None)
    }
}

impl Default for Docker {
    fn default() -> Self {
        Docker::new()
    }
}

/// One recorded call of a [`FakeHelper`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCall {
    /// The operation (`store`, `get`, `erase`, `list`, ...).
    pub op: String,
    /// Its stdin, newlines replaced by spaces.
    pub input: String,
}

/// `docker-credential-<name>`: a /bin/sh script that appends each call to
/// a log. `get` answers with fixed credentials for any server; `store`,
/// `erase` succeed; `list` prints `{}`; anything else exits 1.
#[derive(Debug)]
pub struct FakeHelper {
    name: String,
    dir: Scratch,
}

impl FakeHelper {
    /// Writes the script; `get` will answer `user` / `secret` (neither may
    /// contain `'`, `"` or `\`).
    pub fn new(name: &str, user: &str, secret: &str) -> FakeHelper {
        for s in [name, user, secret] {
            assert!(
                !s.contains(['\'', '"', '\\', '\n']),
                "FakeHelper values must be plain: {s:?}"
            );
        }
        let dir = Scratch::new("fake-helper");
        // Readable by other uids too (e.g. a container user).
        crate::scratch::set_mode(dir.path(), 0o755);
        let log = dir.join("calls.log");
        fs::write(&log, "").expect("create helper log");
        crate::scratch::set_mode(&log, 0o666);
        let script = format!(
            r#"#!/bin/sh
input=$(cat)
printf '%s\t%s\n' "$1" "$(printf '%s' "$input" | tr '\n' ' ')" >> '{log}'
case "$1" in
  store|erase) exit 0 ;;
  get) printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{secret}"}}\n' "$input"; exit 0 ;;
  list) echo '{{}}'; exit 0 ;;
esac
echo "unknown operation: $1"
exit 1
"#,
            log = log.display()
        );
        dir.write(format!("bin/docker-credential-{name}"), script, 0o755);
        crate::scratch::set_mode(&dir.join("bin"), 0o755);
        FakeHelper {
            name: name.to_owned(),
            dir,
        }
    }

    /// The helper's name (what goes in `credsStore` / `credHelpers`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory to put on `PATH`.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// The script's full path.
    pub fn path(&self) -> PathBuf {
        self.bin_dir()
            .join(format!("docker-credential-{}", self.name))
    }

    /// The call log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("calls.log")
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<HelperCall> {
        parse_calls(&self.log_path())
    }

    /// The operations of every call so far, in order.
    pub fn ops(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.op).collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear(&self) {
        fs::write(self.log_path(), "").expect("truncate helper log");
    }
}

fn parse_calls(log: &Path) -> Vec<HelperCall> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (op, input) = l.split_once('\t').unwrap_or((l, ""));
            HelperCall {
                op: op.to_owned(),
                input: input.to_owned(),
            }
        })
        .collect()
}
