//! `devc-vault doctor`: a healthy setup passes; a missing key or an
//! unconfigured docker is named with the command that fixes it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools::{bin_path, path_with_prefix, require_tool};

struct Setup {
    dir: Scratch,
    path: Vec<PathBuf>,
}

impl Setup {
    fn new(git: PathBuf) -> Setup {
        let dir = Scratch::new("doctor");
        let path = vec![
            bin_path("devc-vault")
                .parent()
                .expect("bin dir")
                .to_path_buf(),
            git.parent().expect("git dir").to_path_buf(),
        ];
        Setup { dir, path }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut c = Command::new(bin_path("devc-vault"));
        c.args(args)
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("DEVC_VAULT", self.dir.join("docker/.credentials.enc"))
            .env("DEVC_VAULT_KEY_FILE", self.dir.join("secrets/key"))
            .env("DEVC_VAULT_KEY_ORDER", "file")
            .env("PATH", path_with_prefix(&self.path))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        run(&mut c, stdin.map(str::as_bytes), Duration::from_secs(60)).expect("spawn")
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let o = self.run(args, stdin);
        assert!(o.success(), "{}", o.describe());
        o
    }
}

#[test]
fn doctor_passes_a_healthy_setup_and_names_what_to_fix() {
    let Some(git) = require_tool("git", "doctor checks git's credential.helper") else {
        return;
    };
    let s = Setup::new(git);
    s.ok(&["init"], None);
    s.ok(
        &["add", "docker", "--server", "ghcr.io", "--username", "me"],
        Some("tok"),
    );

    // Before install: docker is not pointed at us (a problem), git only warned.
    let before = s.run(&["doctor"], None);
    assert_eq!(before.code(), Some(1), "{}", before.describe());
    let out = before.stdout_str();
    assert!(
        out.contains("PROBLEM  docker") && out.contains("devc-vault install"),
        "{out}"
    );
    assert!(out.contains("warning  git"), "{out}");
    assert_eq!(
        before.stderr_str().lines().count(),
        1,
        "{}",
        before.describe()
    );

    s.ok(&["install"], None);
    let healthy = s.ok(&["doctor"], None).stdout_str();
    assert!(healthy.contains("all checks passed"), "{healthy}");
    assert!(
        healthy.contains("ok       keys: the file source opens it (1 docker"),
        "{healthy}"
    );
    assert!(
        !healthy.contains("PROBLEM") && !healthy.contains("tok\""),
        "{healthy}"
    );

    // The key goes missing: named, with where to mount it.
    std::fs::rename(s.dir.join("secrets/key"), s.dir.join("secrets/moved")).expect("move key");
    let broken = s.run(&["doctor"], None);
    assert_eq!(broken.code(), Some(1), "{}", broken.describe());
    assert!(
        broken.stdout_str().contains("PROBLEM  keys"),
        "{}",
        broken.describe()
    );
}
