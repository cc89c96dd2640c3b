//! How devc-vault writes its files (crash-safe replacement): write a temp file in the same directory,
//! fsync it, rename it over the target, fsync the directory. A reader sees
//! the old file or the new one, never a mixture.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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
