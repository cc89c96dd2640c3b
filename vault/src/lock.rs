//! The writer lock: an exclusive `flock` on a sidecar file beside the vault
//! (`.credentials.enc.lock`), held for a whole read-modify-write. Readers do
//! not lock: renames make every read see one complete version.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file::FILE_MODE;

/// An exclusive lock on a vault; released on drop.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

/// The sidecar lock path for a vault path.
pub fn lock_path(vault: &Path) -> PathBuf {
    let mut name = vault.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    vault.with_file_name(name)
}

impl WriteLock {
    /// Blocks until this process holds the vault's write lock.
    pub fn acquire(vault: &Path) -> Result<WriteLock> {
        let path = lock_path(vault);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(WriteLock { _file: file })
    }
}
