//! Shared by the `keydelivery_*` tests: a vault with one docker entry and a
//! key file in a private scratch directory, an isolated environment (no
//! `DEVC_VAULT*` from the caller, private XDG dirs), runners for the built
//! binaries, and an [`Agent`] guard that always kills the agent it started.
#![allow(dead_code)] // each test target uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use devc_keydelivery::client::AgentClient;
use devc_keydelivery::endpoint::Trust;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

/// The docker helper binary's name.
pub const HELPER: &str = "docker-credential-devc-encrypted";
/// The docker protocol's exact not-found reply.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// The registry stored in every test vault.
pub const SERVER: &str = "ghcr.io";
/// Its user name.
pub const USER: &str = "octo";
/// Its secret.
pub const SECRET: &str = "ghp_test-secret-value";
/// The expected `get` answer.
pub const EXPECTED: &str =
    r#"{"ServerURL":"ghcr.io","Username":"octo","Secret":"ghp_test-secret-value"}"#;
/// Limit for one CLI or helper call.
pub const CALL: Duration = Duration::from_secs(60);
/// Cheap Argon2id cost so debug builds stay fast.
pub const KDF_COST: &str = "m=8192,t=1,p=1";
/// The passphrase of passphrase vaults.
pub const PASSPHRASE: &str = "correct horse battery";

/// A vault and its key in a scratch directory, plus an isolated environment.
#[derive(Debug)]
pub struct Env {
    /// The built `devc-vault`.
    pub cli: PathBuf,
    /// The built docker helper, if it exists.
    pub helper: Option<PathBuf>,
    /// The vault file (in `<dir>/vault/`, mounted as a directory).
    pub vault: PathBuf,
    /// The key file (`<dir>/keys/key`).
    pub key: PathBuf,
    /// `XDG_RUNTIME_DIR` for every call (the cache socket lives below it).
    pub runtime: PathBuf,
    /// The scratch directory (last field: dropped last).
    pub dir: Scratch,
}

impl Env {
    /// Creates the vault with a key-file slot and one docker entry. `None`
    /// when `devc-vault` is not built (skip, or fail under CI).
    pub fn new(label: &str) -> Option<Env> {
        let cli = tools::require_bin("devc-vault")?;
        let helper =
            tools::is_executable(&tools::bin_path(HELPER)).then(|| tools::bin_path(HELPER));
        let dir = Scratch::new(label);
        let runtime = dir.mkdir("run", 0o700);
        dir.mkdir("config", 0o700);
        let env = Env {
            cli,
            helper,
            vault: dir.join("vault/.credentials.enc"),
            key: dir.join("keys/key"),
            runtime,
            dir,
        };
        env.cli_ok(&["init", "--key-file", &env.key_str()], None);
        env.cli_ok(
            &[
                "add",
                "docker",
                "--key-file",
                &env.key_str(),
                "--server",
                SERVER,
                "--username",
                USER,
            ],
            Some(SECRET.as_bytes()),
        );
        Some(env)
    }

    /// Like [`Env::new`], plus a passphrase slot (the key file stays too).
    pub fn with_passphrase(label: &str) -> Option<Env> {
        let env = Env::new(label)?;
        let mut cmd = env.cli_cmd(&[
            "slot",
            "add",
            "passphrase",
            "--key-file",
            &env.key_str(),
            "--kdf-cost",
            KDF_COST,
        ]);
        cmd.args(["--new-passphrase-fd", "0"]);
        process::run_ok(
            &mut cmd,
            Some(PASSPHRASE.as_bytes()),
            CALL,
            "slot add passphrase",
        );
        Some(env)
    }

    /// The key file path as a string.
    pub fn key_str(&self) -> String {
        self.key.display().to_string()
    }

    /// The isolated environment every call gets.
    pub fn isolate(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DEVC_VAULT") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("DEVC_VAULT", &self.vault)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("HOME", self.dir.path());
    }

    /// `devc-vault ARGS` in the isolated environment.
    pub fn cli_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args);
        self.isolate(&mut cmd);
        cmd
    }

    /// Runs `devc-vault ARGS`.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        process::run(&mut self.cli_cmd(args), stdin, CALL).expect("spawn devc-vault")
    }

    /// Runs `devc-vault ARGS`, panicking unless it succeeds.
    #[track_caller]
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        process::run_ok(
            &mut self.cli_cmd(args),
            stdin,
            CALL,
            &format!("devc-vault {}", args.join(" ")),
        )
    }

    /// The docker helper, or a skip/fail when it is not built.
    pub fn require_helper(&self) -> Option<&Path> {
        if self.helper.is_none() {
            tools::require_bin(HELPER);
        }
        self.helper.as_deref()
    }

    /// `docker-credential-devc-encrypted get` for [`SERVER`] with extra env.
    pub fn get(&self, env: &[(&str, &Path)]) -> Outcome {
        let helper = self
            .helper
            .as_ref()
            .expect("helper checked with require_helper");
        let mut cmd = Command::new(helper);
        cmd.arg("get");
        self.isolate(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        process::run(&mut cmd, Some(SERVER.as_bytes()), CALL).expect("spawn helper")
    }

    /// Starts `devc-vault agent --socket SOCK ARGS` and waits until it answers.
    pub fn agent(&self, socket: &Path, args: &[&str]) -> Agent {
        let mut cmd = self.cli_cmd(&["agent", "--socket", &socket.display().to_string()]);
        cmd.args(args);
        Agent::spawn(
            cmd,
            socket,
            &self.dir.join(format!("agent-{}.log", fastrand_suffix())),
        )
    }

    /// Stops the passphrase cache (if one runs) and kills it if `lock` did not.
    pub fn stop_cache(&self) {
        let sock = self.runtime.join("devc-vault/cache.sock");
        let pid = AgentClient::connect(&sock, Trust::Private)
            .and_then(|mut c| c.status())
            .map(|s| s.pid)
            .ok();
        let _ = self.cli(&["lock", "--socket", "/nonexistent/agent.sock"], None);
        if let Some(pid) = pid
            && !process::wait_for(Duration::from_secs(3), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            })
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_cache();
    }
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A running agent; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// Spawns `cmd` (an `agent` invocation) with stderr to `log`, and waits
    /// up to 10 s for the socket to answer.
    pub fn spawn(cmd: Command, socket: &Path, log: &Path) -> Agent {
        Agent::spawn_with_stdin(cmd, socket, log, None)
    }

    /// [`Agent::spawn`], writing `stdin` (e.g. a passphrase for
    /// `--passphrase-fd 0`) to its standard input, then closing it.
    pub fn spawn_with_stdin(
        mut cmd: Command,
        socket: &Path,
        log: &Path,
        stdin: Option<&[u8]>,
    ) -> Agent {
        let log_file = fs::File::create(log).expect("create agent log");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(log_file);
        let mut child = cmd.spawn().expect("spawn agent");
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(data).expect("write agent stdin");
        }
        let mut agent = Agent {
            child,
            socket: socket.to_path_buf(),
            log: log.to_path_buf(),
        };
        let up = process::wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(socket).is_ok()
                || matches!(agent.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && agent.running(),
            "agent did not start; log:\n{}",
            agent.log()
        );
        agent
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
        assert!(st.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// Waits up to `t` for it to exit; its exit status if it did.
    pub fn wait_exit(&mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        process::wait_for(t, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an agent command expected to fail at start; returns its outcome.
pub fn agent_start_fails(env: &Env, socket: &Path, args: &[&str]) -> Outcome {
    let mut cmd = env.cli_cmd(&["agent", "--socket", &socket.display().to_string()]);
    cmd.args(args);
    process::run(&mut cmd, None, Duration::from_secs(20)).expect("spawn agent")
}
