//! `devc-vault lock`: the agent forgets its keys and the passphrase cache
//! stops, so the next use needs `unlock` (or prompts again). It talks to the
//! agent's owner endpoint, on the host, as the agent's user.

use std::path::PathBuf;

use devc_keydelivery::client::{AgentClient, AgentError};
use devc_keydelivery::{Config, cache};

use crate::Global;
use crate::error::{CliError, CliResult};

/// Lock: the agent forgets its keys until `unlock`; the passphrase cache forgets and exits.
///
/// Run on the host by the agent's owner: it reaches the agent through its
/// owner endpoint, which a container never sees. Versions of the vault
/// written after a lock cannot be opened with anything the agent handed out
/// before it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's container-facing socket, as given to `agent --socket` [default: the configured agent sockets]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// Runs `lock`.
pub fn run(_g: &Global, a: Args) -> CliResult {
    let mut cfg = Config::load()?;
    if let Some(s) = a.socket {
        cfg.agent_sockets = vec![s];
    }
    let mut errors = Vec::new();
    let mut locked = 0;
    for s in &cfg.agent_sockets {
        match AgentClient::connect_owner(s).and_then(|mut c| c.lock()) {
            Ok(()) => {
                locked += 1;
                println!("agent at {} locked", s.display());
            }
            Err(AgentError::NotRunning { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    match cache::forget(&cfg.cache_socket) {
        Ok(true) => {
            locked += 1;
            println!("passphrase cache at {} cleared", cfg.cache_socket.display());
        }
        Ok(false) => {}
        Err(e) => errors.push(e.to_string()),
    }
    if !errors.is_empty() {
        return Err(CliError::Usage(errors.join("; ")));
    }
    if locked == 0 {
        println!("no agent or passphrase cache is running");
    }
    Ok(())
}
