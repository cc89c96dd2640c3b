//! Key-delivery configuration: the source order and where each source looks.

use std::fmt;
use std::path::PathBuf;

/// One kind of key source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A key file (mounted secret).
    File,
    /// A `devc-vault agent` over a unix socket.
    Agent,
    /// A passphrase typed on the terminal.
    Passphrase,
    /// An external command printing the key file's content.
    Command,
}

impl SourceKind {
    /// The name used in `DEVC_VAULT_KEY_ORDER` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Agent => "agent",
            SourceKind::Passphrase => "passphrase",
            SourceKind::Command => "command",
        }
    }

    /// Parses a source name.
    pub fn parse(s: &str) -> Option<SourceKind> {
        match s {
            "file" => Some(SourceKind::File),
            "agent" => Some(SourceKind::Agent),
            "passphrase" => Some(SourceKind::Passphrase),
            "command" => Some(SourceKind::Command),
            _ => None,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a source may prompt on `/dev/tty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptPolicy {
    /// Prompt when a terminal is available.
    IfTerminal,
    /// Never prompt.
    Never,
}

/// Where each source looks, and in which order they are tried.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sources, in the order tried.
    pub order: Vec<SourceKind>,
    /// The key file for the `file` source.
    pub key_file: PathBuf,
    /// Whether prompting is allowed.
    pub prompt: PromptPolicy,
}

/// The default order.
pub const DEFAULT_ORDER: [SourceKind; 3] = [SourceKind::File, SourceKind::Agent, SourceKind::Passphrase];

impl Config {
    /// Configuration from the environment (`DEVC_VAULT_KEY_FILE`, `DEVC_VAULT_KEY_ORDER`).
    pub fn from_env() -> Result<Config, String> {
        let order = match std::env::var("DEVC_VAULT_KEY_ORDER") {
            Ok(s) if !s.trim().is_empty() => parse_order(&s)?,
            _ => DEFAULT_ORDER.to_vec(),
        };
        Ok(Config {
            order,
            key_file: devc_vault::paths::key_file_path(),
            prompt: PromptPolicy::IfTerminal,
        })
    }
}

/// Parses a comma-separated source list such as `file,agent`.
pub fn parse_order(s: &str) -> Result<Vec<SourceKind>, String> {
    s.split(',')
        .map(|t| {
            SourceKind::parse(t.trim()).ok_or_else(|| {
                format!("unknown key source {:?} in DEVC_VAULT_KEY_ORDER; use file, agent, passphrase, command", t.trim())
            })
        })
        .collect()
}
