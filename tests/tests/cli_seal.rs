//! `devc-vault seal`: the host's existing docker and git credentials go into
//! the vault, and the container-side helpers then answer with them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::docker::FakeHelper;
use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools::{bin_path, path_with_prefix, require_tool};

struct Host {
    dir: Scratch,
    vault: PathBuf,
    key: PathBuf,
    path_prefix: Vec<PathBuf>,
}

impl Host {
    fn new() -> Host {
        let dir = Scratch::new("seal");
        let h = Host {
            vault: dir.join("vault/.credentials.enc"),
            key: dir.join("keys/key"),
            path_prefix: vec![
                bin_path("devc-vault")
                    .parent()
                    .expect("bin dir")
                    .to_path_buf(),
            ],
            dir,
        };
        h.ok(&["init"], None);
        h
    }

    fn cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("DEVC_VAULT", &self.vault)
            .env("DEVC_VAULT_KEY_FILE", &self.key)
            .env("DEVC_VAULT_KEY_ORDER", "file")
            .env("PATH", path_with_prefix(&self.path_prefix))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        run(
            &mut self.cmd(&bin_path("devc-vault"), args),
            stdin.map(str::as_bytes),
            Duration::from_secs(60),
        )
        .expect("spawn devc-vault")
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let o = self.run(args, stdin);
        assert!(o.success(), "{}", o.describe());
        o
    }

    fn docker_get(&self, server: &str) -> Outcome {
        run(
            &mut self.cmd(&bin_path("docker-credential-devc-encrypted"), &["get"]),
            Some(server.as_bytes()),
            Duration::from_secs(30),
        )
        .expect("spawn helper")
    }

    fn write_docker_config(&self, json: &str) {
        self.dir.write("docker/config.json", json, 0o600);
    }
}

#[test]
fn seal_docker_from_plain_auths_and_identity_tokens() {
    let h = Host::new();
    // base64("me:pa:ss") and an identity token, as `docker login` leaves them
    // on a host with no credential helper.
    h.write_docker_config(
        r#"{"auths":{"r.example:5000":{"auth":"bWU6cGE6c3M="},
            "https://index.docker.io/v1/":{"identitytoken":"id-tok"}}}"#,
    );
    let o = h.ok(&["seal", "docker", "--all"], None);
    assert!(!o.stdout_str().contains("pa:ss") && !o.stdout_str().contains("id-tok"));
    let got = h.docker_get("r.example:5000");
    assert!(got.success(), "{}", got.describe());
    let v: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    assert_eq!(
        (v["Username"].as_str(), v["Secret"].as_str()),
        (Some("me"), Some("pa:ss"))
    );
    let hub = h.docker_get("docker.io");
    let v: serde_json::Value = serde_json::from_slice(&hub.stdout).expect("json");
    assert_eq!(
        (v["Username"].as_str(), v["Secret"].as_str()),
        (Some("<token>"), Some("id-tok"))
    );
    let bytes = std::fs::read(&h.vault).expect("vault");
    assert!(!bytes.windows(5).any(|w| w == b"pa:ss"));
}

#[test]
fn seal_docker_asks_the_hosts_credential_helper() {
    let mut h = Host::new();
    let fake = FakeHelper::new("hoststore", "helper-user", "helper-secret");
    h.path_prefix.push(fake.bin_dir());
    h.write_docker_config(r#"{"credsStore":"hoststore","auths":{"ghcr.io":{}}}"#);
    h.ok(&["seal", "docker", "--registry", "ghcr.io"], None);
    assert!(fake.ops().contains(&"get".to_string()), "{:?}", fake.ops());
    let got = h.docker_get("ghcr.io");
    let v: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    assert_eq!(
        v["Secret"].as_str(),
        Some("helper-secret"),
        "{}",
        got.describe()
    );
}

#[test]
fn seal_docker_refuses_when_a_named_registry_has_nothing() {
    let h = Host::new();
    h.write_docker_config(r#"{"auths":{"a.example":{"auth":"dTpw"}}}"#);
    let before = std::fs::read(&h.vault).expect("vault");
    let o = h.run(
        &[
            "seal",
            "docker",
            "--registry",
            "a.example",
            "--registry",
            "b.example",
        ],
        None,
    );
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(o.stderr_str().contains("b.example"), "{}", o.describe());
    assert_eq!(o.stderr_str().lines().count(), 1, "{}", o.describe());
    assert!(
        std::fs::read(&h.vault).expect("vault") == before,
        "the vault changed"
    );
}

#[test]
fn seal_git_takes_what_the_hosts_git_answers() {
    let Some(git) = require_tool("git", "the host's git answers `credential fill`") else {
        return;
    };
    let mut h = Host::new();
    h.path_prefix
        .insert(0, git.parent().expect("git dir").to_path_buf());
    h.dir
        .write(".gitconfig", "[credential]\n\thelper = store\n", 0o600);
    h.dir.write(
        ".git-credentials",
        "https://alice:s3cr%3At@git.example.com\n",
        0o600,
    );
    let o = h.ok(
        &[
            "seal",
            "git",
            "--protocol",
            "https",
            "--host",
            "git.example.com",
        ],
        None,
    );
    assert!(o.stdout_str().contains("alice"), "{}", o.describe());
    let get = run(
        &mut h.cmd(&bin_path("git-credential-devc-encrypted"), &["get"]),
        Some(b"protocol=https\nhost=git.example.com\n\n"),
        Duration::from_secs(30),
    )
    .expect("spawn");
    assert!(
        get.stdout_str()
            .contains("username=alice\npassword=s3cr:t\n"),
        "{}",
        get.describe()
    );
    // Nothing on the host for another host: a clear error, no prompt.
    let miss = h.run(
        &[
            "seal",
            "git",
            "--protocol",
            "https",
            "--host",
            "nothing.example",
        ],
        None,
    );
    assert_eq!(miss.code(), Some(1), "{}", miss.describe());
    assert!(
        miss.stderr_str().contains("no credential"),
        "{}",
        miss.describe()
    );
}
