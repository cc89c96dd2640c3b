//! A vault on disk: bounded reads, and locked, atomic read-modify-writes.
//!
//! Rotate replaces key files in an order that survives a crash at any
//! point: the new secret goes to `K.next`, then the vault is replaced, then
//! `K.next` is renamed over `K`. Between the last two steps only `K.next`
//! opens the vault; [`keyfile::read_for`] falls back to it (and completes
//! the rename), so no reader is ever locked out.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file;
use crate::format::{self, Key, MAX_FILE_LEN, SealedVault};
use crate::keyfile;
use crate::lock::WriteLock;
use crate::secret::{KeySecret, Passphrase};
use crate::vault::{RotateKeys, Rotated, Vault};

/// A vault file path and the operations on it.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    key_file: Option<PathBuf>,
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
        Store {
            path: path.into(),
            key_file: None,
        }
    }

    /// The same store, whose writers finish what an interrupted rotate left
    /// at `key_file` (see [`keyfile::settle`]) when they take the lock.
    pub fn with_key_file(mut self, key_file: impl Into<PathBuf>) -> Store {
        self.key_file = Some(key_file.into());
        self
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the vault file; at most `MAX_FILE_LEN` bytes are
    /// read. A symbolic link, a FIFO or anything else but a regular file at
    /// the vault's path is refused, without blocking.
    pub fn read(&self) -> Result<SealedVault> {
        let (file, meta) = match file::open_regular(&self.path, false, "vault") {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::VaultNotFound {
                    path: self.path.clone(),
                });
            }
            Err(Error::Io { source, .. }) => {
                return Err(Error::io("read vault", &self.path, source));
            }
            Err(e) => return Err(e),
        };
        let len = meta.len();
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

    /// Takes the write lock, then removes what killed writers left and
    /// finishes an interrupted rotate of the key file, if one is known.
    fn lock(&self) -> Result<WriteLock> {
        let lock = WriteLock::acquire(&self.path)?;
        file::remove_stale_temps(&self.path);
        if let Some(k) = &self.key_file {
            file::remove_stale_temps(k);
            file::remove_stale_temps(&pending_key_path(k));
            if let Ok(sealed) = self.read() {
                // Best effort: a read-only key directory (a container's
                // mounted secret) keeps K.next, which readers use anyway.
                let _ = keyfile::settle(k, &sealed);
            }
        }
        Ok(lock)
    }

    /// Writes a new vault; refuses to replace an existing file.
    pub fn create(&self, vault: &Vault) -> Result<()> {
        let bytes = vault.seal()?;
        file::create_private_dir(&file::parent_dir(&self.path))?;
        let _lock = self.lock()?;
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
        let _lock = self.lock()?;
        let sealed = self.read()?;
        let mut vault = unlock(&sealed)?;
        let out = modify(&mut vault)?;
        if vault.is_changed() {
            let bytes = vault.seal()?;
            file::replace(&self.path, &bytes)?;
        }
        Ok(out)
    }

    /// Rotates the master key (see [`Vault::rotate`]) and gives each of
    /// `key_files` a new secret. The key files are read under the vault's
    /// lock (so concurrent rotates take turns, each with the keys on disk),
    /// after finishing a rotate a crash interrupted. `passphrases` keep
    /// their values. Returns, for each key file, whether it opened a slot
    /// and got a new secret.
    pub fn rotate(
        &self,
        key_files: &[PathBuf],
        passphrases: Vec<Passphrase>,
        drop_locked: bool,
    ) -> Result<Rotated> {
        if !self.path.exists() {
            return Err(Error::VaultNotFound {
                path: self.path.clone(),
            });
        }
        let _lock = self.lock()?;
        let sealed = self.read()?;
        let mut secrets: Vec<KeySecret> = Vec::new();
        for path in key_files {
            file::remove_stale_temps(path);
            file::remove_stale_temps(&pending_key_path(path));
            keyfile::settle(path, &sealed)?;
            secrets.push(keyfile::read(path)?);
        }
        let mut vault = open_with(&sealed, &secrets, &passphrases)?;
        let keys = RotateKeys {
            secrets,
            passphrases,
        };
        let rotated = vault.rotate(&keys, drop_locked)?;
        let bytes = vault.seal()?;

        let mut pending = Vec::new();
        for (path, new) in key_files.iter().zip(&rotated.new_secrets) {
            if let Some(new) = new {
                let next = pending_key_path(path);
                let tmp = file::write_temp_beside(&next, keyfile::render(new).as_bytes())?;
                file::commit_temp(&tmp, &next)?;
                pending.push((next, path.clone(), new));
            }
        }
        file::replace(&self.path, &bytes)?;
        for (next, path, new) in pending {
            match fs::rename(&next, &path) {
                Ok(()) => file::fsync_dir(&file::parent_dir(&path))?,
                // A reader that found only K.next opening the vault may have
                // completed the rename already.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && keyfile::read(&path).is_ok_and(|k| k.expose() == new.expose()) => {}
                Err(e) => return Err(Error::io("replace key file", &path, e)),
            }
        }
        Ok(rotated)
    }
}

/// Opens `sealed` with the first of these keys that opens it.
fn open_with(
    sealed: &SealedVault,
    secrets: &[KeySecret],
    passphrases: &[Passphrase],
) -> Result<Vault> {
    let mut last = Error::NoMatchingKey { hint: None };
    let keys = secrets
        .iter()
        .cloned()
        .map(Key::Secret)
        .chain(passphrases.iter().cloned().map(Key::Passphrase));
    for key in keys {
        match sealed.open(&key) {
            Ok(v) => return Ok(v),
            Err(e @ Error::NoMatchingKey { .. }) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
