//! The writer lock: an exclusive `flock` on a sidecar file beside the vault
//! (`.credentials.enc.lock`), held for a whole read-modify-write. Readers do
//! not lock: renames make every read see one complete version.
//!
//! The lock file is opened without following a symlink (in a directory a
//! container may write to, a planted link must not make the host create a
//! file elsewhere) and must be a regular file; the wait is bounded, and a
//! waiter that gives up names the holder: the process `/proc/locks` lists
//! for the file (any program, `flock(1)` too), else the pid a devc-vault
//! holder wrote into it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

/// `pid N (program)`: who holds the lock on `file`. The kernel says, in
/// `/proc/locks`, whoever it is (another devc-vault, `flock(1)`, a backup
/// tool); else the `pid N` a devc-vault holder wrote into the file, if that
/// process lives.
fn holder(file: &mut File) -> Option<String> {
    let pid = kernel_holder(file).or_else(|| written_holder(file))?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("pid {pid} ({})", comm.trim()))
}

/// The pid `/proc/locks` gives for a `flock` on `file`'s inode. Lines read
/// `1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF` (waiters have a `->`
/// after the number); the pid is 0 for a holder outside our pid namespace.
fn kernel_holder(file: &File) -> Option<u32> {
    let ino = file.metadata().ok()?.ino();
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let inode = format!(":{ino}");
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let holds = f.get(1) == Some(&"FLOCK") && f.get(5).is_some_and(|d| d.ends_with(&inode));
        let pid: u32 = f.get(4)?.parse().ok()?;
        (holds && pid != 0).then_some(pid)
    })
}

/// The pid a devc-vault holder wrote into the lock file, if it lives.
fn written_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    let pid: u32 = text.trim().strip_prefix("pid ")?.parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_names_the_holder_from_the_kernel() {
        let dir = tempfile::tempdir().expect("tmp");
        let vault = dir.path().join(".credentials.enc");
        let held = WriteLock::acquire(&vault).expect("first lock");
        // Whatever the file says, the kernel knows who holds it.
        std::fs::write(lock_path(&vault), "").expect("truncate");
        let err = WriteLock::acquire_within(&vault, Duration::from_millis(50))
            .expect_err("the lock is held");
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        match err {
            Error::LockTimeout { holder, .. } => assert_eq!(
                holder,
                Some(format!("pid {} ({})", std::process::id(), comm.trim()))
            ),
            other => panic!("{other}"),
        }
        drop(held);
        WriteLock::acquire_within(&vault, Duration::from_millis(50)).expect("released");
    }
}
