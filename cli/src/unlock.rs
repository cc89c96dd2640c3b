//! How a CLI command gets the key: `--passphrase-fd` first, then an explicit
//! `--key-file`, then the same resolution the helpers use.

use std::path::PathBuf;

use devc_keydelivery::Config;
use devc_vault::{Key, KeySecret, Passphrase, SealedVault, Vault, keyfile};

use crate::Global;
use crate::error::CliResult;
use crate::input;

/// The keys named on the command line, each read exactly once.
#[derive(Debug)]
pub struct Keys {
    /// From `--passphrase-fd`.
    pub passphrase: Option<Passphrase>,
    /// From `--key-file` (or `DEVC_VAULT_KEY_FILE`).
    pub key_file: Option<(PathBuf, KeySecret)>,
}

impl Keys {
    /// Reads the passphrase fd and the key file, if given.
    pub fn load(g: &Global) -> CliResult<Keys> {
        let passphrase = g.passphrase_fd.map(input::passphrase_from_fd).transpose()?;
        let key_file = match &g.key_file {
            Some(p) if passphrase.is_none() => Some((p.clone(), keyfile::read(p)?)),
            Some(p) => keyfile::read(p).ok().map(|k| (p.clone(), k)),
            None => None,
        };
        Ok(Keys {
            passphrase,
            key_file,
        })
    }

    /// Opens a sealed vault with these keys, or else the configured sources.
    pub fn open(&self, sealed: &SealedVault) -> CliResult<Vault> {
        if let Some(p) = &self.passphrase {
            return Ok(sealed.open(&Key::Passphrase(p.clone()))?);
        }
        if let Some((path, k)) = &self.key_file {
            // An explicit key file is the only source: its own error is the useful one.
            return sealed.open(&Key::Secret(k.clone())).map_err(|e| match e {
                devc_vault::Error::NoMatchingKey { .. } => devc_vault::Error::NoMatchingKey {
                    hint: Some(rotate_hint(path)),
                }
                .into(),
                other => other.into(),
            });
        }
        let cfg = Config::load().map_err(devc_keydelivery::UnlockError::from)?;
        Ok(devc_keydelivery::unlock(sealed, &cfg)?)
    }
}

/// Opens a sealed vault for a CLI command (reads the keys named on the command line).
pub fn open(sealed: &SealedVault, g: &Global) -> CliResult<Vault> {
    Keys::load(g)?.open(sealed)
}

fn rotate_hint(path: &std::path::Path) -> String {
    let next = devc_vault::pending_key_path(path);
    if next.exists() {
        format!(
            "an interrupted rotate left {}: move it over {}",
            next.display(),
            path.display()
        )
    } else {
        format!("{} does not open this vault", path.display())
    }
}
