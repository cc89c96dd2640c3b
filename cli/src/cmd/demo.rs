//! `devc-vault demo`: a complete round trip in a fresh temp directory,
//! driving this same binary the way a user would, and printing each step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use devc_vault::{Key, Store, keyfile};

use crate::error::{CliError, CliResult};

/// Run a complete demo (init, add, list, read back, passphrase slot, rotate) in a temp directory.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep the demo directory instead of deleting it
    #[arg(long)]
    keep: bool,
}

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    vault: PathBuf,
    key: PathBuf,
}

impl Demo {
    /// Runs `devc-vault ARGS` with `stdin` piped in; prints the command and its output.
    fn run(&self, args: &[&str], stdin: Option<&str>, expect_ok: bool) -> CliResult<String> {
        let shown = args.join(" ");
        match stdin {
            Some(_) => println!("\n$ printf '…' | devc-vault {shown}"),
            None => println!("\n$ devc-vault {shown}"),
        }
        let mut child = Command::new(&self.exe)
            .args(args)
            .env_remove("DEVC_VAULT_KEY_FILE")
            .env_remove("DEVC_VAULT_KEY_ORDER")
            .env("DEVC_VAULT", &self.vault)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::Input(format!("cannot run {}: {e}", self.exe.display())))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            pipe.write_all(input.as_bytes())
                .map_err(|e| CliError::Input(format!("demo: cannot write stdin: {e}")))?;
        }
        drop(child.stdin.take());
        let out = child
            .wait_with_output()
            .map_err(|e| CliError::Input(format!("demo: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for line in stdout.lines().chain(stderr.lines()) {
            println!("  {line}");
        }
        if out.status.success() != expect_ok {
            return Err(CliError::Input(format!(
                "demo step `devc-vault {shown}` {} unexpectedly",
                if expect_ok { "failed" } else { "succeeded" }
            )));
        }
        Ok(stdout + &stderr)
    }

    fn key_arg(&self) -> String {
        format!("--key-file={}", self.key.display())
    }
}

fn step(n: u32, what: &str) {
    println!("\n== {n}. {what}");
}

/// Runs `demo`.
pub fn run(a: Args) -> CliResult {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Input(format!("cannot find this program: {e}")))?;
    // A fresh 0700 directory with a random name.
    let tmp = tempfile::Builder::new()
        .prefix("devc-vault-demo-")
        .tempdir()
        .map_err(|e| CliError::Input(format!("cannot create a temp directory: {e}")))?
        .keep();
    let demo = Demo {
        exe,
        vault: tmp.join("docker").join(".credentials.enc"),
        key: tmp.join("secrets").join("devc-vault-key"),
        dir: tmp.clone(),
    };
    println!("devc-vault demo in {}", tmp.display());
    let result = run_steps(&demo);
    if a.keep {
        println!("\nkept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if result.is_ok() {
        println!("\ndemo complete: every step behaved as expected");
    }
    result
}

fn run_steps(d: &Demo) -> CliResult {
    let key = d.key_arg();
    step(1, "create a vault opened by a new key file (0600)");
    d.run(&["init", &key], None, true)?;

    step(
        2,
        "add a docker and a git credential (secrets on stdin, never in argv)",
    );
    d.run(
        &[
            "add",
            "docker",
            "--server",
            "ghcr.io",
            "--username",
            "octocat",
            &key,
        ],
        Some("demo-registry-token\n"),
        true,
    )?;
    d.run(
        &[
            "add",
            "git",
            "--protocol",
            "https",
            "--host",
            "github.com",
            "--username",
            "octocat",
            &key,
        ],
        Some("demo-git-password\n"),
        true,
    )?;

    step(3, "list (never prints secrets)");
    let listed = d.run(&["list", &key], None, true)?;
    if listed.contains("demo-registry-token") {
        return Err(CliError::Input("demo: list printed a secret".into()));
    }
    d.run(&["list", "--json", &key], None, true)?;

    step(
        4,
        "what is on disk: the header is readable, the credentials are not",
    );
    let bytes = std::fs::read(&d.vault).map_err(|e| CliError::Input(format!("demo: {e}")))?;
    let header_end = bytes.windows(4).position(|w| w == b"mac ").unwrap_or(0);
    for line in String::from_utf8_lossy(&bytes[..header_end]).lines() {
        println!("  {}", shorten(line));
    }
    let leaked = bytes
        .windows(b"demo-registry-token".len())
        .any(|w| w == b"demo-registry-token");
    println!(
        "  plaintext secret present in the file: {}",
        if leaked { "YES" } else { "no" }
    );
    if leaked {
        return Err(CliError::Input(
            "demo: the vault file contains a plaintext secret".into(),
        ));
    }

    step(5, "read one credential back, as the docker helper would");
    let secret = keyfile::read(&d.key)?;
    let vault = Store::new(&d.vault).read()?.open(&Key::Secret(secret))?;
    let e = vault
        .docker()
        .iter()
        .find(|e| e.server_url == "ghcr.io")
        .ok_or_else(|| CliError::Input("demo: entry missing".into()))?;
    println!(
        "  {} user {} secret {:?}",
        e.server_url,
        e.username,
        e.secret.expose()
    );

    step(
        6,
        "add a passphrase slot (Argon2id, 64 MiB, t=3, p=4); passphrase on fd 0",
    );
    d.run(
        &[
            "slot",
            "add",
            "passphrase",
            "--new-passphrase-fd",
            "0",
            &key,
        ],
        Some("correct horse battery staple\n"),
        true,
    )?;
    d.run(&["slot", "list"], None, true)?;

    step(
        7,
        "rotate: new master key, new secret in the key file, passphrase kept",
    );
    let old_key = d.dir.join("old-key-copy");
    copy_private(&d.key, &old_key)?;
    d.run(
        &["rotate", &key, "--passphrase-fd", "0"],
        Some("correct horse battery staple\n"),
        true,
    )?;
    d.run(&["list", &key], None, true)?;

    step(8, "a copy of the old key file is refused");
    let out = d.run(
        &["list", &format!("--key-file={}", old_key.display())],
        None,
        false,
    )?;
    if !out.contains("no key opens this vault") {
        return Err(CliError::Input(
            "demo: the old key was not refused with the expected error".into(),
        ));
    }

    step(9, "the passphrase still opens it");
    d.run(
        &["list", "--passphrase-fd", "0"],
        Some("correct horse battery staple\n"),
        true,
    )?;
    Ok(())
}

fn copy_private(from: &Path, to: &Path) -> CliResult {
    let bytes = std::fs::read(from).map_err(|e| CliError::Input(format!("demo: {e}")))?;
    devc_vault::file::create_new(to, &bytes)?;
    Ok(())
}

fn shorten(line: &str) -> String {
    if line.len() > 72 {
        format!("{}…", &line[..72])
    } else {
        line.to_string()
    }
}
