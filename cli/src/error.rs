//! The CLI's errors: each prints as one line a user can act on.

use std::fmt;

use devc_keydelivery::{ConfigError, UnlockError};

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The vault or a key file refused the operation.
    Vault(devc_vault::Error),
    /// No key source could open the vault.
    Unlock(UnlockError),
    /// Bad arguments or input, with what to do instead.
    Usage(String),
    /// Reading input (a secret, a passphrase) failed.
    Input(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Vault(e) => write!(f, "{e}"),
            CliError::Unlock(e) => write!(f, "{e}"),
            CliError::Usage(m) | CliError::Input(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl From<devc_vault::Error> for CliError {
    fn from(e: devc_vault::Error) -> Self {
        CliError::Vault(e)
    }
}

impl From<UnlockError> for CliError {
    fn from(e: UnlockError) -> Self {
        match e {
            UnlockError::Vault(v) => CliError::Vault(v),
            UnlockError::NoVault(path) => {
                CliError::Vault(devc_vault::Error::VaultNotFound { path })
            }
            other => CliError::Unlock(other),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Unlock(UnlockError::Config(e))
    }
}

/// The CLI's result type.
pub type CliResult<T = ()> = Result<T, CliError>;
