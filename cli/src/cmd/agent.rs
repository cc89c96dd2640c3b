//! `devc-vault agent`: run the key agent, and `slot add agent` (the agent
//! wraps the vault's master key under a key it never hands out).

use std::path::PathBuf;
use std::time::Duration;

use devc_keydelivery::agent::state::{Policy, SecretSource};
use devc_keydelivery::agent::{self, AgentOptions};
use devc_keydelivery::client::AgentClient;
use devc_keydelivery::environment::{self, parse_duration};
use devc_vault::{AccessKeys, Store, VaultId};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock;

/// Parses a `--…` duration such as 90s, 15m, 4h.
pub fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 90s, 15m, 4h"))
}

fn vault_id(s: &str) -> Result<VaultId, String> {
    VaultId::parse(s)
        .ok_or_else(|| format!("{s:?} is not a vault id (32 hex digits, see `devc-vault status`)"))
}

/// Run the key agent: hold key secrets (or a passphrase-opened vault key)
/// and answer key requests on a unix socket a container can mount.
///
/// The agent never hands out what it holds: a client gets the keys of one
/// version of its vault, so `lock`, the TTLs and stopping the agent cut off
/// every version written afterwards. It listens on two sockets: --socket,
/// in a directory of its own that a container mounts (key requests only;
/// this user and --allow-uid users), and an owner endpoint in your private
/// runtime directory, never mounted, where `devc-vault lock|unlock|status
/// --socket SOCKET` and `slot add agent` reach it.
///
/// With `--key-file K` (and `--load` for more), or `--key-command`, the agent
/// opens every vault those keys open, and the agent slots made with `slot
/// add agent`. Runs in the foreground until SIGTERM or SIGINT; SIGHUP reads
/// the key files (or runs the key command) again.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container-facing socket [default: $DEVC_VAULT_AGENT_SOCK, else $XDG_RUNTIME_DIR/devc-vault-agent/agent.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Another key file to hold (repeatable; `--key-file` gives the first)
    #[arg(long, value_name = "PATH")]
    load: Vec<PathBuf>,
    /// Hold the key that this command prints (a key file's line), e.g. "pass show devc/myproj"; split on spaces, no shell
    #[arg(long, value_name = "COMMAND")]
    key_command: Option<String>,
    /// Prompt on the terminal for the vault's passphrase and hold its master key
    #[arg(long)]
    passphrase: bool,
    /// Also serve this uid on the container-facing socket (a container's user; repeatable)
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
    /// Keep sealed host credentials fresh: re-resolve each entry from the
    /// host source it came from when it is due (this interval for sources
    /// without their own, see [refresh] in the config file; before a known
    /// expiry). Needs a key that opens the vault(s), like any client
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    refresh_every: Option<Duration>,
    /// A vault to keep fresh (repeatable) [default: [refresh] vaults in the config file, else --vault / DEVC_VAULT]
    #[arg(long, value_name = "PATH")]
    refresh_vault: Vec<PathBuf>,
    /// No log lines on stderr
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `agent`; returns only on a start-up error.
pub fn run(g: &Global, a: Args) -> CliResult {
    // Absolute, so the re-reads on SIGHUP and after a rotate find the same
    // files whatever the working directory.
    let mut sources: Vec<SecretSource> = g
        .key_file
        .iter()
        .chain(&a.load)
        .map(|p| SecretSource::File(std::path::absolute(p).unwrap_or_else(|_| p.clone())))
        .collect();
    if let Some(cmd) = &a.key_command {
        let argv: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
        if argv.is_empty() {
            return Err(CliError::Usage("--key-command is empty".into()));
        }
        sources.push(SecretSource::Command {
            argv,
            timeout: devc_keydelivery::environment::COMMAND_TIMEOUT,
        });
    }
    let mut masters = Vec::new();
    if a.passphrase || g.passphrase_fd.is_some() {
        let sealed = g.store().read()?;
        masters.push((sealed.id, unlock::master_from_passphrase(g, &sealed)?));
    }
    if sources.is_empty() && masters.is_empty() {
        return Err(CliError::Usage(
            "the agent has nothing to hold: give --key-file PATH (and --load PATH), --key-command COMMAND, or --passphrase / --passphrase-fd N".into(),
        ));
    }
    let socket = a.socket.unwrap_or_else(environment::default_agent_socket);
    // Only a refreshing agent reads the config file: the agent itself
    // needs none, and may run as a user who cannot read it.
    if let Some(every) = a.refresh_every {
        if every.is_zero() {
            return Err(CliError::Usage(
                "--refresh-every must be at least 1s".into(),
            ));
        }
        let config = devc_keydelivery::Config::load()?;
        let mut vaults = a.refresh_vault;
        if vaults.is_empty() {
            vaults = config.refresh.vaults.clone();
        }
        if vaults.is_empty() {
            vaults.push(g.vault_path());
        }
        let vaults = vaults
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let schedule = devc_host::refresh::Schedule::new(config.refresh, Some(every));
        crate::cmd::refresher::spawn(socket.clone(), vaults, schedule, !a.quiet);
    } else if !a.refresh_vault.is_empty() {
        return Err(CliError::Usage(
            "--refresh-vault needs --refresh-every DURATION".into(),
        ));
    }
    let opts = AgentOptions {
        socket,
        sources,
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
    /// The agent's container-facing socket (its owner endpoint is used) [default: the configured agent sockets]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Which held key to use, when the agent holds several (see `devc-vault status`)
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

/// The agent sockets a command addresses: `--socket`, else the configured ones.
pub fn sockets(socket: Option<PathBuf>) -> CliResult<Vec<PathBuf>> {
    Ok(match socket {
        Some(s) => vec![s],
        None => devc_keydelivery::Config::load()?.agent_sockets,
    })
}

/// The owner endpoint of the first of `sockets` whose agent runs here as
/// this user. Nothing else is ever sent a master key.
pub fn connect_owner(sockets: &[PathBuf]) -> CliResult<AgentClient> {
    let mut last = None;
    for s in sockets {
        match AgentClient::connect_owner(s) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(CliError::Usage(match last {
        Some(e) => format!(
            "{e}; start one on this host with `devc-vault agent --key-file PATH` or pass --socket"
        ),
        None => "no agent socket configured".into(),
    }))
}

/// `slot add agent`: the agent makes the slot over its owner endpoint; we
/// check that it opens this vault's current version before writing it, so
/// a bad reply cannot lock anyone out.
pub fn add_slot(g: &Global, store: &Store, a: SlotArgs) -> CliResult {
    let mut client = connect_owner(&sockets(a.socket)?)?;
    let agent_err = |e: devc_keydelivery::client::AgentError| CliError::Usage(e.to_string());
    let id = store.update(
        |s| unlock::open(s, g),
        |v| {
            let vmk = v.master_key()?.clone();
            let slot = client
                .wrap(&v.id(), a.key_id.clone(), &vmk)
                .map_err(agent_err)?;
            let probe = AccessKeys::fresh(&vmk);
            let back = client
                .open_with(&v.id(), probe.salt(), std::slice::from_ref(&slot))
                .map_err(agent_err)?;
            if back != probe {
                return Err(CliError::Usage(
                    "the agent's slot does not open this vault; not added".into(),
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
