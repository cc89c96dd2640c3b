//! A project's vault as a dev-container manager sees it: one vault file and
//! the key file that opens it, created together, refilled with a freshly
//! resolved set of host credentials in one atomic write, and rotated.

use std::path::{Path, PathBuf};

use crate::entry::{DockerEntry, GitEntry};
use crate::error::{Error, Result};
use crate::format::Key;
use crate::keyfile;
use crate::secret::KeySecret;
use crate::slot::SlotKind;
use crate::store::Store;
use crate::vault::Vault;

/// A vault opened by a key file, e.g. `~/.local/share/devc/<project>/.credentials.enc`
/// with `~/.config/devc/keys/<project>/devc-vault-key`.
#[derive(Clone, Debug)]
pub struct Project {
    store: Store,
    key_file: PathBuf,
}

impl Project {
    /// The project at these paths; nothing is read or created yet.
    pub fn new(vault: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Project {
        let key_file = key_file.into();
        Project {
            store: Store::new(vault).with_key_file(&key_file),
            key_file,
        }
    }

    /// The vault file.
    pub fn vault_path(&self) -> &Path {
        self.store.path()
    }

    /// The key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Creates whatever is missing: the key file (a fresh secret) and an
    /// empty vault with one key-file slot, both 0600 in 0700 directories.
    /// An existing vault must open with the key file. Returns whether the
    /// vault was created.
    pub fn ensure(&self) -> Result<bool> {
        let secret = if self.key_file.exists() {
            keyfile::read(&self.key_file)?
        } else if self.store.path().exists() {
            // A vault without its key would be replaced by a new one that
            // its old copies cannot tell apart: refuse instead.
            return Err(Error::MissingKeyFile {
                path: self.key_file.clone(),
            });
        } else {
            let s = KeySecret::generate();
            keyfile::create(&self.key_file, &s)?;
            s
        };
        if self.store.path().exists() {
            self.store.read()?.open(&Key::Secret(secret))?;
            return Ok(false);
        }
        let mut vault = Vault::create();
        vault.add_secret_slot(SlotKind::KeyFile, &secret)?;
        self.store.create(&vault)?;
        Ok(true)
    }

    /// Opens the vault (to read its entries).
    pub fn open(&self) -> Result<Vault> {
        let sealed = self.store.read()?;
        let key = Key::Secret(keyfile::read_for(&self.key_file, &sealed)?);
        sealed.open(&key)
    }

    /// Replaces every entry that came from the host with `docker` and `git`
    /// in one atomic write. Entries stored inside the container (`docker
    /// login` there) stay unless a new entry is for the same registry or
    /// git slot. Give each entry a [`crate::Source`] so that the next
    /// replace finds it again.
    pub fn replace(&self, docker: Vec<DockerEntry>, git: Vec<GitEntry>) -> Result<()> {
        self.store.update(
            |s| s.open(&Key::Secret(keyfile::read_for(&self.key_file, s)?)),
            |v| v.replace_host_entries(docker, git),
        )
    }

    /// Replaces the master key and the key file's secret. Copies of the old
    /// key file (and of the vault opened with it) open no later version.
    pub fn rotate(&self) -> Result<()> {
        self.store
            .rotate(std::slice::from_ref(&self.key_file), Vec::new(), false)?;
        Ok(())
    }
}
