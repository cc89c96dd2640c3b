//! How devc-vault reads and writes its files. Writes are crash-safe: a temp
//! file in the same directory, fsync, rename over the target, fsync the
//! directory, so a reader sees the old file or the new one, never a mixture;
//! a writer (holding the vault's lock) removes the temp files of writers
//! killed before their rename. Reads open without following a symlink and
//! without blocking on a FIFO, and accept only regular files.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::primitives::random;

/// Mode of every file devc-vault writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory devc-vault creates.
pub const DIR_MODE: u32 = 0o700;

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and missing parents with mode 0700; existing ones are left alone.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))
}

/// Flushes a directory's entries (a completed rename) to disk.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

/// What a path that is not a regular file is, for a message.
fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading: never blocking on a FIFO, and, unless
/// `follow`, not following a symbolic link at its last component. Anything
/// but a regular file is refused with [`Error::NotAFile`].
pub fn open_regular(path: &Path, follow: bool, what: &'static str) -> Result<(File, Metadata)> {
    let mut flags = rustix::fs::OFlags::NONBLOCK;
    if !follow {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink fails with ELOOP.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                what,
                found: "a symbolic link",
            });
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            what,
            found: kind_of(&meta),
        });
    }
    Ok((file, meta))
}

/// Removes the temp files that writers of `target` killed before their
/// rename left beside it (`.<name>.tmp-*`). Call it holding the lock that
/// serializes those writers.
pub fn remove_stale_temps(target: &Path) {
    let dir = parent_dir(target);
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix)
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to a fresh 0600 temp file beside `target` and fsyncs it;
/// returns the temp path. The caller renames it into place.
pub fn write_temp_beside(target: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        crate::hex::encode(&random::<8>())
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write temporary file", &tmp, e));
    }
    Ok(tmp)
}

/// Renames `tmp` over `target` and fsyncs the directory.
pub fn commit_temp(tmp: &Path, target: &Path) -> Result<()> {
    if let Err(e) = fs::rename(tmp, target) {
        let _ = fs::remove_file(tmp);
        return Err(Error::io("replace", target, e));
    }
    fsync_dir(&parent_dir(target))
}

/// Atomically replaces (or creates) `target` with `bytes`, mode 0600.
pub fn replace(target: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp_beside(target, bytes)?;
    commit_temp(&tmp, target)
}

/// Atomically creates `target` with `bytes`, failing if it already exists.
///
/// The temp file is hard-linked into place, so the check and the creation are
/// one step and a concurrent creator cannot be overwritten.
pub fn create_new(target: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp_beside(target, bytes)?;
    let linked = fs::hard_link(&tmp, target);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => fsync_dir(&parent_dir(target)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
            path: target.to_path_buf(),
        }),
        Err(e) => Err(Error::io("create", target, e)),
    }
}
