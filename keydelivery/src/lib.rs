//! Key delivery for devc-vault: where the key that opens a vault comes from.
//!
//! Sources are tried in a configured order (default `file,agent,passphrase`);
//! the first that opens the vault wins. When none does, the error lists every
//! source tried and why it failed, in one line.
#![forbid(unsafe_code)]

pub mod config;
pub mod resolve;
pub mod source;

pub use config::{Config, PromptPolicy, SourceKind};
pub use resolve::{Attempt, UnlockError, unlock};
