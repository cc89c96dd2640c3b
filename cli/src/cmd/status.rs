//! `devc-vault status`: what the agent and the passphrase cache hold (key
//! ids, vaults allowed, locked or not, time left; never a secret), and
//! which source opens the vault right now.

use std::path::{Path, PathBuf};

use devc_keydelivery::client::{AgentClient, AgentError};
use devc_keydelivery::endpoint::Trust;
use devc_keydelivery::protocol::StatusInfo;
use devc_keydelivery::{Config, PromptPolicy, environment};
use devc_vault::Store;

use crate::Global;
use crate::error::{CliError, CliResult};

/// Show the agent's and the passphrase cache's state, and whether the vault opens (without prompting).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's container-facing socket, as given to `agent --socket` [default: the configured agent sockets]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Exit 1 unless the vault opens without a prompt
    #[arg(long)]
    check: bool,
}

fn left(v: Option<u64>) -> String {
    v.map_or_else(|| "no limit".to_owned(), super::unlock::human)
}

fn print_agent(label: &str, path: &Path, st: &StatusInfo) {
    let state = if st.locked {
        format!("locked ({})", st.locked_reason)
    } else {
        "unlocked".to_owned()
    };
    println!(
        "{label} {}: pid {}, protocol v{}, {state}",
        path.display(),
        st.pid,
        st.version
    );
    for k in &st.keys {
        let from = k
            .path
            .as_deref()
            .map(|p| format!(" from {p}"))
            .unwrap_or_default();
        println!(
            "  {} {}{from}: idle time left {}, lifetime left {}",
            k.kind,
            k.id,
            left(k.idle_left_secs),
            left(k.max_left_secs)
        );
    }
    if !st.cache {
        let uids: Vec<String> = st.allowed_uids.iter().map(u32::to_string).collect();
        println!(
            "  allowed uids: own{}{}; vaults: {}",
            if uids.is_empty() { "" } else { ", " },
            uids.join(", "),
            if st.allowed_vaults.is_empty() {
                "any".to_owned()
            } else {
                st.allowed_vaults.join(", ")
            }
        );
    }
}

/// What an agent socket told us.
enum Seen {
    /// A container-facing socket: locked or not.
    Facing { locked: bool },
    /// An owner endpoint or a cache: everything but secrets.
    Status(StatusInfo),
}

/// Runs `status`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let mut cfg = Config::load()?;
    if let Some(s) = a.socket {
        cfg.agent_sockets = vec![s];
    }
    cfg.prompt = PromptPolicy::Never;
    let mut json = serde_json::Map::new();
    let mut agents = Vec::new();
    let mut errors = Vec::new();
    let sockets: Vec<(&str, PathBuf)> = cfg
        .agent_sockets
        .iter()
        .map(|s| ("agent", s.clone()))
        .chain([("cache", cfg.cache_socket.clone())])
        .collect();
    for (label, path) in &sockets {
        let owner = environment::owner_socket(path);
        // Not this user's agent on this host (e.g. inside a container): the
        // container-facing socket says only whether it is locked.
        let seen = if *label == "agent" && !owner.exists() {
            AgentClient::connect(path, Trust::ContainerFacing)
                .and_then(|mut c| c.ping())
                .map(|(_, locked)| Seen::Facing { locked })
        } else {
            let endpoint = if *label == "agent" {
                owner
            } else {
                path.clone()
            };
            AgentClient::connect(&endpoint, Trust::Private)
                .and_then(|mut c| c.status())
                .map(Seen::Status)
        };
        let line = match seen {
            Ok(Seen::Facing { locked }) => {
                agents.push(serde_json::json!({"role": label, "socket": path, "locked": locked}));
                let state = if locked { "locked" } else { "unlocked" };
                Some(format!("{label} {}: reachable, {state}", path.display()))
            }
            Ok(Seen::Status(st)) => {
                if !a.json {
                    print_agent(label, path, &st);
                }
                agents.push(serde_json::json!({"role": label, "socket": path, "status": st}));
                None
            }
            Err(AgentError::NotRunning { .. }) => {
                Some(format!("{label} {}: not running", path.display()))
            }
            Err(e) => {
                errors.push(e.to_string());
                Some(format!("{label} {}: {e}", path.display()))
            }
        };
        if let Some(line) = line
            && !a.json
        {
            println!("{line}");
        }
    }
    json.insert("agents".into(), agents.into());
    let vault_path = g.vault_path();
    let opens = match Store::new(&vault_path).read() {
        Ok(sealed) => {
            let r = devc_keydelivery::unlock_with_source(&sealed, &cfg);
            let line = match &r {
                Ok((_, src)) => format!("opens via {src}"),
                Err(e) => e.to_string(),
            };
            if !a.json {
                println!("vault {} (id {}): {line}", vault_path.display(), sealed.id);
            }
            json.insert(
                "vault".into(),
                serde_json::json!({"path": vault_path, "id": sealed.id.to_string(), "opens": r.is_ok(), "detail": line}),
            );
            r.is_ok()
        }
        Err(e) => {
            if !a.json {
                println!("vault {}: {e}", vault_path.display());
            }
            false
        }
    };
    if a.json {
        println!("{}", serde_json::Value::Object(json));
    }
    if a.check && !opens {
        return Err(CliError::Usage(
            "the vault does not open without a prompt".into(),
        ));
    }
    Ok(())
}
