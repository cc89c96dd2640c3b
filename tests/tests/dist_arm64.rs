//! Issue 10, scenario 7: the aarch64 release binaries (static, from
//! `scripts/dist.sh`) under qemu user emulation, called explicitly as
//! `qemu-aarch64-static BINARY` (no binfmt_misc here): init, add, the docker
//! helper's store and get, the git helper's store and get, a passphrase slot;
//! and a vault written by the aarch64 build opens with the x86_64 build, and
//! one the x86_64 build then writes opens with the aarch64 build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::debian_image::{self, BINARIES, Dist};
use devc_vault_tests::image::is_static_elf;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

const PASSPHRASE: &str = "arm passphrase 7";
const KDF_COST: &str = "m=8192,t=1,p=1";

struct Env {
    qemu: PathBuf,
    dist: Dist,
    vault: PathBuf,
    key: PathBuf,
    dir: Scratch,
}

impl Env {
    /// `BINARY ARGS` of `arch` (aarch64 through qemu), isolated: its own
    /// HOME and runtime dir, the vault and key file in the environment.
    fn run(&self, arch: &str, bin: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let path = self.dist.binary(arch, bin);
        let mut cmd = if arch == "aarch64" {
            let mut c = Command::new(&self.qemu);
            c.arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("DEVC_VAULT", &self.vault)
            .env("DEVC_VAULT_KEY_FILE", &self.key)
            .env("DEVC_VAULT_KEY_ORDER", "file");
        process::run(&mut cmd, stdin, Duration::from_secs(120)).expect("spawn")
    }

    #[track_caller]
    fn ok(&self, arch: &str, bin: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let out = self.run(arch, bin, args, stdin);
        out.assert_success(&format!("{arch} {bin} {}", args.join(" ")));
        out
    }

    /// `docker-credential-devc-encrypted get` of `server`: (user, secret).
    #[track_caller]
    fn docker_get(&self, arch: &str, server: &str) -> (String, String) {
        let out = self.ok(
            arch,
            "docker-credential-devc-encrypted",
            &["get"],
            Some(server.as_bytes()),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        (
            v["Username"].as_str().unwrap_or_default().to_owned(),
            v["Secret"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// `devc-vault list` opened with the passphrase only.
    #[track_caller]
    fn list_with_passphrase(&self, arch: &str) -> String {
        let out = self.run_without_key(
            arch,
            &["--passphrase-fd", "0", "list", "--json"],
            PASSPHRASE.as_bytes(),
        );
        out.assert_success(&format!("{arch} list with the passphrase"));
        out.stdout_str()
    }

    fn run_without_key(&self, arch: &str, args: &[&str], stdin: &[u8]) -> Outcome {
        let moved = self.dir.join("key-away");
        fs::rename(&self.key, &moved).expect("move the key away");
        let out = self.run(arch, "devc-vault", args, Some(stdin));
        fs::rename(&moved, &self.key).expect("move the key back");
        out
    }
}

fn elf_machine(p: &Path) -> u16 {
    let b = fs::read(p).expect("read binary");
    u16::from_le_bytes([b[0x12], b[0x13]])
}

#[test]
fn aarch64_builds_under_qemu_and_vaults_open_across_architectures() {
    let Some(qemu) = tools::require_tool(
        "qemu-aarch64-static",
        "runs the aarch64 builds (apt: qemu-user-static)",
    ) else {
        return;
    };
    let Some(dist) = debian_image::dist() else {
        return;
    };
    for (arch, machine) in [("aarch64", 183), ("x86_64", 62)] {
        for b in BINARIES {
            let p = dist.binary(arch, b);
            assert_eq!(
                is_static_elf(&p),
                Some(true),
                "{} is not static",
                p.display()
            );
            assert_eq!(elf_machine(&p), machine, "{} is not {arch}", p.display());
        }
    }
    let dir = Scratch::new("dist-arm64");
    dir.mkdir("home", 0o700);
    dir.mkdir("run", 0o700);
    let env = Env {
        qemu,
        vault: dir.join("vault/.credentials.enc"),
        key: dir.join("keys/devc-vault-key"),
        dist,
        dir,
    };
    let key = env.key.display().to_string();
    let arm = "aarch64";
    let x86 = "x86_64";

    // Written by the aarch64 build.
    env.ok(arm, "devc-vault", &["init", "--key-file", &key], None);
    env.ok(
        arm,
        "devc-vault",
        &[
            "add",
            "docker",
            "--server",
            "reg.example:5000",
            "--username",
            "armuser",
        ],
        Some(b"arm-secret-1"),
    );
    env.ok(
        arm,
        "docker-credential-devc-encrypted",
        &["store"],
        Some(br#"{"ServerURL":"h2.example","Username":"u2","Secret":"arm-secret-2"}"#),
    );
    assert_eq!(
        env.docker_get(arm, "h2.example"),
        ("u2".to_owned(), "arm-secret-2".to_owned())
    );
    env.ok(
        arm,
        "git-credential-devc-encrypted",
        &["store"],
        Some(b"protocol=https\nhost=git.example\nusername=gitarm\npassword=arm-git-3\n\n"),
    );
    let got = env.ok(
        arm,
        "git-credential-devc-encrypted",
        &["get"],
        Some(b"protocol=https\nhost=git.example\n\n"),
    );
    assert!(
        got.stdout_str().contains("username=gitarm\n")
            && got.stdout_str().contains("password=arm-git-3\n"),
        "{}",
        got.describe()
    );
    let mut slot = vec!["slot", "add", "passphrase", "--key-file", &key];
    slot.extend(["--kdf-cost", KDF_COST, "--new-passphrase-fd", "0"]);
    env.ok(arm, "devc-vault", &slot, Some(PASSPHRASE.as_bytes()));

    // Opened by the x86_64 build: with the key file, and with the passphrase alone.
    assert_eq!(
        env.docker_get(x86, "reg.example:5000"),
        ("armuser".to_owned(), "arm-secret-1".to_owned())
    );
    let listed = env.list_with_passphrase(x86);
    for want in ["reg.example:5000", "h2.example", "git.example"] {
        assert!(listed.contains(want), "x86_64 list lacks {want}: {listed}");
    }

    // Written by the x86_64 build, read back by the aarch64 one.
    env.ok(
        x86,
        "docker-credential-devc-encrypted",
        &["store"],
        Some(br#"{"ServerURL":"h3.example","Username":"u3","Secret":"x86-secret-4"}"#),
    );
    env.ok(
        x86,
        "devc-vault",
        &["--passphrase-fd", "0", "rotate", "--key-file", &key],
        Some(PASSPHRASE.as_bytes()),
    );
    assert_eq!(
        env.docker_get(arm, "h3.example"),
        ("u3".to_owned(), "x86-secret-4".to_owned())
    );
    let listed = env.list_with_passphrase(arm);
    assert!(listed.contains("h3.example"), "{listed}");
}
