//! `devc-vault agent`: run the key agent, and `slot add agent` (the agent
//! wraps the vault's master key under a key it never hands out).

use std::path::PathBuf;
use std::time::Duration;

use devc_keydelivery::agent::state::Policy;
use devc_keydelivery::agent::{self, AgentOptions};
use devc_keydelivery::client::AgentClient;
use devc_keydelivery::environment::{self, parse_duration};
use devc_keydelivery::prompt::Tty;
use devc_keydelivery::source::prompt_and_unwrap;
use devc_vault::{Key, Store, VaultId};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::{input, unlock};

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 90s, 15m, 4h"))
}

fn vault_id(s: &str) -> Result<VaultId, String> {
    VaultId::parse(s)
        .ok_or_else(|| format!("{s:?} is not a vault id (32 hex digits, see `devc-vault status`)"))
}

/// Run the key agent: hold key files (or a passphrase-opened vault key) and
/// answer unwrap requests on a unix socket; the held secrets never leave it.
///
/// With `--key-file K` (and `--load` for more), the agent opens every vault
/// that K opens, and the agent slots made with `slot add agent`. Runs in
/// the foreground until SIGTERM or SIGINT; SIGHUP re-reads the key files.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket path [default: $DEVC_VAULT_AGENT_SOCK, else $XDG_RUNTIME_DIR/devc-vault/agent.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Another key file to hold (repeatable; `--key-file` gives the first)
    #[arg(long, value_name = "PATH")]
    load: Vec<PathBuf>,
    /// Prompt on the terminal for the vault's passphrase and hold its master key
    #[arg(long)]
    passphrase: bool,
    /// Also serve this uid (e.g. a container's user; repeatable)
    #[arg(long, value_name = "UID")]
    allow_uid: Vec<u32>,
    /// Serve only this vault id (repeatable; default: any vault)
    #[arg(long, value_name = "ID", value_parser = vault_id)]
    allow_vault: Vec<VaultId>,
    /// Forget the keys after this long unused (e.g. 15m) [default: never]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    idle_ttl: Option<Duration>,
    /// Forget the keys this long after loading them (e.g. 8h) [default: never]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    max_ttl: Option<Duration>,
    /// No log lines on stderr
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `agent`; returns only on a start-up error.
pub fn run(g: &Global, a: Args) -> CliResult {
    // Absolute, so the re-reads on SIGHUP and after a rotate find the same
    // files whatever the working directory.
    let key_files = g
        .key_file
        .iter()
        .chain(&a.load)
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect::<Vec<PathBuf>>();
    let mut masters = Vec::new();
    if a.passphrase || g.passphrase_fd.is_some() {
        let sealed = Store::new(g.vault_path()).read()?;
        let vmk = match g.passphrase_fd {
            Some(fd) => sealed.unwrap_master(&Key::Passphrase(input::passphrase_from_fd(fd)?))?,
            None => {
                let mut tty = Tty::open().ok_or_else(|| {
                    CliError::Input("--passphrase needs a terminal; use --passphrase-fd".into())
                })?;
                prompt_and_unwrap(&mut tty, &sealed).map_err(|e| CliError::Input(e.to_string()))?
            }
        };
        // Check the key against the whole vault before holding it.
        sealed.open_with_master(vmk.clone())?;
        masters.push((sealed.id, vmk));
    }
    if key_files.is_empty() && masters.is_empty() {
        return Err(CliError::Usage(
            "the agent has nothing to hold: give --key-file PATH (and --load PATH), or --passphrase / --passphrase-fd N".into(),
        ));
    }
    run_agent(a, key_files, masters)
}

fn run_agent(
    a: Args,
    key_files: Vec<PathBuf>,
    masters: Vec<(VaultId, devc_vault::MasterKey)>,
) -> CliResult {
    let opts = AgentOptions {
        socket: a.socket.unwrap_or_else(environment::default_agent_socket),
        key_files,
        masters,
        policy: Policy {
            idle_ttl: a.idle_ttl,
            max_ttl: a.max_ttl,
            allow_vaults: a.allow_vault,
            allow_uids: a.allow_uid,
            cache: false,
        },
        detach: false,
        log: !a.quiet,
    };
    match agent::run(opts) {
        Ok(never) => match never {},
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

/// Options of `slot add agent`.
#[derive(clap::Args, Debug)]
pub struct SlotArgs {
    /// The agent's socket [default: the first agent socket that answers]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Which held key to use, when the agent holds several (see `devc-vault status`)
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

/// Connects to `socket`, else to the first configured agent that answers.
pub fn connect(socket: Option<PathBuf>) -> CliResult<AgentClient> {
    let candidates = match socket {
        Some(s) => vec![s],
        None => devc_keydelivery::Config::load()?.agent_sockets,
    };
    let mut last = None;
    for s in &candidates {
        match AgentClient::connect(s) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(CliError::Usage(match last {
        Some(e) => {
            format!("{e}; start one with `devc-vault agent --key-file PATH` or pass --socket")
        }
        None => "no agent socket configured".into(),
    }))
}

/// `slot add agent`: the agent makes the slot; we check it unwraps back to
/// this vault's master key before writing, so a bad reply cannot lock it.
pub fn add_slot(g: &Global, store: &Store, a: SlotArgs) -> CliResult {
    let mut client = connect(a.socket)?;
    let agent_err = |e: devc_keydelivery::client::AgentError| CliError::Usage(e.to_string());
    let id = store.update(
        |s| unlock::open(s, g),
        |v| {
            let slot = client
                .wrap(&v.id(), a.key_id.clone(), v.master_key())
                .map_err(agent_err)?;
            let back = client
                .unwrap_slots(&v.id(), std::slice::from_ref(&slot))
                .map_err(agent_err)?;
            if back != *v.master_key() {
                return Err(CliError::Usage(
                    "the agent's slot does not unwrap to this vault's key; not added".into(),
                ));
            }
            Ok(v.add_slot(slot)?)
        },
    )?;
    println!(
        "added agent slot {id} (opens through the agent at {})",
        client.path().display()
    );
    Ok(())
}

/// Runs the passphrase cache as [`devc_keydelivery::cache::Launch`] defines it.
pub fn run_cache(args: &[std::ffi::OsString]) -> CliResult {
    let launch = devc_keydelivery::cache::Launch::parse(args).map_err(CliError::Usage)?;
    match launch.run() {
        Ok(never) => match never {},
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}
