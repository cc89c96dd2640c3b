//! `devc-vault unlock`: unlock the agent, and enter the vault's passphrase
//! ahead of the first pull so the helpers find its key in the cache.

use std::path::PathBuf;

use devc_keydelivery::client::{AgentClient, AgentError};
use devc_keydelivery::{Config, SourceKind, cache};
use devc_vault::SlotKind;

use crate::Global;
use crate::error::{CliError, CliResult};

/// Unlock: the agent re-reads its key files; if the vault still needs its
/// passphrase, ask for it once and cache the vault's key (idle 15 min, max 4 h).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's container-facing socket, as given to `agent --socket` [default: the configured agent sockets]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// Runs `unlock`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let mut cfg = Config::load()?;
    if let Some(s) = a.socket {
        cfg.agent_sockets = vec![s];
    }
    for s in &cfg.agent_sockets {
        match AgentClient::connect_owner(s).and_then(|mut c| c.unlock()) {
            Ok(()) => println!("agent at {} unlocked", s.display()),
            Err(AgentError::NotRunning { .. }) => {}
            // A cache-only agent has no key files; the passphrase step below covers it.
            Err(e) => eprintln!("devc-vault: {e}"),
        }
    }
    let store = g.store();
    let sealed = match store.read() {
        Ok(s) => s,
        // Unlocking an agent needs no vault here.
        Err(devc_vault::Error::VaultNotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Already open without a prompt? Then there is nothing to ask.
    let mut quiet = cfg.clone();
    quiet.prompt = devc_keydelivery::PromptPolicy::Never;
    if let Ok((_, src)) = devc_keydelivery::unlock_with_source(&sealed, &quiet) {
        println!("vault {} opens via {src}", sealed.id);
        return Ok(());
    }
    if !sealed
        .slots
        .iter()
        .any(|s| matches!(s.kind, SlotKind::Passphrase(_)))
    {
        return Err(CliError::Usage(format!(
            "vault {} has no passphrase slot and no other source opens it; see `devc-vault status`",
            sealed.id
        )));
    }
    let vmk = crate::unlock::master_from_passphrase(g, &sealed)?;
    cache::remember(&cfg, &sealed.id, &vmk).map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "vault {} unlocked: its key is cached for {} idle, {} at most ({})",
        sealed.id,
        human(cfg.cache_idle_ttl.as_secs()),
        human(cfg.cache_max_ttl.as_secs()),
        SourceKind::Passphrase
    );
    Ok(())
}

/// `900` -> `15m`, `14400` -> `4h`.
pub fn human(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
