//! The passphrase cache: after a passphrase opens a vault, a detached agent
//! (the same agent code) holds the vault's master key for an idle TTL and a
//! max lifetime, so the next call does not prompt.
//!
//! [`Launch`] is the one definition of how a cache is started: `remember`
//! spawns `devc-vault` with [`Launch::args`], and the CLI hands those
//! arguments back to [`Launch::parse`] and [`Launch::run`].

use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use devc_vault::{Key, MasterKey, SealedVault, VaultId};

use crate::agent::state::Policy;
use crate::agent::{self, AgentOptions, AgentStartError};
use crate::client::{AgentClient, AgentError, AgentService};
use crate::endpoint::{self, EndpointError, Trust};
use crate::environment::{Config, parse_duration};

/// The CLI that runs agents.
pub const CLI_NAME: &str = "devc-vault";

/// How a passphrase cache is started: its socket and lifetimes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Where it listens.
    pub socket: PathBuf,
    /// Forget a key unused this long.
    pub idle_ttl: Duration,
    /// Forget a key this long after it was handed over.
    pub max_ttl: Duration,
}

impl Launch {
    /// The hidden `devc-vault` subcommand that starts a cache.
    pub const SUBCOMMAND: &'static str = "__cache";

    /// The cache a configuration asks for.
    pub fn from_config(cfg: &Config) -> Launch {
        Launch {
            socket: cfg.cache_socket.clone(),
            idle_ttl: cfg.cache_idle_ttl,
            max_ttl: cfg.cache_max_ttl,
        }
    }

    /// `devc-vault`'s arguments: `__cache --socket S --idle-ttl Ns --max-ttl Ns`.
    pub fn args(&self) -> Vec<OsString> {
        vec![
            Launch::SUBCOMMAND.into(),
            "--socket".into(),
            self.socket.clone().into_os_string(),
            "--idle-ttl".into(),
            format!("{}s", self.idle_ttl.as_secs()).into(),
            "--max-ttl".into(),
            format!("{}s", self.max_ttl.as_secs()).into(),
        ]
    }

    /// Parses what follows [`Launch::SUBCOMMAND`] in [`Launch::args`].
    pub fn parse(args: &[OsString]) -> Result<Launch, String> {
        let duration = |v: &OsStr| {
            v.to_str()
                .and_then(parse_duration)
                .ok_or_else(|| format!("{v:?} is not a duration"))
        };
        match args {
            [s, socket, i, idle, m, max]
                if s == "--socket" && i == "--idle-ttl" && m == "--max-ttl" =>
            {
                Ok(Launch {
                    socket: PathBuf::from(socket),
                    idle_ttl: duration(idle)?,
                    max_ttl: duration(max)?,
                })
            }
            _ => Err(format!(
                "usage: {CLI_NAME} {} --socket PATH --idle-ttl DURATION --max-ttl DURATION",
                Launch::SUBCOMMAND
            )),
        }
    }

    /// Runs the cache in this process (detached from the terminal's session)
    /// until it holds nothing; returns only on a start-up error. Call it
    /// first thing: it closes every descriptor above 2 it inherited.
    pub fn run(self) -> Result<Infallible, AgentStartError> {
        // A pipe its starter's caller left open (`devc-vault unlock 7>&1 |
        // cat`) would otherwise be held until the cache exits.
        devc_fds::close_inherited().map_err(|source| AgentStartError::Io {
            op: "close inherited descriptors of",
            path: PathBuf::from("/proc/self/fd"),
            source,
        })?;
        agent::run(AgentOptions {
            socket: self.socket,
            sources: Vec::new(),
            masters: Vec::new(),
            policy: Policy {
                idle_ttl: Some(self.idle_ttl),
                max_ttl: Some(self.max_ttl),
                cache: true,
                ..Policy::default()
            },
            detach: true,
            log: false,
        })
    }
}
/// How long to wait for a freshly started cache agent to listen.
const START_WAIT: Duration = Duration::from_secs(5);

/// Why the cache could not be started or fed.
#[derive(Debug)]
pub enum CacheError {
    /// The `devc-vault` executable was not found.
    NoExecutable,
    /// Starting it failed.
    Spawn(std::io::Error),
    /// It did not start listening in time.
    NotListening(PathBuf),
    /// Talking to it failed, or it (or its directory) is not this user's.
    Agent(AgentError),
    /// The private runtime directory is unsafe (e.g. another user made it).
    Directory(EndpointError),
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::NoExecutable => write!(
                f,
                "cannot start the passphrase cache: {CLI_NAME} not found beside this program or on PATH"
            ),
            CacheError::Spawn(e) => write!(f, "cannot start the passphrase cache: {e}"),
            CacheError::NotListening(p) => write!(
                f,
                "the passphrase cache did not start listening on {}",
                p.display()
            ),
            CacheError::Agent(e) => write!(f, "passphrase cache: {e}"),
            CacheError::Directory(e) => write!(f, "passphrase cache not used: {e}"),
        }
    }
}

impl std::error::Error for CacheError {}

/// Asks a running cache for the keys of this version of the vault: a key
/// that opens it and writes through the cache. Only a cache run by this
/// user, in a private directory, is asked.
pub fn lookup(socket: &Path, sealed: &SealedVault) -> Result<Key, AgentError> {
    let keys = AgentClient::connect(socket, Trust::Private)?.open(sealed)?;
    Ok(Key::Delegated(
        keys,
        Arc::new(AgentService {
            socket: socket.to_path_buf(),
            trust: Trust::Private,
        }),
    ))
}

/// Hands `vmk` to the cache, starting a detached cache agent if none runs.
/// The cache's directory and process are checked first (see
/// [`crate::endpoint`]): a squatted directory gets nothing.
pub fn remember(cfg: &Config, vault: &VaultId, vmk: &MasterKey) -> Result<(), CacheError> {
    let dir = endpoint::socket_dir(&cfg.cache_socket);
    endpoint::ensure_private_dir(&dir).map_err(CacheError::Directory)?;
    match AgentClient::connect(&cfg.cache_socket, Trust::Private) {
        Ok(mut c) => return c.add_master(vault, vmk).map_err(CacheError::Agent),
        Err(AgentError::NotRunning { .. }) => {}
        Err(e) => return Err(CacheError::Agent(e)),
    }
    let exe = cli_executable().ok_or(CacheError::NoExecutable)?;
    // Not waited for: it outlives us. Stdio closed so a caller reading our
    // output (the docker CLI) is not left waiting on a pipe it holds; it
    // calls setsid itself to leave the terminal's session.
    Command::new(exe)
        .args(Launch::from_config(cfg).args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(CacheError::Spawn)?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        match AgentClient::connect(&cfg.cache_socket, Trust::Private) {
            Ok(mut c) => return c.add_master(vault, vmk).map_err(CacheError::Agent),
            Err(AgentError::NotRunning { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(AgentError::NotRunning { .. }) => {
                return Err(CacheError::NotListening(cfg.cache_socket.clone()));
            }
            Err(e) => return Err(CacheError::Agent(e)),
        }
    }
}

/// Locks (and so stops) the cache; `Ok(false)` if none was running.
pub fn forget(socket: &Path) -> Result<bool, AgentError> {
    match AgentClient::connect(socket, Trust::Private) {
        Ok(mut c) => c.lock().map(|()| true),
        Err(AgentError::NotRunning { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `devc-vault`: this program if it is that, else beside it, else on PATH.
fn cli_executable() -> Option<PathBuf> {
    let me = std::env::current_exe().ok();
    if let Some(me) = &me {
        if me.file_name().is_some_and(|n| n == CLI_NAME) {
            return Some(me.clone());
        }
        if let Some(sibling) = me.parent().map(|d| d.join(CLI_NAME))
            && sibling.is_file()
        {
            return Some(sibling);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(CLI_NAME))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_arguments_round_trip() {
        let l = Launch {
            socket: PathBuf::from("/run/user/1000/devc-vault/cache.sock"),
            idle_ttl: Duration::from_secs(900),
            max_ttl: Duration::from_secs(4 * 3600),
        };
        let args = l.args();
        assert_eq!(args[0], Launch::SUBCOMMAND);
        assert_eq!(Launch::parse(&args[1..]), Ok(l));
        assert!(Launch::parse(&args[2..]).is_err());
        assert!(Launch::parse(&[]).is_err());
    }
}
