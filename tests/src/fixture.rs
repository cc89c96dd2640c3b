//! The one fixture for tests that run the built binaries: a scratch
//! directory with a vault and its key file, and one isolated environment
//! applied to every command, so that no test reads or writes the
//! developer's own vault, keys, agent, config files or git settings.
//!
//! The isolation rule ([`Fixture::apply`]): every inherited `DEVC_VAULT*`
//! and `GIT_*` variable is removed (`DEVC_VAULT_CONFIG` and
//! `GIT_CONFIG_GLOBAL` among them); `HOME`, `XDG_CONFIG_HOME`,
//! `XDG_RUNTIME_DIR`, `DOCKER_CONFIG` and the agent socket point into the
//! scratch directory; `DEVC_VAULT` and `DEVC_VAULT_KEY_FILE` name the
//! fixture's vault and key (the key unless the test chooses a
//! [`KeyFileVar`]); `DEVC_VAULT_KEY_ORDER=file` unless the test asks
//! otherwise; `GIT_CONFIG_NOSYSTEM=1`; `PATH` is the test's extra
//! directories, then the built binaries, then the inherited `PATH`.
//!
//! ```text
//! <scratch>/home/               HOME
//! <scratch>/xdg-config/         XDG_CONFIG_HOME
//! <scratch>/xdg-runtime/        XDG_RUNTIME_DIR (the passphrase cache's socket is below it)
//! <scratch>/docker/             DOCKER_CONFIG, holding the vault .credentials.enc
//! <scratch>/secrets/key         the key file
//! <scratch>/agent/agent.sock    DEVC_VAULT_AGENT_SOCK (nothing listens unless a test starts an agent)
//! ```

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::agent::{self, Agent};
use crate::process::{self, Outcome};
use crate::scratch::Scratch;
use crate::tools;

/// The CLI's binary name.
pub const CLI: &str = "devc-vault";
/// The docker credential helper's binary name.
pub const DOCKER_HELPER: &str = "docker-credential-devc-encrypted";
/// The git credential helper's binary name.
pub const GIT_HELPER: &str = "git-credential-devc-encrypted";
/// The docker protocol's exact not-found reply.
pub const NOT_FOUND: &str = "credentials not found in native keychain\n";
/// Limit for one CLI or helper call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The docker entry [`Builder::sample_entry`] stores, and the passphrase of
/// [`Builder::passphrase_slot`].
pub mod sample {
    /// The registry.
    pub const SERVER: &str = "ghcr.io";
    /// Its user name.
    pub const USER: &str = "octo";
    /// Its secret.
    pub const SECRET: &str = "ghp_test-secret-value";
    /// The helper's `get` answer for [`SERVER`] (without the newline).
    pub const EXPECTED: &str =
        r#"{"ServerURL":"ghcr.io","Username":"octo","Secret":"ghp_test-secret-value"}"#;
    /// The passphrase slot's passphrase.
    pub const PASSPHRASE: &str = "correct horse battery";
    /// A cheap Argon2id cost, so that debug builds stay fast.
    pub const KDF_COST: &str = "m=8192,t=1,p=1";
}

/// What `DEVC_VAULT_KEY_FILE` names in the fixture's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileVar {
    /// The fixture's key file (the default).
    Key,
    /// A file that does not exist: a command opens the vault only with
    /// what the test passes (`--key-file`, a passphrase, an agent).
    Missing,
    /// Unset, as for a user who never set it (the built-in default path).
    Unset,
}

/// How to set a [`Fixture`] up; start with [`Fixture::build`].
#[derive(Debug, Clone)]
pub struct Builder {
    label: String,
    key_order: Option<String>,
    key_file_var: KeyFileVar,
    vault: bool,
    sample_entry: bool,
    passphrase_slot: bool,
}

impl Builder {
    /// `DEVC_VAULT_KEY_ORDER` for every call; `None` leaves it unset (the
    /// built-in order, passphrase included). Default: `file`, so that no
    /// call can prompt or ask an agent by accident.
    pub fn key_order(mut self, order: Option<&str>) -> Self {
        self.key_order = order.map(str::to_owned);
        self
    }

    /// What `DEVC_VAULT_KEY_FILE` names; default [`KeyFileVar::Key`].
    pub fn key_file_var(mut self, var: KeyFileVar) -> Self {
        self.key_file_var = var;
        self
    }

    /// No vault and no key file: the test creates them (or none).
    pub fn no_vault(mut self) -> Self {
        self.vault = false;
        self
    }

    /// Stores the [`sample`] docker entry.
    pub fn sample_entry(mut self) -> Self {
        self.sample_entry = true;
        self
    }

    /// Adds a passphrase slot ([`sample::PASSPHRASE`]); the key file stays.
    pub fn passphrase_slot(mut self) -> Self {
        self.passphrase_slot = true;
        self
    }

    /// Creates the directories and, unless [`Builder::no_vault`], the vault
    /// with a key-file slot (`devc-vault init --key-file KEY`). `None`: the
    /// binaries are missing and the test should return (see
    /// [`tools::require_bin`]).
    pub fn create(self) -> Option<Fixture> {
        let cli = tools::require_bin(CLI)?;
        let docker_helper = tools::require_bin(DOCKER_HELPER)?;
        let git_helper = tools::require_bin(GIT_HELPER)?;
        let dir = Scratch::new(&self.label);
        // Not docker/ and secrets/: `devc-vault init` creates them, and
        // tests check that it makes them private.
        for d in ["home", "xdg-config", "xdg-runtime", "agent"] {
            dir.mkdir(d, 0o700);
        }
        let f = Fixture {
            cli,
            docker_helper,
            git_helper,
            key_order: self.key_order,
            key_file_var: self.key_file_var,
            path_prefix: Vec::new(),
            env: Vec::new(),
            dir,
        };
        if self.vault {
            f.cli_ok(&["init", &f.key_arg()], None);
        }
        if self.sample_entry {
            f.cli_ok(
                &[
                    "add",
                    "docker",
                    &f.key_arg(),
                    "--server",
                    sample::SERVER,
                    "--username",
                    sample::USER,
                ],
                Some(sample::SECRET.as_bytes()),
            );
        }
        if self.passphrase_slot {
            f.cli_ok(
                &[
                    "slot",
                    "add",
                    "passphrase",
                    &f.key_arg(),
                    "--kdf-cost",
                    sample::KDF_COST,
                    "--new-passphrase-fd",
                    "0",
                ],
                Some(sample::PASSPHRASE.as_bytes()),
            );
        }
        Some(f)
    }
}

/// A vault and its key in a scratch directory, the built binaries, and the
/// isolated environment every command gets. On drop, a passphrase cache
/// that a helper started for this vault is stopped, then the directory is
/// removed.
#[derive(Debug)]
pub struct Fixture {
    cli: PathBuf,
    docker_helper: PathBuf,
    git_helper: PathBuf,
    key_order: Option<String>,
    key_file_var: KeyFileVar,
    path_prefix: Vec<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    /// Last: dropped after everything that may live in it.
    dir: Scratch,
}

impl Fixture {
    /// A fixture with the defaults: a vault opened by the key file, named
    /// in the environment, `DEVC_VAULT_KEY_ORDER=file`. `label` (lowercase)
    /// names the scratch directory.
    pub fn new(label: &str) -> Option<Fixture> {
        Fixture::build(label).create()
    }

    /// Starts describing a fixture that differs from the defaults.
    pub fn build(label: &str) -> Builder {
        Builder {
            label: label.to_owned(),
            key_order: Some("file".to_owned()),
            key_file_var: KeyFileVar::Key,
            vault: true,
            sample_entry: false,
            passphrase_slot: false,
        }
    }

    /// The scratch directory (to write, create and name files in).
    pub fn dir(&self) -> &Scratch {
        &self.dir
    }

    /// The scratch directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// `XDG_CONFIG_HOME`.
    pub fn xdg_config(&self) -> PathBuf {
        self.dir.join("xdg-config")
    }

    /// `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("xdg-runtime")
    }

    /// Where the passphrase cache of this environment listens.
    pub fn cache_socket(&self) -> PathBuf {
        self.runtime_dir().join("devc-vault/cache.sock")
    }

    /// `DOCKER_CONFIG`: the vault's directory.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// The vault file, `$DOCKER_CONFIG/.credentials.enc` (`DEVC_VAULT`).
    pub fn vault(&self) -> PathBuf {
        self.docker_config().join(".credentials.enc")
    }

    /// The key file.
    pub fn key(&self) -> PathBuf {
        self.dir.join("secrets/key")
    }

    /// The key file's path as a string.
    pub fn key_str(&self) -> String {
        self.key().display().to_string()
    }

    /// `--key-file=KEY`.
    pub fn key_arg(&self) -> String {
        format!("--key-file={}", self.key().display())
    }

    /// `DEVC_VAULT_AGENT_SOCK` (nothing listens there unless a test starts
    /// an agent on it).
    pub fn agent_socket(&self) -> PathBuf {
        self.dir.join("agent/agent.sock")
    }

    /// The built `devc-vault`.
    pub fn cli_path(&self) -> &Path {
        &self.cli
    }

    /// The built docker helper.
    pub fn docker_helper_path(&self) -> &Path {
        &self.docker_helper
    }

    /// The built git helper.
    pub fn git_helper_path(&self) -> &Path {
        &self.git_helper
    }

    /// The directory of the built binaries (on every call's `PATH`).
    pub fn bin_dir(&self) -> PathBuf {
        self.cli
            .parent()
            .expect("a binary has a directory")
            .to_path_buf()
    }

    /// Puts `dir` on `PATH` for every later call, after the directories
    /// added before it and before the built binaries.
    pub fn prepend_path(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.path_prefix.push(dir.into());
        self
    }

    /// Sets `key` for every later call (over the isolation rule's value).
    pub fn set_env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Removes `key` from every later call's environment.
    pub fn unset_env(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// The isolated environment without `DOCKER_CONFIG` and `PATH`, as
    /// changes (`None`: remove), for clients that bring their own config
    /// directory and `PATH` (the docker CLI, skopeo) and pass it on to our
    /// helper. Later entries win.
    pub fn vars(&self) -> Vec<(OsString, Option<OsString>)> {
        let mut vars: Vec<(OsString, Option<OsString>)> =
            inherited_vars().into_iter().map(|k| (k, None)).collect();
        let set = |k: &str, v: &dyn AsRef<OsStr>| (k.into(), Some(v.as_ref().to_owned()));
        vars.extend([
            set("HOME", &self.home()),
            set("XDG_CONFIG_HOME", &self.xdg_config()),
            set("XDG_RUNTIME_DIR", &self.runtime_dir()),
            set("DEVC_VAULT", &self.vault()),
            set("DEVC_VAULT_AGENT_SOCK", &self.agent_socket()),
            // The host's /etc/gitconfig could name another credential helper.
            set("GIT_CONFIG_NOSYSTEM", &"1"),
        ]);
        match self.key_file_var {
            KeyFileVar::Key => vars.push(set("DEVC_VAULT_KEY_FILE", &self.key())),
            KeyFileVar::Missing => vars.push(set(
                "DEVC_VAULT_KEY_FILE",
                &self.dir.join("secrets/no-such-key"),
            )),
            // Removed above with every inherited DEVC_VAULT* variable.
            KeyFileVar::Unset => {}
        }
        if let Some(order) = &self.key_order {
            vars.push(set("DEVC_VAULT_KEY_ORDER", order));
        }
        vars.extend(self.env.iter().cloned());
        vars
    }

    /// `PATH` for every call: the test's directories, the built binaries,
    /// then the inherited `PATH`.
    pub fn path_var(&self) -> OsString {
        let mut dirs = self.path_prefix.clone();
        dirs.push(self.bin_dir());
        tools::path_with_prefix(&dirs)
    }

    /// Applies the isolated environment to `cmd`: [`Fixture::vars`], then
    /// `DOCKER_CONFIG` and `PATH` (unless the test overrode them).
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("DOCKER_CONFIG", self.docker_config())
            .env("PATH", self.path_var());
        for (k, v) in self.vars() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
    }

    /// `program` with the isolated environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd
    }

    /// Runs `cmd` with `stdin` (`None`: /dev/null) and [`CALL_TIMEOUT`].
    #[track_caller]
    pub fn run(&self, cmd: &mut Command, stdin: Option<&[u8]>) -> Outcome {
        process::run(cmd, stdin, CALL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `devc-vault ARGS` with the isolated environment, not yet run.
    pub fn cli_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(&self.cli);
        cmd.args(args);
        cmd
    }

    /// `devc-vault agent --socket SOCK --passphrase-fd 0` given the sample
    /// passphrase: an agent that holds this vault's master key.
    pub fn passphrase_agent(&self, sock: &Path, log: &Path) -> crate::agent::Agent {
        let cmd = self.cli_cmd(&[
            "agent",
            "--socket",
            &sock.display().to_string(),
            "--passphrase-fd",
            "0",
        ]);
        crate::agent::Agent::spawn_with_stdin(cmd, sock, log, Some(sample::PASSPHRASE.as_bytes()))
    }

    /// Runs `devc-vault ARGS`.
    #[track_caller]
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        self.run(&mut self.cli_cmd(args), stdin)
    }

    /// Runs `devc-vault ARGS`, panicking unless it succeeds.
    #[track_caller]
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let out = self.cli(args, stdin);
        out.assert_success(&format!("devc-vault {}", args.join(" ")));
        out
    }

    /// Runs the docker helper with `args` and `stdin`.
    #[track_caller]
    pub fn docker_helper_run(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = self.command(&self.docker_helper);
        cmd.args(args);
        self.run(&mut cmd, stdin)
    }

    /// `docker-credential-devc-encrypted VERB` with `input` on stdin.
    #[track_caller]
    pub fn docker_helper(&self, verb: &str, input: &str) -> Outcome {
        self.docker_helper_run(&[verb], Some(input.as_bytes()))
    }

    /// Runs the git helper with `args` and `stdin`.
    #[track_caller]
    pub fn git_helper_run(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = self.command(&self.git_helper);
        cmd.args(args);
        self.run(&mut cmd, stdin)
    }

    /// The docker helper's `store` of one credential; panics unless it
    /// succeeds silently.
    #[track_caller]
    pub fn docker_store(&self, url: &str, user: &str, secret: &str) {
        let json =
            serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string();
        let out = self.docker_helper("store", &json);
        out.assert_success(&format!("store {url}"));
        assert_eq!(
            (out.stdout_str(), out.stderr_str()),
            (String::new(), String::new()),
            "store {url}"
        );
    }

    /// The docker helper's `get URL`, which must succeed; the parsed reply.
    #[track_caller]
    pub fn docker_get(&self, url: &str) -> serde_json::Value {
        let out = self.docker_helper("get", url);
        out.assert_success(&format!("get {url}"));
        assert!(out.stdout_str().ends_with("}\n"), "{}", out.describe());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("get {url}: {e}\n{}", out.describe()))
    }

    /// Asserts that the docker helper's `get URL` answers not-found exactly
    /// (stdout, exit 1).
    #[track_caller]
    pub fn assert_docker_not_found(&self, url: &str) {
        let out = self.docker_helper("get", url);
        assert_eq!(
            (out.code(), out.stdout_str().as_str()),
            (Some(1), NOT_FOUND),
            "get {url}\n{}",
            out.describe()
        );
    }

    /// `devc-vault list --json`: the docker entries as (server_url, username).
    #[track_caller]
    pub fn list_docker(&self) -> Vec<(String, String)> {
        let out = self.cli_ok(&["list", "--json"], None);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("list --json is JSON");
        v.as_array()
            .expect("an array")
            .iter()
            .filter(|e| e["kind"] == "docker")
            .map(|e| {
                (
                    e["server_url"].as_str().expect("server_url").to_owned(),
                    e["username"].as_str().expect("username").to_owned(),
                )
            })
            .collect()
    }

    /// Starts `devc-vault agent --socket SOCKET ARGS` and waits until it
    /// listens; its stderr goes to a log file in the scratch directory.
    #[track_caller]
    pub fn start_agent(&self, socket: &Path, args: &[&str]) -> Agent {
        let mut cmd = self.cli_cmd(&["agent", "--socket", &socket.display().to_string()]);
        cmd.args(args);
        Agent::spawn(cmd, socket, &self.unique_log("agent"))
    }

    /// A log file name in the scratch directory not used before.
    pub fn unique_log(&self, what: &str) -> PathBuf {
        for n in 0.. {
            let p = self.dir.join(format!("{what}-{n}.log"));
            if !p.exists() {
                return p;
            }
        }
        unreachable!("some log name is free")
    }

    /// Stops the passphrase cache a helper started for this environment,
    /// if one runs: `devc-vault lock`, then SIGKILL if it is still there
    /// after 3 s.
    pub fn stop_cache(&self) {
        let socket = self.cache_socket();
        if !socket.exists() {
            return;
        }
        let pids = agent::listeners(&socket);
        let _ = process::run(&mut self.cli_cmd(&["lock"]), None, CALL_TIMEOUT);
        for pid in pids {
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            if !process::wait_for(Duration::from_secs(3), || !proc_dir.exists()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop_cache();
    }
}

/// The inherited variables the isolation rule removes: every `DEVC_VAULT*`
/// (the developer's vault, key, agent, config file, debug switch) and
/// every `GIT_*` (a git hook's `GIT_DIR`, the developer's
/// `GIT_CONFIG_GLOBAL`) in this process's environment.
pub fn inherited_vars() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("DEVC_VAULT") || k.starts_with("GIT_")
        })
        .collect()
}

/// Every form in which a secret could leak into a file: raw, base64
/// (standard and URL-safe, with and without padding), hex (both cases),
/// and JSON-escaped (also as Go escapes `<`, `>` and `&`).
pub fn encodings(secret: &str) -> Vec<String> {
    let b64 = crate::registry::base64(secret.as_bytes());
    let b64url = b64.replace('+', "-").replace('/', "_");
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let json = serde_json::to_string(secret).expect("json");
    let go_json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let mut forms = vec![
        secret.to_owned(),
        b64.clone(),
        b64.trim_end_matches('=').to_owned(),
        b64url.trim_end_matches('=').to_owned(),
        hex.clone(),
        hex.to_uppercase(),
        json[1..json.len() - 1].to_owned(),
        go_json[1..go_json.len() - 1].to_owned(),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Asserts that `bytes` (a file's content, an output) holds `secret` in
/// none of its [`encodings`].
#[track_caller]
pub fn assert_no_secret(bytes: &[u8], secret: &str, what: &str) {
    for form in encodings(secret) {
        assert!(
            !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
            "{what} contains the secret in the form {form:?}"
        );
    }
}
