//! What a dev-container manager does with the `devc-vault` crate, end to
//! end, in a temporary directory (docs/EMBEDDING.md walks through it):
//! create a project's vault and key file, replace its credentials with what
//! was just resolved on the host in one atomic write, read one back through
//! the real docker credential helper (as a container would), rotate, and see
//! that an old copy of the key file opens nothing any more.
//!
//! ```text
//! cargo run -p devc-vault --example embed
//! ```
//!
//! It builds `docker-credential-devc-encrypted` with the same cargo first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use devc_vault::{DockerEntry, GitEntry, Key, Project, Secret, Source, keyfile, now};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // Where a manager keeps them per project, e.g.
    // ~/.local/share/devc/vaults/<id>/ and ~/.config/devc/keys/<id>/.
    let vault_dir = tmp.path().join("vaults/project-1");
    let key_dir = tmp.path().join("keys/project-1");
    let project = Project::new(
        vault_dir.join(".credentials.enc"),
        key_dir.join("devc-vault-key"),
    );

    // 1. Before the container is created (its bind mounts need both files).
    let created = project.ensure()?;
    println!(
        "vault {} (created: {created})",
        project.vault_path().display()
    );

    // 2. What the manager resolved on the host this time (its credsStore,
    //    credHelpers, `git credential fill`...), each marked with where it
    //    came from, replacing what the last resolution put there.
    let fetched = now();
    let docker = vec![
        DockerEntry::new("ghcr.io", "octo", Secret::new("ghp_example-token".into()))
            .with_source(Source::new("docker-helper", "desktop", fetched)),
    ];
    let git = vec![
        GitEntry::new(
            "https",
            "github.com",
            "octo",
            Secret::new("gho_example".into()),
        )
        .with_source(Source::new("git", "git credential fill", fetched)),
    ];
    project.replace(docker.clone(), git.clone())?;
    println!("entries: {}", summary(&project)?);
    // Replacing again with the same set (the next `exec`) rewrites nothing.
    let before = std::fs::read(project.vault_path())?;
    project.replace(docker, git)?;
    assert_eq!(std::fs::read(project.vault_path())?, before);

    // 3. What `docker pull` in the container does: the helper reads the
    //    mounted vault with the mounted key file.
    let helper = build_helper()?;
    let answer = docker_get(&helper, &project, "ghcr.io")?;
    assert!(answer.contains("\"Username\":\"octo\""), "{answer}");
    println!("helper answered for ghcr.io: user octo (secret not shown)");

    // 4. Rotate: a new master key and key-file secret, replaced in place (the
    //    container's bind mount of the key directory sees the new file).
    let old_key = std::fs::read(project.key_file())?;
    project.rotate()?;
    let answer = docker_get(&helper, &project, "ghcr.io")?;
    assert!(answer.contains("\"Username\":\"octo\""), "{answer}");
    let old = keyfile::parse(&old_key).map_err(|e| e.to_string())?;
    let sealed = devc_vault::Store::new(project.vault_path()).read()?;
    assert!(sealed.open(&Key::Secret(old)).is_err());
    println!("rotated: the helper still answers, an old key copy opens nothing");
    Ok(())
}

fn summary(project: &Project) -> Result<String> {
    let v = project.open()?;
    Ok(format!(
        "{} docker, {} git",
        v.docker().len(),
        v.git().len()
    ))
}

/// Builds the docker helper with the cargo running this example and returns its path.
fn build_helper() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "devc-helper",
            "--bin",
            "docker-credential-devc-encrypted",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("building docker-credential-devc-encrypted failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "docker-credential-devc-encrypted")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo did not say where the helper was built".into())
}

/// `docker-credential-devc-encrypted get` with the server on stdin, as the
/// docker CLI runs it, with only this project's vault and key file.
fn docker_get(helper: &Path, project: &Project, server: &str) -> Result<String> {
    let mut child = Command::new(helper)
        .arg("get")
        .env("DEVC_VAULT", project.vault_path())
        .env("DEVC_VAULT_KEY_FILE", project.key_file())
        .env("DEVC_VAULT_KEY_ORDER", "file")
        .env_remove("DEVC_VAULT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(server.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "the helper failed: {}",
            String::from_utf8_lossy(&out.stdout)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}
