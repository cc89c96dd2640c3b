//! `devc-vault list`: what the vault holds, never a secret.

use devc_vault::Store;
use serde_json::json;

use crate::Global;
use crate::error::CliResult;
use crate::unlock;

/// List stored credentials (servers, hosts, user names; never secrets).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON array, each element with "kind": "docker" or "git"
    #[arg(long)]
    json: bool,
}

/// Runs `list`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let vault = unlock::open(&Store::new(g.vault_path()).read()?, g)?;
    if a.json {
        let mut items = Vec::new();
        for d in vault.docker() {
            items.push(
                json!({"kind": "docker", "server_url": d.server_url, "username": d.username}),
            );
        }
        for e in vault.git() {
            items.push(json!({
                "kind": "git", "protocol": e.protocol, "host": e.host,
                "path": e.path, "username": e.username,
            }));
        }
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    if vault.docker().is_empty() && vault.git().is_empty() {
        println!("(the vault is empty)");
    }
    for d in vault.docker() {
        println!("docker  {}  {}", d.server_url, d.username);
    }
    for e in vault.git() {
        let path = e
            .path
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        println!(
            "git     {}://{}{}  {}",
            e.protocol, e.host, path, e.username
        );
    }
    Ok(())
}
