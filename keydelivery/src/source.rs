//! The key sources. Each either yields a key to try or says why it cannot.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use devc_vault::{Key, SealedVault, SlotKind, keyfile};

use crate::cache::{self, CacheError};
use crate::client::{AgentClient, AgentError, AgentService};
use crate::command::{self, CommandError};
use crate::endpoint::{self, Trust};
use crate::environment::{Config, PromptPolicy, SourceKind};
use crate::prompt::{PromptError, Tty};

/// Passphrase attempts before giving up.
pub const PASSPHRASE_TRIES: u32 = 3;

/// Why a source gave no key. Messages name paths and causes, never secrets.
#[derive(Debug)]
pub enum SourceError {
    /// The key file does not exist.
    FileMissing(PathBuf),
    /// The key file exists but was refused (permissions, form, I/O).
    FileRefused(devc_vault::Error),
    /// No agent socket answered.
    NoAgent(Vec<PathBuf>),
    /// An agent answered but gave no key.
    Agent(AgentError),
    /// The vault has no passphrase slot.
    NoPassphraseSlot,
    /// Prompting is disabled for this caller.
    PromptDisabled,
    /// No controlling terminal to prompt on.
    NoTerminal,
    /// Reading the passphrase failed.
    Prompt(PromptError),
    /// Every try was wrong.
    WrongPassphrase(u32),
    /// The vault refused to run the key derivation (excessive cost).
    Vault(devc_vault::Error),
    /// No `key_command` is configured.
    NoCommand,
    /// The `key_command` failed.
    Command(CommandError),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::FileMissing(p) => write!(f, "{} not found", p.display()),
            SourceError::FileRefused(e) => write!(f, "{e}"),
            SourceError::NoAgent(paths) => {
                write!(f, "no agent at ")?;
                for (i, p) in paths.iter().enumerate() {
                    write!(f, "{}{}", if i > 0 { " or " } else { "" }, p.display())?;
                }
                Ok(())
            }
            SourceError::Agent(e) => write!(f, "{e}"),
            SourceError::NoPassphraseSlot => write!(f, "the vault has no passphrase slot"),
            SourceError::PromptDisabled => write!(f, "not prompting here and no cached key"),
            SourceError::NoTerminal => write!(f, "no terminal to prompt on and no cached key"),
            SourceError::Prompt(e) => write!(f, "{e}"),
            SourceError::WrongPassphrase(n) => write!(f, "wrong passphrase ({n} tries)"),
            SourceError::Vault(e) => write!(f, "{e}"),
            SourceError::NoCommand => write!(f, "no key_command in the config"),
            SourceError::Command(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// One place a key can come from.
pub trait KeySource {
    /// Which kind of source this is.
    fn kind(&self) -> SourceKind;
    /// A key to open `sealed` with, or why there is none.
    fn key(&self, sealed: &SealedVault) -> Result<Key, SourceError>;
}

/// The source of `kind`, configured by `cfg`.
pub fn for_kind(kind: SourceKind, cfg: &Config) -> Box<dyn KeySource + '_> {
    match kind {
        SourceKind::File => Box::new(FileSource { cfg }),
        SourceKind::Agent => Box::new(AgentSource { cfg }),
        SourceKind::Passphrase => Box::new(PassphraseSource { cfg }),
        SourceKind::Command => Box::new(CommandSource { cfg }),
    }
}

/// A key file (mounted secret).
#[derive(Debug)]
pub struct FileSource<'a> {
    cfg: &'a Config,
}

impl KeySource for FileSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }
    fn key(&self, sealed: &SealedVault) -> Result<Key, SourceError> {
        file(self.cfg, sealed)
    }
}

/// Reads the key file named by the configuration (or the `K.next` an
/// interrupted rotate left, when only that opens `sealed`).
pub fn file(cfg: &Config, sealed: &SealedVault) -> Result<Key, SourceError> {
    keyfile::read_for(&cfg.key_file, sealed)
        .map(Key::Secret)
        .map_err(|e| match e {
            devc_vault::Error::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                SourceError::FileMissing(cfg.key_file.clone())
            }
            other => SourceError::FileRefused(other),
        })
}

/// A `devc-vault agent`: the first configured socket that answers.
#[derive(Debug)]
pub struct AgentSource<'a> {
    cfg: &'a Config,
}

impl KeySource for AgentSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Agent
    }
    fn key(&self, sealed: &SealedVault) -> Result<Key, SourceError> {
        let mut last = None;
        for path in &self.cfg.agent_sockets {
            let (socket, trust) = endpoint_for(path);
            match AgentClient::connect(&socket, trust).and_then(|mut c| c.open(sealed)) {
                Ok(keys) => {
                    return Ok(Key::Delegated(
                        keys,
                        Arc::new(AgentService { socket, trust }),
                    ));
                }
                Err(AgentError::NotRunning { .. }) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => SourceError::Agent(e),
            None => SourceError::NoAgent(self.cfg.agent_sockets.clone()),
        })
    }
}

/// Where to ask the agent whose container-facing socket is `socket`: its
/// owner endpoint when it runs here as this user (the host), else the
/// socket itself (a container).
pub fn endpoint_for(socket: &std::path::Path) -> (PathBuf, Trust) {
    let owner = crate::environment::owner_socket(socket);
    if owner.exists() {
        (owner, Trust::Private)
    } else {
        (socket.to_path_buf(), Trust::ContainerFacing)
    }
}

/// A passphrase: the cache first, then (if allowed) a prompt on `/dev/tty`.
#[derive(Debug)]
pub struct PassphraseSource<'a> {
    cfg: &'a Config,
}

impl KeySource for PassphraseSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Passphrase
    }
    fn key(&self, sealed: &SealedVault) -> Result<Key, SourceError> {
        if let Ok(k) = cache::lookup(&self.cfg.cache_socket, sealed) {
            return Ok(k);
        }
        if !sealed
            .slots
            .iter()
            .any(|s| matches!(s.kind, SlotKind::Passphrase(_)))
        {
            return Err(SourceError::NoPassphraseSlot);
        }
        if self.cfg.prompt == PromptPolicy::Never {
            return Err(SourceError::PromptDisabled);
        }
        let mut tty = Tty::open().ok_or(SourceError::NoTerminal)?;
        // `docker compose pull` runs helpers in parallel: one prompts, the
        // others wait here and then find the key in the cache, instead of
        // several prompts fighting over one terminal.
        let _turn = prompt_turn(self.cfg);
        if let Ok(k) = cache::lookup(&self.cfg.cache_socket, sealed) {
            return Ok(k);
        }
        let vmk = prompt_and_unwrap(&mut tty, sealed)?;
        if self.cfg.start_cache
            && let Err(e) = cache::remember(self.cfg, &sealed.id, &vmk)
        {
            // The vault still opens; only the next call will prompt again.
            note_cache_failure(&mut tty, &e);
        }
        Ok(Key::Master(vmk))
    }
}

/// Takes the per-user prompt lock (beside the cache socket), waiting for
/// another helper's prompt to finish. `None` (no lock, prompt anyway) if the
/// directory is unusable: the lock only orders prompts, it protects nothing.
fn prompt_turn(cfg: &Config) -> Option<std::fs::File> {
    let dir = endpoint::socket_dir(&cfg.cache_socket);
    endpoint::ensure_private_dir(&dir).ok()?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("prompt.lock"))
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).ok()?;
    Some(f)
}

fn note_cache_failure(tty: &mut Tty, e: &CacheError) {
    tty.note(&format!(
        "devc-vault: {e}; you will be asked again next time\n"
    ));
}

/// Prompts up to [`PASSPHRASE_TRIES`] times and unwraps the master key.
pub fn prompt_and_unwrap(
    tty: &mut Tty,
    sealed: &SealedVault,
) -> Result<devc_vault::MasterKey, SourceError> {
    for attempt in 1..=PASSPHRASE_TRIES {
        let p = tty
            .read_secret(&format!("devc-vault: passphrase for vault {}: ", sealed.id))
            .map_err(SourceError::Prompt)?;
        // Argon2id at 64 MiB takes a noticeable moment: say so.
        tty.note("devc-vault: unlocking…\n");
        match sealed.unwrap_master(&Key::Passphrase(p)) {
            Ok(k) => return Ok(k),
            Err(devc_vault::Error::NoMatchingKey { .. }) => {
                if attempt < PASSPHRASE_TRIES {
                    tty.note("devc-vault: wrong passphrase, try again\n");
                }
            }
            Err(e) => return Err(SourceError::Vault(e)),
        }
    }
    tty.note(&format!(
        "devc-vault: wrong passphrase {PASSPHRASE_TRIES} times; giving up\n"
    ));
    Err(SourceError::WrongPassphrase(PASSPHRASE_TRIES))
}

/// An external command printing the key file's content.
#[derive(Debug)]
pub struct CommandSource<'a> {
    cfg: &'a Config,
}

impl KeySource for CommandSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Command
    }
    fn key(&self, _: &SealedVault) -> Result<Key, SourceError> {
        let argv = self
            .cfg
            .key_command
            .as_deref()
            .ok_or(SourceError::NoCommand)?;
        command::run(
            argv,
            self.cfg.key_command_timeout,
            self.cfg.prompt == PromptPolicy::Never,
        )
        .map(Key::Secret)
        .map_err(SourceError::Command)
    }
}
