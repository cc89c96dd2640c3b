//! `devc-vault list`: what the vault holds, never a secret.

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
    let vault = unlock::open(&g.store().read()?, g)?;
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
    // Entries may have been stored from inside a container: never let one
    // move the cursor or retitle the terminal.
    let show = |s: &str| terminal_safe(s);
    if vault.docker().is_empty() && vault.git().is_empty() {
        println!("(the vault is empty)");
    }
    for d in vault.docker() {
        println!("docker  {}  {}", show(&d.server_url), show(&d.username));
    }
    for e in vault.git() {
        let path = e
            .path
            .as_deref()
            .map(|p| format!("/{}", show(p)))
            .unwrap_or_default();
        println!(
            "git     {}://{}{}  {}",
            show(&e.protocol),
            show(&e.host),
            path,
            show(&e.username)
        );
    }
    Ok(())
}

/// `s` with every control character (escape sequences, bells, line breaks)
/// written as `\u{..}`.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
