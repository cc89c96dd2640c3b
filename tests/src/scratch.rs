//! A private temporary directory (mode 0700), removed on drop, with small
//! helpers for files and directories with exact modes and owners.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary directory with mode 0700, deleted (recursively) on drop.
///
/// Its name is all lowercase (`devc-test-<label>-<pid>-<nanos>-<n>`):
/// podman derives an image name from an `oci:` path, and image names must
/// be lowercase, so `tempfile`'s mixed-case names cannot be used there.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// Creates a fresh directory under the system temp dir; `label` (which
    /// should be lowercase) appears in its name to make leftovers
    /// recognizable.
    pub fn new(label: &str) -> Scratch {
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!(
                "devc-test-{label}-{}-{nanos:09}-{n}",
                std::process::id()
            ));
            match fs::create_dir(&path) {
                Ok(()) => {
                    set_mode(&path, 0o700);
                    return Scratch { path, keep: false };
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", path.display()),
            }
        }
        panic!(
            "could not create a unique temporary directory under {}",
            base.display()
        );
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/rel` (nothing is created).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates `path()/rel` (and parents) with `mode` on the last component.
    pub fn mkdir(&self, rel: impl AsRef<Path>, mode: u32) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        set_mode(&p, mode);
        p
    }

    /// Writes `contents` to `path()/rel` (creating parents) with `mode`.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        set_mode(&p, mode);
        p
    }

    /// Keeps the directory on disk (for debugging a failure) and returns it.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if fs::remove_dir_all(&self.path).is_err() {
            // A test may have left a directory without write permission.
            let _ = make_writable(&self.path);
            if let Err(e) = fs::remove_dir_all(&self.path) {
                eprintln!("warning: could not remove {}: {e}", self.path.display());
            }
        }
    }
}

fn make_writable(p: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        fs::set_permissions(
            p,
            fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
        )?;
        for entry in fs::read_dir(p)? {
            let _ = make_writable(&entry?.path());
        }
    }
    Ok(())
}

/// chmod `p` to `mode`, panicking with the path on error.
pub fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", p.display()));
}

/// chown `p` to `uid:gid` (needs root), panicking with the path on error.
pub fn set_owner(p: &Path, uid: u32, gid: u32) {
    chown(p, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {uid}:{gid} {}: {e}", p.display()));
}

/// chown `p` and everything under it to `uid:gid` (symlinks not followed).
pub fn set_owner_recursive(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    if fs::symlink_metadata(p)?.is_dir() {
        for entry in fs::read_dir(p)? {
            set_owner_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
