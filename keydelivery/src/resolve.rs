//! The resolver: walks the configured sources in order and opens the vault
//! with the first key that fits.

use std::fmt;

use devc_vault::{Error, SealedVault, Vault};

use crate::config::{Config, SourceKind};
use crate::source;

/// Why one source gave no key.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The source.
    pub source: SourceKind,
    /// Why it failed (never a secret).
    pub why: String,
}

/// Why a vault could not be opened.
#[derive(Debug)]
pub enum UnlockError {
    /// No source produced a key that opens the vault.
    NoKey(Vec<Attempt>),
    /// A key opened a slot but the vault itself is damaged or tampered.
    Vault(Error),
}

impl fmt::Display for UnlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockError::NoKey(attempts) => {
                write!(f, "no key for the vault (tried ")?;
                for (i, a) in attempts.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{}: {}", a.source, a.why)?;
                }
                write!(f, ")")
            }
            UnlockError::Vault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UnlockError {}

impl From<Error> for UnlockError {
    fn from(e: Error) -> Self {
        UnlockError::Vault(e)
    }
}

/// Opens `sealed` with the first configured source whose key fits.
pub fn unlock(sealed: &SealedVault, cfg: &Config) -> Result<Vault, UnlockError> {
    let mut attempts = Vec::new();
    for &kind in &cfg.order {
        let key = match kind {
            SourceKind::File => source::file(cfg),
            other => Err(format!("{other} source not available in this build")),
        };
        match key.map(|k| sealed.open(&k)) {
            Ok(Ok(vault)) => return Ok(vault),
            Ok(Err(Error::NoMatchingKey { .. })) => attempts.push(Attempt {
                source: kind,
                why: "its key does not open this vault".into(),
            }),
            Ok(Err(e)) => return Err(UnlockError::Vault(e)),
            Err(why) => attempts.push(Attempt { source: kind, why }),
        }
    }
    Err(UnlockError::NoKey(attempts))
}
