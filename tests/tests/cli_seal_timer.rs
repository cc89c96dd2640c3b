//! `devc-vault seal --refresh --write-timer`: the user timer that keeps a
//! vault fresh without an agent. The written service's command line and
//! environment, run as systemd would run them (a clean environment plus
//! the unit's `Environment=` lines), refresh what is due; the printed cron
//! line does the same through `sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::docker::FakeHelper;
use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools::{self, path_with_prefix};

fn devc(dir: &Scratch, cli: &Path, path: &[PathBuf], args: &[&str]) -> Outcome {
    let mut c = Command::new(cli);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DEVC_VAULT") {
            c.env_remove(&k);
        }
    }
    c.args(args)
        .env("HOME", dir.path())
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("DEVC_VAULT", dir.join("vault/.credentials.enc"))
        .env("DEVC_VAULT_KEY_FILE", dir.join("keys/key"))
        .env("DEVC_VAULT_CONFIG", dir.join("vault.toml"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("PATH", path_with_prefix(path))
        .stdin(Stdio::null());
    run(&mut c, None, Duration::from_secs(60)).expect("devc-vault")
}

/// The value of `key=` lines in a unit, quotes removed.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_written_timer_runs_seal_refresh_due() {
    let Some(cli) = tools::require_bin("devc-vault") else {
        return;
    };
    let Some(sh) = tools::require_tool("sh", "runs the printed cron line") else {
        return;
    };
    let dir = Scratch::new("seal-timer");
    let fake = FakeHelper::new("hoststore", "host-user", "host-secret");
    let path = vec![fake.bin_dir()];
    // The host's fake store's entries are due a second after each fetch.
    dir.write(
        "vault.toml",
        "[refresh.sources.hoststore]\nevery = \"1s\"\n",
        0o600,
    );
    dir.write(
        "docker/config.json",
        r#"{"credsStore":"hoststore","auths":{"ghcr.io":{}}}"#,
        0o600,
    );
    let ok = |args: &[&str]| {
        let o = devc(&dir, &cli, &path, args);
        assert!(o.success(), "devc-vault {args:?}\n{}", o.describe());
        o
    };
    ok(&["init"]);
    ok(&["seal", "docker", "--all"]);

    let units = dir.join("units");
    let units_arg = units.display().to_string();
    let o = ok(&[
        "seal",
        "--refresh",
        "--write-timer",
        "15m",
        "--timer-dir",
        &units_arg,
    ]);
    let stdout = o.stdout_str();
    let name = stdout
        .split_whitespace()
        .find_map(|w| w.strip_suffix(".timer"))
        .and_then(|w| w.rsplit('/').next())
        .expect("a unit name")
        .to_owned();
    assert!(name.starts_with("devc-vault-refresh-"), "{stdout}");
    assert!(
        stdout.contains(&format!("systemctl --user enable --now {name}.timer")),
        "{stdout}"
    );
    let service = std::fs::read_to_string(units.join(format!("{name}.service"))).expect("service");
    let timer = std::fs::read_to_string(units.join(format!("{name}.timer"))).expect("timer");
    assert!(timer.contains("OnUnitActiveSec=900s"), "{timer}");
    assert!(timer.contains("WantedBy=timers.target"), "{timer}");
    let exec = unit_values(&service, "ExecStart");
    let [exec] = exec.as_slice() else {
        panic!("one ExecStart\n{service}")
    };
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        &argv[argv.len() - 3..],
        ["seal", "--refresh", "--due"],
        "{service}"
    );
    assert!(exec.contains(&format!("--key-file {}", dir.join("keys/key").display())));

    // Run it as systemd would: a clean environment and the unit's lines.
    let as_systemd = || {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]).env_clear().env("HOME", dir.path());
        for kv in unit_values(&service, "Environment") {
            let (k, v) = kv.split_once('=').expect("K=V");
            c.env(k, v);
        }
        run(&mut c, None, Duration::from_secs(60)).expect("run the unit's command")
    };
    std::thread::sleep(Duration::from_millis(1100));
    fake.clear();
    let o = as_systemd();
    assert!(o.success(), "{}\n{service}", o.describe());
    assert!(
        o.stdout_str()
            .contains("refreshed docker ghcr.io from docker-credential-hoststore (same secret)"),
        "{}",
        o.describe()
    );
    assert_eq!(fake.ops(), ["get"]);

    // The cron line, through sh, does the same.
    let cron = stdout
        .lines()
        .find(|l| l.starts_with("*/15 * * * * "))
        .expect("a cron line")
        .trim_start_matches("*/15 * * * * ")
        .to_owned();
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = Command::new(sh);
    c.args(["-c", &cron]).env_clear().env("HOME", dir.path());
    let o = run(&mut c, None, Duration::from_secs(60)).expect("sh");
    assert!(
        o.success() && o.stdout_str().contains("refreshed docker ghcr.io"),
        "{}",
        o.describe()
    );
}
