//! A vault on disk: bounded reads, and locked, atomic read-modify-writes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file;
use crate::format::{self, MAX_FILE_LEN, SealedVault};
use crate::keyfile;
use crate::lock::WriteLock;
use crate::secret::KeySecret;
use crate::vault::{RotateKeys, Rotated, Vault};

/// A vault file path and the operations on it.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
}

/// A key file taking part in a rotate: its path and current secret.
#[derive(Debug)]
pub struct RotateKeyFile {
    /// Where the key file lives; it is rewritten with the new secret.
    pub path: PathBuf,
    /// Its current secret.
    pub secret: KeySecret,
}

/// The name of the pending key file a rotate writes before the vault.
pub fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().unwrap_or_default().to_os_string();
    name.push(".next");
    key_file.with_file_name(name)
}

impl Store {
    /// A store at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the vault file; at most `MAX_FILE_LEN` bytes are read.
    pub fn read(&self) -> Result<SealedVault> {
        let file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::VaultNotFound {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(Error::io("read vault", &self.path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io("read vault", &self.path, e))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(Error::Oversized {
                what: "vault file",
                size: len,
                cap: MAX_FILE_LEN,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read vault", &self.path, e))?;
        format::parse_owned(bytes)
    }

    /// Writes a new vault; refuses to replace an existing file.
    pub fn create(&self, vault: &Vault) -> Result<()> {
        let bytes = vault.seal()?;
        file::create_private_dir(&file::parent_dir(&self.path))?;
        let _lock = WriteLock::acquire(&self.path)?;
        file::create_new(&self.path, &bytes)
    }

    /// Locked read-modify-write: read, `unlock`, `modify`, then, if `modify`
    /// changed anything ([`Vault::is_changed`]), seal and replace atomically.
    ///
    /// Nothing is written if any step fails, or if nothing changed (a
    /// mounted vault may be read-only, and git calls `store` after every
    /// fetch with the credential it already got).
    pub fn update<T, E>(
        &self,
        unlock: impl FnOnce(&SealedVault) -> std::result::Result<Vault, E>,
        modify: impl FnOnce(&mut Vault) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        // A missing vault is reported as such, before a lock file is made beside it.
        if !self.path.exists() {
            return Err(Error::VaultNotFound {
                path: self.path.clone(),
            }
            .into());
        }
        let _lock = WriteLock::acquire(&self.path)?;
        let sealed = self.read()?;
        let mut vault = unlock(&sealed)?;
        let out = modify(&mut vault)?;
        if vault.is_changed() {
            let bytes = vault.seal()?;
            file::replace(&self.path, &bytes)?;
        }
        Ok(out)
    }

    /// Rotates the master key (see `Vault::rotate`) and replaces each key
    /// file's secret. Order, for crash safety: new secrets go to `K.next`,
    /// then the vault is replaced, then each `K.next` is renamed over `K`.
    /// A crash in between leaves `K.next`, which opens the new vault.
    pub fn rotate<E: From<Error>>(
        &self,
        unlock: impl FnOnce(&SealedVault) -> std::result::Result<Vault, E>,
        key_files: &[RotateKeyFile],
        passphrases: Vec<crate::Passphrase>,
        drop_locked: bool,
    ) -> std::result::Result<Rotated, E> {
        let _lock = WriteLock::acquire(&self.path)?;
        let sealed = self.read()?;
        let mut vault = unlock(&sealed)?;
        let keys = RotateKeys {
            secrets: key_files.iter().map(|k| k.secret.clone()).collect(),
            passphrases,
        };
        let rotated = vault.rotate(&keys, drop_locked)?;
        let bytes = vault.seal()?;

        let mut pending = Vec::new();
        for (kf, new) in key_files.iter().zip(&rotated.new_secrets) {
            if let Some(new) = new {
                let next = pending_key_path(&kf.path);
                let tmp = file::write_temp_beside(&next, keyfile::render(new).as_bytes())?;
                file::commit_temp(&tmp, &next)?;
                pending.push((next, kf.path.clone()));
            }
        }
        file::replace(&self.path, &bytes)?;
        for (next, path) in pending {
            fs::rename(&next, &path).map_err(|e| Error::io("replace key file", &path, e))?;
            file::fsync_dir(&file::parent_dir(&path))?;
        }
        Ok(rotated)
    }
}
