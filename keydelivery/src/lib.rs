//! Key delivery for devc-vault: where the key that opens a vault comes from.
//!
//! Sources are tried in a configured order (default `file,agent,passphrase`);
//! the first that opens the vault wins. When none does, the error lists every
//! source tried and why it failed, in one line.
//!
//! ```no_run
//! use devc_keydelivery::{Config, PromptPolicy, unlock};
//! let mut cfg = Config::from_env()?;
//! cfg.prompt = PromptPolicy::Never; // e.g. the git helper: silent
//! let sealed = devc_vault::Store::new(devc_vault::paths::vault_path()).read()?;
//! match unlock(&sealed, &cfg) {
//!     Ok(vault) => println!("{} docker entries", vault.docker().len()),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod agent;
pub mod cache;
pub mod client;
pub mod command;
pub mod config;
pub mod prompt;
pub mod protocol;
pub mod resolve;
pub mod source;

pub use config::{Config, ConfigError, PromptPolicy, SourceKind};
pub use resolve::{Attempt, UnlockError, unlock, unlock_with_source};
pub use source::{KeySource, SourceError};
