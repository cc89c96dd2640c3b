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

/// A clap usage error as one line: what is wrong, clap's tip if it has one,
/// the usage of the command it was for, and where to read more. Help and
/// version requests are not errors and are left to clap.
pub fn usage_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut what = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error:")
        .trim()
        .to_string();
    let (mut items, mut tips, mut usage) = (Vec::new(), Vec::new(), None);
    for line in lines {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
        } else if let Some(t) = line.strip_prefix("tip:") {
            tips.push(t.trim().to_string());
        } else if !line.starts_with("For more information") {
            items.push(line.to_string());
        }
    }
    if !items.is_empty() {
        what = format!("{what} {}", items.join(", "));
    }
    for t in tips {
        what = format!("{what}; {t}");
    }
    match usage {
        Some(u) => format!("{what}; usage: {u}; see --help"),
        None => format!("{what}; see --help"),
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::usage_line;

    #[test]
    fn usage_errors_are_one_line() {
        let cmd = || {
            Command::new("t")
                .arg(Arg::new("server").long("server").required(true))
                .arg(Arg::new("username").long("username").required(true))
        };
        let err = cmd().try_get_matches_from(["t"]).unwrap_err();
        let line = usage_line(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("--server <server>, --username <username>"),
            "{line}"
        );
        assert!(line.ends_with("; see --help"), "{line}");
        let err = cmd()
            .try_get_matches_from(["t", "--serve", "x"])
            .unwrap_err();
        let line = usage_line(&err);
        assert!(
            line.contains("a similar argument exists: '--server'"),
            "{line}"
        );
        assert!(line.contains("usage: t --server <server>"), "{line}");
    }
}
