//! Shared by the `docker_*` tests: a vault with a key file in a private
//! directory, and runners for the built helper and `devc-vault` binaries with
//! an environment that names only that vault and key.
#![allow(dead_code)] // each test target uses a different subset

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

/// The helper binary's name.
pub const HELPER: &str = "docker-credential-devc-encrypted";
/// The exact not-found reply.
pub const NOT_FOUND: &str = "credentials not found in native keychain\n";
/// Limit for one helper or CLI call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A vault (in `<dir>/docker/.credentials.enc`, the default place for
/// `DOCKER_CONFIG=<dir>/docker`) opened by the key file `<dir>/key`.
#[derive(Debug)]
pub struct VaultEnv {
    /// The built helper.
    pub helper: PathBuf,
    /// The built `devc-vault`.
    pub cli: PathBuf,
    /// Extra `PATH` entries for every call.
    pub path_prefix: Vec<PathBuf>,
    /// Extra environment for every call.
    pub env: Vec<(OsString, OsString)>,
    dir: Scratch,
}

impl VaultEnv {
    /// Builds the environment and runs `devc-vault init` (None: binaries not
    /// built, and the test should return; see `tools::require_bin`).
    pub fn new() -> Option<VaultEnv> {
        let helper = tools::require_bin(HELPER)?;
        let cli = tools::require_bin("devc-vault")?;
        let dir = Scratch::new("docker-vault");
        for d in ["docker", "home", "xdg-config", "xdg-runtime"] {
            dir.mkdir(d, 0o700);
        }
        let v = VaultEnv {
            helper,
            cli,
            path_prefix: Vec::new(),
            env: Vec::new(),
            dir,
        };
        v.cli(&["init", "--key-file"], &[v.key_path().as_os_str()])
            .assert_success("devc-vault init");
        Some(v)
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DOCKER_CONFIG` for helper calls.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// The vault file.
    pub fn vault_path(&self) -> PathBuf {
        self.docker_config().join(".credentials.enc")
    }

    /// The key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key")
    }

    /// The directory holding the built binaries (to put on a client's `PATH`).
    pub fn bin_dir(&self) -> PathBuf {
        self.helper
            .parent()
            .expect("binary has a directory")
            .to_path_buf()
    }

    /// The environment variables that select this vault and key and keep
    /// every other key source and config file out of the way.
    pub fn vars(&self) -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = vec![
            ("DEVC_VAULT".into(), self.vault_path().into()),
            ("DEVC_VAULT_KEY_FILE".into(), self.key_path().into()),
            // No terminal prompt and no agent in tests: the file is the one road.
            ("DEVC_VAULT_KEY_ORDER".into(), "file".into()),
            (
                "DEVC_VAULT_AGENT_SOCK".into(),
                self.dir.join("no-agent.sock").into(),
            ),
            ("HOME".into(), self.dir.join("home").into()),
            ("XDG_CONFIG_HOME".into(), self.dir.join("xdg-config").into()),
            (
                "XDG_RUNTIME_DIR".into(),
                self.dir.join("xdg-runtime").into(),
            ),
        ];
        vars.extend(self.env.iter().cloned());
        vars
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env_remove("DEVC_VAULT_CONFIG")
            .env_remove("DEVC_VAULT_DOCKER_CHAINED")
            .env("DOCKER_CONFIG", self.docker_config())
            .env("PATH", tools::path_with_prefix(&self.path_prefix));
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
    }

    /// Runs the helper with `args` and `stdin` (`None`: stdin is /dev/null).
    pub fn helper_run(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = Command::new(&self.helper);
        cmd.args(args);
        self.apply(&mut cmd);
        process::run(&mut cmd, stdin, CALL_TIMEOUT).expect("running the helper")
    }

    /// `helper VERB` with `stdin`.
    pub fn helper(&self, verb: &str, stdin: &str) -> Outcome {
        self.helper_run(&[verb], Some(stdin.as_bytes()))
    }

    /// `store` of one credential; panics unless it succeeds silently.
    pub fn store(&self, url: &str, user: &str, secret: &str) {
        let json =
            serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string();
        let out = self.helper("store", &json);
        out.assert_success(&format!("store {url}"));
        assert_eq!(
            (out.stdout_str(), out.stderr_str()),
            (String::new(), String::new()),
            "store {url}"
        );
    }

    /// `get URL`, which must succeed; the parsed reply.
    pub fn get(&self, url: &str) -> serde_json::Value {
        let out = self.helper("get", url);
        out.assert_success(&format!("get {url}"));
        assert!(out.stdout_str().ends_with("}\n"), "{}", out.describe());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("get {url}: {e}\n{}", out.describe()))
    }

    /// Asserts that `get URL` answers not-found exactly (stdout, exit 1).
    #[track_caller]
    pub fn assert_not_found(&self, url: &str) {
        let out = self.helper("get", url);
        assert_eq!(
            (out.code(), out.stdout_str().as_str()),
            (Some(1), NOT_FOUND),
            "get {url}\n{}",
            out.describe()
        );
    }

    /// Runs `devc-vault ARGS... PATHS...` (paths appended as arguments).
    pub fn cli(&self, args: &[&str], paths: &[&std::ffi::OsStr]) -> Outcome {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args).args(paths);
        self.apply(&mut cmd);
        process::run(&mut cmd, None, CALL_TIMEOUT).expect("running devc-vault")
    }

    /// `devc-vault list --json`: the docker entries as (server_url, username).
    pub fn list_docker(&self) -> Vec<(String, String)> {
        let out = self.cli(&["list", "--json"], &[]);
        out.assert_success("devc-vault list --json");
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
}

/// Every form in which a secret could leak into a file: raw, base64 (standard
/// and URL-safe, with and without padding), hex (both cases), and JSON-escaped.
pub fn encodings(secret: &str) -> Vec<String> {
    let b64 = devc_vault_tests::registry::base64(secret.as_bytes());
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

/// Asserts that `bytes` (a file's content) holds `secret` in none of [`encodings`].
#[track_caller]
pub fn assert_no_secret(bytes: &[u8], secret: &str, what: &str) {
    for form in encodings(secret) {
        assert!(
            !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
            "{what} contains the secret in the form {form:?}"
        );
    }
}
