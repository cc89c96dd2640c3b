//! The writer lock: an exclusive `flock` on a sidecar file beside the vault
//! (`.credentials.enc.lock`), held for a whole read-modify-write. Readers do
//! not lock: renames make every read see one complete version.
//!
//! The lock file is opened without following a symlink (in a directory a
//! container may write to, a planted link must not make the host create a
//! file elsewhere) and must be a regular file; the wait is bounded, and the
//! holder writes its pid into the file so a waiter can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file::FILE_MODE;

/// How long a writer waits for another writer's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

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

/// `pid N (program)` from a lock file's content, if it names a live process.
fn holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    let pid: u32 = text.trim().strip_prefix("pid ")?.parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("pid {pid} ({})", comm.trim()))
}

impl WriteLock {
    /// Takes the vault's write lock, waiting at most [`LOCK_WAIT`].
    pub fn acquire(vault: &Path) -> Result<WriteLock> {
        Self::acquire_within(vault, LOCK_WAIT)
    }

    /// Takes the vault's write lock, waiting at most `wait`.
    pub fn acquire_within(vault: &Path, wait: Duration) -> Result<WriteLock> {
        let path = lock_path(vault);
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(flags.bits() as i32)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(Error::NotAFile {
                    path,
                    what: "lock file",
                    found: "a symbolic link",
                });
            }
            Err(e) => return Err(Error::io("open lock file", &path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("inspect lock file", &path, e))?;
        if !meta.is_file() {
            return Err(Error::NotAFile {
                path,
                what: "lock file",
                found: "not a regular file",
            });
        }
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::LockTimeout {
                        holder: holder(&mut file),
                        path,
                        waited: wait.as_secs(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
        }
        // Say who holds it, for a waiter's message; nothing secret.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "pid {}", std::process::id()));
        Ok(WriteLock { _file: file })
    }
}
