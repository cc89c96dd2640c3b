//! How a CLI command gets the key: `--passphrase-fd` first, then an explicit
//! `--key-file`, then the same resolution the helpers use.

use std::path::PathBuf;

use devc_keydelivery::Config;
use devc_vault::{Key, KeySecret, Passphrase, RotateKeys, SealedVault, Vault, keyfile};

use crate::Global;
use devc_keydelivery::prompt::Tty;
use devc_keydelivery::source::prompt_and_unwrap;
use devc_vault::MasterKey;

use crate::error::{CliError, CliResult};
use crate::input;

/// The keys named on the command line. The passphrase is read once; the key
/// file is read for each vault version it must open (under the vault's lock
/// when writing), falling back to the `K.next` an interrupted rotate left.
#[derive(Debug)]
pub struct Keys {
    /// From `--passphrase-fd`.
    pub passphrase: Option<Passphrase>,
    /// From `--key-file` (or `DEVC_VAULT_KEY_FILE`).
    pub key_file: Option<PathBuf>,
}

impl Keys {
    /// Reads the passphrase fd and checks the key file, if given.
    pub fn load(g: &Global) -> CliResult<Keys> {
        let passphrase = g.passphrase_fd.map(input::passphrase_from_fd).transpose()?;
        let key_file = match &g.key_file {
            // Refused early (unreadable, open mode, malformed) unless a
            // passphrase is the key; `K.next` stands in for a missing K.
            Some(p) if passphrase.is_none() => {
                if let Err(e) = keyfile::read(p)
                    && keyfile::read(&devc_vault::pending_key_path(p)).is_err()
                {
                    return Err(e.into());
                }
                Some(p.clone())
            }
            Some(p) => keyfile::read(p).is_ok().then(|| p.clone()),
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
        if let Some(path) = &self.key_file {
            // An explicit key file is the only source: its own error is the useful one.
            let k = keyfile::read_for(path, sealed)?;
            return sealed.open(&Key::Secret(k)).map_err(|e| match e {
                devc_vault::Error::NoMatchingKey { .. } => devc_vault::Error::NoMatchingKey {
                    hint: Some(format!("{} does not open this vault", path.display())),
                }
                .into(),
                other => other.into(),
            });
        }
        let cfg = Config::load().map_err(devc_keydelivery::UnlockError::from)?;
        Ok(devc_keydelivery::unlock(sealed, &cfg)?)
    }

    /// The key files (the global one and `extra`) that open `sealed`, and
    /// the passphrase: the keys a slot removal re-makes the remaining slots with.
    pub fn for_rekey(&self, extra: &[PathBuf], sealed: &SealedVault) -> CliResult<RotateKeys> {
        let mut secrets: Vec<KeySecret> = Vec::new();
        for p in self.key_file.iter().chain(extra) {
            secrets.push(keyfile::read_for(p, sealed)?);
        }
        Ok(RotateKeys {
            secrets,
            passphrases: self.passphrase.iter().cloned().collect(),
        })
    }
}

/// The vault's master key from its passphrase: read from `--passphrase-fd`,
/// else asked on the terminal (three tries), and checked against the whole
/// vault before it is handed to an agent or a cache.
pub fn master_from_passphrase(g: &Global, sealed: &SealedVault) -> CliResult<MasterKey> {
    let vmk = match g.passphrase_fd {
        Some(fd) => sealed.unwrap_master(&Key::Passphrase(input::passphrase_from_fd(fd)?))?,
        None => {
            let mut tty = Tty::open().ok_or_else(|| {
                CliError::Input(
                    "no terminal to ask for the passphrase on; use --passphrase-fd N".into(),
                )
            })?;
            prompt_and_unwrap(&mut tty, sealed).map_err(|e| CliError::Input(e.to_string()))?
        }
    };
    sealed.open_with_master(vmk.clone())?;
    Ok(vmk)
}

/// Opens a sealed vault for a CLI command (reads the keys named on the command line).
pub fn open(sealed: &SealedVault, g: &Global) -> CliResult<Vault> {
    Keys::load(g)?.open(sealed)
}
