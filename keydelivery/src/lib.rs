//! Key delivery for devc-vault: where the key that opens a vault comes from.
//!
//! Sources are tried in a configured order (default `file,agent,passphrase`);
//! the first that opens the vault wins. When none does, the error lists every
//! source tried and why it failed, in one line.
//!
//! ```no_run
//! use devc_keydelivery::{Config, PromptPolicy, environment, open};
//! let mut cfg = Config::load()?;
//! cfg.prompt = PromptPolicy::Never; // e.g. the git helper: silent
//! let store = devc_vault::Store::new(environment::vault_path());
//! match open(&store, &cfg) {
//!     Ok(vault) => println!("{} docker entries", vault.docker().len()),
//!     Err(e) if e.is_miss() => eprintln!("nothing here: {e}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod agent;
pub mod cache;
pub mod child;
pub mod client;
pub mod command;
pub mod endpoint;
pub mod environment;
pub mod harden;
pub mod prompt;
pub mod protocol;
pub mod resolve;
pub mod source;
pub mod version;

pub use environment::{Config, ConfigError, PromptPolicy, SourceKind};
pub use resolve::{Attempt, UnlockError, open, unlock, unlock_with_source};
pub use source::{KeySource, SourceError};
