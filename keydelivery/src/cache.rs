//! The passphrase cache: after a passphrase opens a vault, a detached agent
//! (the same agent code, `devc-vault agent --cache`) holds the vault's master
//! key for an idle TTL and a max lifetime, so the next call does not prompt.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devc_vault::{MasterKey, SealedVault, VaultId};

use crate::client::{AgentClient, AgentError};
use crate::config::Config;

/// The CLI that runs agents.
pub const CLI_NAME: &str = "devc-vault";
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
    /// Talking to it failed.
    Agent(AgentError),
    /// The process on the cache socket belongs to another user.
    ForeignOwner {
        /// The socket.
        path: PathBuf,
        /// The uid serving it.
        uid: u32,
    },
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
            CacheError::ForeignOwner { path, uid } => write!(
                f,
                "refusing the passphrase cache at {}: it is run by uid {uid}, not by you",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CacheError {}

/// Asks a running cache for the vault's master key; `None` if there is no
/// cache or it does not hold this vault.
pub fn lookup(socket: &Path, sealed: &SealedVault) -> Result<MasterKey, AgentError> {
    AgentClient::connect(socket)?.unwrap(sealed)
}

/// Hands the key over, but only to a cache run by this same user: under
/// `/tmp` another user could have squatted the directory and listen there.
fn hand_over(mut c: AgentClient, vault: &VaultId, vmk: &MasterKey) -> Result<(), CacheError> {
    let uid = c.peer_uid().map_err(CacheError::Agent)?;
    if uid != crate::config::uid() {
        return Err(CacheError::ForeignOwner {
            path: c.path().to_path_buf(),
            uid,
        });
    }
    c.add_master(vault, vmk).map_err(CacheError::Agent)
}

/// Hands `vmk` to the cache, starting a detached cache agent if none runs.
pub fn remember(cfg: &Config, vault: &VaultId, vmk: &MasterKey) -> Result<(), CacheError> {
    if let Ok(c) = AgentClient::connect(&cfg.cache_socket) {
        return hand_over(c, vault, vmk);
    }
    let exe = cli_executable().ok_or(CacheError::NoExecutable)?;
    // Not waited for: it outlives us. Stdio closed so a caller reading our
    // output (the docker CLI) is not left waiting on a pipe it holds; it
    // calls setsid itself (`--detach`) to leave the terminal's session.
    Command::new(exe)
        .arg("agent")
        .arg("--cache")
        .arg("--socket")
        .arg(&cfg.cache_socket)
        .arg("--idle-ttl")
        .arg(format!("{}s", cfg.cache_idle_ttl.as_secs()))
        .arg("--max-ttl")
        .arg(format!("{}s", cfg.cache_max_ttl.as_secs()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(CacheError::Spawn)?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        match AgentClient::connect(&cfg.cache_socket) {
            Ok(c) => return hand_over(c, vault, vmk),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return Err(CacheError::NotListening(cfg.cache_socket.clone())),
        }
    }
}

/// Locks (and so stops) the cache; `Ok(false)` if none was running.
pub fn forget(socket: &Path) -> Result<bool, AgentError> {
    match AgentClient::connect(socket) {
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
