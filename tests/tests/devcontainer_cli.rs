//! `devc-vault devcontainer` without containers: `--dry-run` prints the
//! change and writes nothing; the roads switch cleanly; what cannot be
//! mounted safely (a directory holding other files, dynamically linked
//! binaries) or found (no devcontainer.json, no Feature) is refused with one
//! line saying what to do.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::debian_image::{self, BINARIES};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

const CONFIG: &str =
    "{\n  // keep me\n  \"image\": \"debian:bookworm\",\n  \"remoteUser\": \"vscode\"\n}\n";

struct Env {
    cli: PathBuf,
    dir: Scratch,
}

impl Env {
    fn new(label: &str) -> Option<Env> {
        let cli = tools::require_bin("devc-vault")?;
        let dir = Scratch::new(label);
        for d in ["home", "run", "ws/.devcontainer"] {
            dir.mkdir(d, 0o700);
        }
        dir.write("ws/.devcontainer/devcontainer.json", CONFIG, 0o644);
        Some(Env { cli, dir })
    }

    fn ws(&self) -> PathBuf {
        self.dir.join("ws")
    }

    fn config(&self) -> String {
        fs::read_to_string(self.dir.join("ws/.devcontainer/devcontainer.json")).expect("config")
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let mut c = Command::new(&self.cli);
        c.arg("devcontainer")
            .arg("--workspace")
            .arg(self.ws())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .current_dir(debian_image::repo_root());
        process::run(&mut c, None, Duration::from_secs(60)).expect("spawn devc-vault")
    }

    #[track_caller]
    fn fails_with(&self, args: &[&str], needle: &str) {
        let out = self.run(args);
        let err = out.stderr_str();
        assert!(
            !out.success() && err.contains(needle) && err.trim().lines().count() == 1,
            "expected one error line with {needle:?}\n{}",
            out.describe()
        );
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let Some(env) = Env::new("dc-dry") else {
        return;
    };
    let Some(dist) = debian_image::dist() else {
        return;
    };
    let bins = dist.arch_dir("x86_64").display().to_string();
    let out = env.run(&[
        "--key",
        "file",
        "--binaries",
        "mount",
        "--binaries-dir",
        &bins,
        "--dry-run",
    ]);
    out.assert_success("--dry-run");
    let text = out.stdout_str();
    assert!(
        text.contains("would create the vault")
            && text.contains("would create the key file")
            && text.contains("+   \"mounts\": [")
            && text.contains("target=/run/secrets,type=bind,readonly=true")
            && text.contains("    // keep me"),
        "{text}"
    );
    assert_eq!(env.config(), CONFIG, "--dry-run wrote devcontainer.json");
    assert!(
        !env.dir.join("home/.local").exists() && !env.dir.join("home/.config").exists(),
        "--dry-run created the vault or key"
    );
}

#[test]
fn roads_switch_and_repeat_without_change() {
    let Some(env) = Env::new("dc-roads") else {
        return;
    };
    let Some(dist) = debian_image::dist() else {
        return;
    };
    let bins = dist.arch_dir("x86_64").display().to_string();
    let mount = ["--binaries", "mount", "--binaries-dir", &bins];
    let mut args = vec!["--key", "agent"];
    args.extend(mount);
    env.run(&args).assert_success("agent road");
    let agent = env.config();
    assert!(
        agent.contains("target=/run/devc-vault,type=bind,readonly=true\""),
        "{agent}"
    );
    assert!(agent.contains("\"DEVC_VAULT_AGENT_SOCK\": \"/run/devc-vault/agent.sock\""));
    assert!(agent.contains("// keep me"));
    let agent_dir = env.dir.join("run/devc-vault-agent");
    assert_eq!(mode(&agent_dir), 0o700, "the agent's directory");
    let again = env.run(&args);
    again.assert_success("again");
    assert!(
        again.stdout_str().contains("no change needed"),
        "{}",
        again.describe()
    );
    assert_eq!(env.config(), agent);

    let mut args = vec!["--key", "file"];
    args.extend(mount);
    let out = env.run(&args);
    out.assert_success("file road");
    let file = env.config();
    assert!(
        !file.contains("/run/devc-vault") && file.contains("target=/run/secrets"),
        "{file}"
    );
    let key = PathBuf::from(
        out.stdout_str()
            .lines()
            .find_map(|l| l.strip_prefix("key file: "))
            .expect("key file line"),
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().expect("key dir")), 0o700);
    assert!(key.starts_with(env.dir.join("home/.config/devc/keys")));
}

#[test]
fn refuses_what_it_cannot_mount_or_find() {
    let Some(env) = Env::new("dc-refuse") else {
        return;
    };
    // No Feature folder given.
    env.fails_with(&["--key", "file"], "--feature-dir");
    // A Feature folder without built binaries.
    let empty = env.dir.mkdir("feature", 0o755);
    fs::write(empty.join("devcontainer-feature.json"), "{}").expect("write");
    fs::write(empty.join("install.sh"), "").expect("write");
    env.fails_with(
        &["--feature-dir", &empty.display().to_string()],
        "scripts/dist.sh",
    );
    // Dynamically linked binaries (this build's) are not mounted.
    let dynamic = env.dir.mkdir("dynamic", 0o755);
    for b in BINARIES {
        if let Some(p) = tools::require_bin(b) {
            fs::copy(p, dynamic.join(b)).expect("copy");
        } else {
            return;
        }
    }
    env.fails_with(
        &[
            "--binaries",
            "mount",
            "--binaries-dir",
            &dynamic.display().to_string(),
        ],
        "dynamically linked",
    );
    // A vault directory holding something else would expose it.
    let shared = env.dir.mkdir("shared", 0o700);
    fs::write(shared.join("id_ed25519"), "not for containers").expect("write");
    let vault = shared.join(".credentials.enc").display().to_string();
    env.fails_with(
        &[
            "--vault",
            &vault,
            "--binaries",
            "mount",
            "--binaries-dir",
            &dynamic.display().to_string(),
        ],
        "id_ed25519",
    );
    // No devcontainer.json.
    fs::remove_file(env.dir.join("ws/.devcontainer/devcontainer.json")).expect("rm");
    env.fails_with(
        &["--key", "passphrase"],
        "no .devcontainer/devcontainer.json",
    );
}
