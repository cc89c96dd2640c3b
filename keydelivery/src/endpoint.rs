//! Who is at the other end of a socket, checked before any key material
//! moves either way, and the directories the sockets live in.
//!
//! Two kinds of endpoint:
//! - **private**: the passphrase cache and an agent's owner endpoint, in the
//!   user's private runtime directory (never mounted into a container). The
//!   directory must be a real directory owned by this user with no
//!   group/other bits, and the peer must run as this user.
//! - **container-facing**: an agent's one socket that a container mounts.
//!   Its directory must be a real directory owned by the uid the peer runs
//!   as (the agent), writable by nobody else; search permission for others
//!   is allowed (a container user of another uid must reach the socket; the
//!   agent checks that uid itself with SO_PEERCRED).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::environment;

/// What a socket is for, which decides the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The cache or an owner endpoint: this user's, in a private directory.
    Private,
    /// An agent's socket as a container sees it.
    ContainerFacing,
}

/// Why an endpoint or its directory was refused. Says what to do.
#[derive(Debug)]
pub enum EndpointError {
    /// The directory is unsafe (symlink, foreign owner, open mode).
    Directory {
        /// The directory.
        dir: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The process serving the socket is not who it should be.
    Peer {
        /// The socket.
        socket: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An OS error while checking.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Directory { dir, reason } => {
                write!(f, "refusing directory {}: {reason}", dir.display())
            }
            EndpointError::Peer { socket, reason } => {
                write!(f, "refusing {}: {reason}", socket.display())
            }
            EndpointError::Io { path, source } => {
                write!(f, "cannot check {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for EndpointError {}

fn dir_error(dir: &Path, reason: String) -> EndpointError {
    EndpointError::Directory {
        dir: dir.to_path_buf(),
        reason,
    }
}

/// The directory holding a socket path.
pub fn socket_dir(socket: &Path) -> PathBuf {
    match socket.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks a private directory: a real directory (not a symlink), owned by
/// this user, with no group/other permission bits. Another user who created
/// it first (a squatted `/tmp/devc-vault-<uid>`) is refused, never used.
pub fn check_private_dir(dir: &Path) -> Result<(), EndpointError> {
    let m = fs::symlink_metadata(dir).map_err(|source| EndpointError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let me = environment::uid();
    if m.file_type().is_symlink() || !m.is_dir() {
        return Err(dir_error(
            dir,
            "it is not a real directory; remove it, or set XDG_RUNTIME_DIR to a private directory"
                .into(),
        ));
    }
    if m.uid() != me {
        return Err(dir_error(
            dir,
            format!(
                "it belongs to uid {}, not to you (uid {me}): another user may have created it to watch your use of the vault; remove it, or set XDG_RUNTIME_DIR to a private directory",
                m.uid()
            ),
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(dir_error(
            dir,
            format!(
                "it has mode {mode:04o}, so others can reach it; run `chmod 700 {}`",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Creates a private directory (0700, parents as needed) unless it exists,
/// then checks it ([`check_private_dir`]), so a directory another user
/// created in between is refused.
pub fn ensure_private_dir(dir: &Path) -> Result<(), EndpointError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let made = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
            match made {
                Ok(()) => {
                    // The umask may have removed bits but never adds any; set exactly.
                    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(EndpointError::Io {
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            }
        }
        Err(source) => {
            return Err(EndpointError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
        Ok(_) => {}
    }
    check_private_dir(dir)
}

/// Checks a container-facing socket's directory against the uid that
/// serves the socket: a real directory, owned by that uid, writable by no
/// one else.
pub fn check_facing_dir(dir: &Path, server_uid: u32) -> Result<(), EndpointError> {
    let m = fs::symlink_metadata(dir).map_err(|source| EndpointError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if m.file_type().is_symlink() || !m.is_dir() {
        return Err(dir_error(dir, "it is not a real directory".into()));
    }
    if m.uid() != server_uid {
        return Err(dir_error(
            dir,
            format!(
                "it belongs to uid {}, but the agent serving it runs as uid {server_uid}; someone else may have planted the socket",
                m.uid()
            ),
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o066 != 0 {
        return Err(dir_error(
            dir,
            format!(
                "it has mode {mode:04o}: others may read or replace what is in it (only search permission may be given to others); run `chmod 700 {}` (or 711 for an --allow-uid user)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The uid (from the kernel: SO_PEERCRED) and pid of the process at the
/// other end of `stream`. The pid is 0 when the peer is in another pid
/// namespace (a host agent seen from a container).
pub fn peer(stream: &UnixStream) -> io::Result<(u32, i32)> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok((cred.uid(), cred.pid()))
}

/// Checks who serves `socket` (connected as `stream`) before key material
/// is sent to it or accepted from it.
pub fn verify(stream: &UnixStream, socket: &Path, trust: Trust) -> Result<(), EndpointError> {
    let (uid, _) = peer(stream).map_err(|source| EndpointError::Io {
        path: socket.to_path_buf(),
        source,
    })?;
    let dir = socket_dir(socket);
    match trust {
        Trust::Private => {
            let me = environment::uid();
            if uid != me {
                return Err(EndpointError::Peer {
                    socket: socket.to_path_buf(),
                    reason: format!("it is served by uid {uid}, not by you (uid {me})"),
                });
            }
            check_private_dir(&dir)
        }
        Trust::ContainerFacing => check_facing_dir(&dir, uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_made_0700_and_open_or_linked_ones_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("a/b");
        ensure_private_dir(&d).expect("creates");
        assert_eq!(fs::metadata(&d).expect("meta").mode() & 0o777, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = ensure_private_dir(&d).expect_err("0755").to_string();
        assert!(e.contains("0755") && e.contains("chmod 700"), "{e}");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).expect("symlink");
        let e = check_private_dir(&link).expect_err("symlink").to_string();
        assert!(e.contains("not a real directory"), "{e}");
    }

    #[test]
    fn facing_dirs_must_belong_to_the_server_and_be_unwritable_by_others() {
        let t = tempfile::tempdir().expect("tempdir");
        let me = environment::uid();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o711)).expect("chmod");
        check_facing_dir(t.path(), me).expect("0711 is fine");
        let e = check_facing_dir(t.path(), me.wrapping_add(1))
            .expect_err("other owner")
            .to_string();
        assert!(e.contains("belongs to uid"), "{e}");
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o733)).expect("chmod");
        let e = check_facing_dir(t.path(), me)
            .expect_err("writable")
            .to_string();
        assert!(e.contains("0733"), "{e}");
    }
}
