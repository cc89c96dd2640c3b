//! Short-lived registry tokens stay fresh in a persistent container.
//!
//! A host credential helper (a script standing in for ecr-login or gcloud)
//! answers a token that changes every [`PERIOD`] seconds, and the test
//! registry's htpasswd is rewritten on the same clock, so only the current
//! token works. The host seals it (`seal docker --all`); one long-running
//! podman container (the dev container) runs the real docker CLI, bind
//! mounted, with our helper, the vault's directory as its `DOCKER_CONFIG`
//! and the host agent's socket directory (no key on its disk), and runs
//! `docker manifest inspect` in the middle of successive periods.
//!
//! - With `devc-vault agent --refresh-every`, the agent re-seals each token
//!   before it expires (the token is a JWT; its `exp` is the period's end),
//!   and every check across three periods succeeds.
//! - Without it, the check after the first period fails, and the stderr of
//!   our helper (passed through by the docker CLI) says the credential
//!   expired, when, and the host command that refreshes it; after
//!   `devc-vault seal --refresh` on the host, the next check succeeds.
//!
//! Why this container setup: the docker CLI runs *inside* the container,
//! as a dev container user would run it, reading only the mounted vault
//! file through the helper, while everything that refreshes happens on the
//! host. The container shares the host's network (`--network=host`) to
//! reach the registry on 127.0.0.1, and runs as the host user's uid (root
//! here): the files the host writes are owned by the host user, as in the
//! usual dev container setup where both have the same uid.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use devc_vault_tests::container_script::ContainerScript;
use devc_vault_tests::image::OciImage;
use devc_vault_tests::podman::Podman;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::registry::{Registry, http_get};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::token_registry::{TOKEN_USER, TokenRegistry, sleep_until, unix_now};
use devc_vault_tests::tools::{self, path_with_prefix};

/// Seconds each token lives.
const PERIOD: u64 = 6;
/// The host helper's name (`docker-credential-cloud`).
const CLOUD: &str = "cloud";

struct Setup {
    cli: PathBuf,
    helper: PathBuf,
    docker: PathBuf,
    helper_bin: PathBuf,
    reference: String,
    pm: Podman,
    _img: OciImage,
    reg: TokenRegistry,
    dir: Scratch,
}

/// A running `devc-vault agent`; killed and reaped on drop.
struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Setup {
    fn new(label: &str) -> Option<Setup> {
        if !(Registry::available() && OciImage::available() && Podman::available()) {
            return None;
        }
        let docker = tools::require_tool("docker", "the docker CLI run inside the container")?;
        if !tools::require_tools(&[
            (
                "base64",
                "the stand-in cloud helper builds its JWT (coreutils)",
            ),
            (
                "date",
                "the stand-in cloud helper reads the clock (coreutils)",
            ),
        ]) {
            return None;
        }
        let cli = tools::require_bin("devc-vault")?;
        let helper = tools::require_bin("docker-credential-devc-encrypted")?;
        let reg = TokenRegistry::start(PERIOD);
        let img = OciImage::busybox();
        let reference = format!("{}/devc/busybox:{}", reg.host(), img.tag());
        img.push_to(&reference, &reg.push_creds());
        let pm = Podman::new(&img);
        let dir = Scratch::new(label);
        let helper_bin = reg.write_helper(CLOUD);
        // The host's docker config: a credential helper for the registry.
        dir.write(
            "host-docker/config.json",
            serde_json::json!({"credHelpers": {reg.host(): CLOUD}}).to_string(),
            0o600,
        );
        // The vault's directory is the container's docker config directory.
        dir.write(
            "vault/config.json",
            serde_json::json!({"credsStore": "devc-encrypted"}).to_string(),
            0o600,
        );
        dir.mkdir("run", 0o700);
        // The agent's socket directory exists before the container mounts
        // it; the agent creates its socket in it later.
        dir.mkdir("sock", 0o700);
        dir.mkdir("config", 0o700);
        let s = Setup {
            cli,
            helper,
            docker,
            helper_bin,
            reference,
            pm,
            _img: img,
            reg,
            dir,
        };
        s.ok(&["init", "--key-file", &s.key()]);
        Some(s)
    }

    fn key(&self) -> String {
        self.dir.join("keys/key").display().to_string()
    }

    fn vault(&self) -> PathBuf {
        self.dir.join("vault/.credentials.enc")
    }

    /// `devc-vault ARGS` as the host user: the host's docker config, the
    /// cloud helper on PATH, private runtime and config directories.
    fn cli_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cli);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DEVC_VAULT") {
                c.env_remove(&k);
            }
        }
        c.args(args)
            .env("DEVC_VAULT", self.vault())
            .env("DOCKER_CONFIG", self.dir.join("host-docker"))
            .env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env(
                "PATH",
                path_with_prefix(std::slice::from_ref(&self.helper_bin)),
            )
            .stdin(Stdio::null());
        c
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Outcome {
        process::run_ok(
            &mut self.cli_cmd(args),
            None,
            Duration::from_secs(60),
            &format!("devc-vault {}", args.join(" ")),
        )
    }

    /// A period far enough ahead for the container to start before it.
    fn next_period(&self) -> u64 {
        self.reg.window() + 2
    }

    /// Waits for period `k` to begin, then seals the registry's token.
    fn seal_at_period_start(&self, k: u64) {
        sleep_until(self.reg.start_of(k) + 0.2);
        let o = self.ok(&["--key-file", &self.key(), "seal", "docker", "--all"]);
        assert!(
            o.stdout_str().contains(&format!(
                "{} ({TOKEN_USER}) from docker-credential-{CLOUD}",
                self.reg.host()
            )),
            "{}",
            o.describe()
        );
        assert_eq!(self.reg.window(), k, "sealing took too long");
    }

    fn sock_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn agent(&self, extra: &[&str]) -> AgentProcess {
        let sock = self.sock_dir().join("agent.sock");
        let log = self.dir.join("agent.log");
        let mut cmd = self.cli_cmd(&[
            "--key-file",
            &self.key(),
            "agent",
            "--socket",
            &sock.display().to_string(),
        ]);
        cmd.args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"));
        let child = cmd.spawn().expect("spawn agent");
        let mut agent = AgentProcess { child, log };
        let up = process::wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
                || matches!(agent.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && matches!(agent.child.try_wait(), Ok(None)),
            "the agent did not start:\n{}",
            agent.log()
        );
        agent
    }

    /// The dev container: `docker manifest inspect` at each of `times`
    /// (unix seconds), printing `check T ok|failed` and the CLI's stderr.
    fn container(&self, times: &[u64]) -> Outcome {
        let list: Vec<String> = times.iter().map(u64::to_string).collect();
        let script = format!(
            r#"for t in {times}; do
  while [ "$(/bin/busybox date +%s)" -lt "$t" ]; do sleep 0.1; done
  if docker manifest inspect --insecure {reference} >/dev/null 2>/tmp/err; then r=ok; else r=failed; fi
  echo "check $t $r at $(/bin/busybox date +%s)"
  sed 's/^/  | /' /tmp/err
done"#,
            times = list.join(" "),
            reference = self.reference
        );
        let last = times.iter().max().copied().unwrap_or(0) as f64;
        let budget = (last - unix_now()).max(0.0) as u64 + 60;
        ContainerScript::new(&self.pm, script, Duration::from_secs(budget))
            .user(0, 0)
            .host_binary(&self.docker, "/usr/local/bin/docker")
            .host_binary(
                &self.helper,
                "/usr/local/bin/docker-credential-devc-encrypted",
            )
            .volume(self.vault().parent().expect("vault dir"), "/vault")
            .volume(self.sock_dir(), "/run/devc-vault")
            .env("DOCKER_CONFIG", "/vault")
            .env("HOME", "/tmp")
            .env("DOCKER_HOST", "unix:///tmp/no-daemon.sock")
            .env("PATH", "/usr/local/bin:/bin")
            .exec()
    }
}

/// The middle of period `k`, as the container's clock compares it.
fn middle(reg: &TokenRegistry, k: u64) -> u64 {
    k * reg.period() + reg.period() / 2
}

/// Each check's result and its stderr, in order.
fn checks(out: &Outcome) -> Vec<(bool, String)> {
    let mut res: Vec<(bool, String)> = Vec::new();
    for line in out.stdout_str().lines() {
        if let Some(rest) = line.strip_prefix("check ") {
            res.push((rest.contains(" ok at "), String::new()));
        } else if let (Some(last), Some(err)) = (res.last_mut(), line.strip_prefix("  | ")) {
            last.1.push_str(err);
            last.1.push('\n');
        }
    }
    res
}

#[test]
fn with_the_agent_refreshing_the_container_keeps_pulling_across_three_token_periods() {
    let Some(s) = Setup::new("fresh-on") else {
        return;
    };
    let k0 = s.next_period();
    let times: Vec<u64> = (0..4).map(|i| middle(&s.reg, k0 + i)).collect();
    // The container starts first and waits for its check times.
    let (out, agent) = std::thread::scope(|scope| {
        let container = scope.spawn(|| s.container(&times));
        s.seal_at_period_start(k0);
        // A long default interval: what keeps the token fresh is its expiry.
        let agent = s.agent(&[
            "--refresh-every",
            "1h",
            "--refresh-vault",
            &s.vault().display().to_string(),
        ]);
        (container.join().expect("container thread"), agent)
    });
    eprintln!(
        "[container]\n{}\n[agent]\n{}",
        out.stdout_str(),
        agent.log()
    );
    assert!(out.success(), "{}\nagent:\n{}", out.describe(), agent.log());
    let results = checks(&out);
    assert_eq!(results.len(), 4, "{}", out.describe());
    for (i, (ok, err)) in results.iter().enumerate() {
        assert!(
            ok,
            "check {i} (period {}) failed:\n{err}\n{}\nagent:\n{}",
            k0 + i as u64,
            out.describe(),
            agent.log()
        );
    }
    // The host helper was asked in each new period, by the agent.
    let windows = s.reg.helper_windows();
    for k in k0..=k0 + 3 {
        assert!(
            windows.contains(&k),
            "period {k} never fetched: {windows:?}"
        );
    }
    let log = agent.log();
    assert!(
        log.matches(&format!(
            "refreshed docker {} from docker-credential-{CLOUD} (new secret",
            s.reg.host()
        ))
        .count()
            >= 3,
        "{log}"
    );
    assert!(!log.contains("could not refresh"), "{log}");
}

#[test]
fn without_refreshing_the_container_fails_after_the_first_period_and_says_why() {
    let Some(s) = Setup::new("fresh-off") else {
        return;
    };
    let k0 = s.next_period();
    let times = [
        middle(&s.reg, k0),
        middle(&s.reg, k0 + 1),
        middle(&s.reg, k0 + 2),
    ];
    let reg = &s.reg;
    let (out, refresh, agent) = std::thread::scope(|scope| {
        let container = scope.spawn(|| s.container(&times));
        s.seal_at_period_start(k0);
        let agent = s.agent(&[]);
        // The clock really moved on: the sealed token is dead, the next one works.
        sleep_until(reg.start_of(k0 + 1) + 1.0);
        let old = http_get(reg.host(), "/v2/", Some((TOKEN_USER, &reg.token(k0)))).expect("GET");
        let new =
            http_get(reg.host(), "/v2/", Some((TOKEN_USER, &reg.token(k0 + 1)))).expect("GET");
        assert_eq!((old.status, new.status), (401, 200), "the registry's clock");
        // After the failed check, refresh by hand on the host.
        sleep_until(reg.start_of(k0 + 2) + 0.5);
        let refresh = s.ok(&["--key-file", &s.key(), "seal", "--refresh"]);
        (container.join().expect("container thread"), refresh, agent)
    });
    eprintln!("[container]\n{}", out.stdout_str());
    assert!(out.success(), "{}\nagent:\n{}", out.describe(), agent.log());
    assert!(
        refresh
            .stdout_str()
            .contains("from docker-credential-cloud (new secret"),
        "{}",
        refresh.describe()
    );
    let results = checks(&out);
    assert_eq!(results.len(), 3, "{}", out.describe());
    assert!(results[0].0, "first period:\n{}", out.describe());
    let (ok, err) = &results[1];
    assert!(
        !ok,
        "the second period must fail without a refresh\n{}",
        out.describe()
    );
    for part in [
        s.reg.host(),
        "docker-credential-cloud",
        "expired at",
        "UTC",
        "devc-vault seal --refresh",
    ] {
        assert!(
            err.contains(part),
            "{part:?} missing from the stderr:\n{err}"
        );
    }
    assert!(
        results[2].0,
        "after seal --refresh on the host\n{}",
        out.describe()
    );
    // Only the seal and the manual refresh asked the host helper.
    assert_eq!(s.reg.helper_windows(), [k0, k0 + 2], "{}", agent.log());
}
