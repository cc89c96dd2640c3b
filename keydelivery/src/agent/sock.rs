//! The agent's sockets and their directories: the container-facing one (a
//! directory of its own, holding that one socket), the owner endpoint and
//! the cache (in the private runtime directory); stale-socket replacement,
//! never stealing a live one.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::AgentStartError;
use crate::endpoint::{self, socket_dir};
use crate::environment;

/// The identity of the socket file we bound, so shutdown removes only ours
/// (a newer agent may have replaced it meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketIdent {
    dev: u64,
    ino: u64,
    // Inode numbers are reused at once on tmpfs; the change time tells a
    // replacement apart.
    ctime: (i64, i64),
}

impl SocketIdent {
    fn of(path: &Path) -> Option<SocketIdent> {
        fs::symlink_metadata(path).ok().map(|m| SocketIdent {
            dev: m.dev(),
            ino: m.ino(),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

fn dir_error(path: &Path, reason: String) -> AgentStartError {
    AgentStartError::SocketDir {
        path: path.to_path_buf(),
        reason,
    }
}

/// Prepares the directory a container mounts: created 0700 (0711 when
/// `others_enter`, so an `--allow-uid` user may reach the socket); an
/// existing one must be a real directory of ours that nobody else can write
/// to, must not be (or be inside) the private runtime directory, and must
/// hold nothing but the socket `name`.
pub fn prepare_facing_dir(
    dir: &Path,
    name: &str,
    others_enter: bool,
) -> Result<(), AgentStartError> {
    let mode = if others_enter { 0o711 } else { 0o700 };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| dir_error(dir, format!("cannot create it: {e}")))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(|e| dir_error(dir, format!("cannot chmod it: {e}")))?;
        }
        Err(e) => return Err(dir_error(dir, format!("cannot inspect it: {e}"))),
        Ok(m) if others_enter && m.is_dir() && m.mode() & 0o011 != 0o011 => {
            if m.uid() == environment::uid() {
                let _ = fs::set_permissions(
                    dir,
                    fs::Permissions::from_mode((m.mode() & 0o700) | 0o011),
                );
            }
        }
        Ok(_) => {}
    }
    endpoint::check_facing_dir(dir, environment::uid())
        .map_err(|e| dir_error(dir, e.to_string()))?;
    let private = environment::private_runtime_dir();
    if let (Ok(d), Ok(p)) = (dir.canonicalize(), private.canonicalize())
        && (d.starts_with(&p) || p.starts_with(&d))
    {
        return Err(dir_error(
            dir,
            format!(
                "it is (or holds) your private runtime directory {}, which a container must never see; use a directory of its own such as {}",
                private.display(),
                environment::agent_dir().display()
            ),
        ));
    }
    let others: Vec<String> = fs::read_dir(dir)
        .map_err(|e| dir_error(dir, format!("cannot list it: {e}")))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != name)
        .collect();
    if !others.is_empty() {
        return Err(dir_error(
            dir,
            format!(
                "it holds other files ({}); the directory a container mounts must hold only the agent's socket: give --socket a directory of its own",
                others.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Binds the socket at `path` with `mode`, replacing a stale one left by a
/// dead agent and refusing to steal one a live agent answers on. The
/// directory must have been prepared.
pub fn bind(path: &Path, mode: u32) -> Result<(UnixListener, SocketIdent), AgentStartError> {
    let io_err = |op: &'static str| {
        move |source| AgentStartError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(AgentStartError::AlreadyRunning {
                    path: path.to_path_buf(),
                });
            }
            // Nobody listens: a dead agent's leftover.
            Err(_) => fs::remove_file(path).map_err(io_err("remove stale socket"))?,
        },
        Ok(_) => {
            return Err(AgentStartError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect socket")(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err("bind"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod socket"))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("configure socket"))?;
    let ident = SocketIdent::of(path)
        .ok_or_else(|| io_err("inspect socket")(io::ErrorKind::NotFound.into()))?;
    Ok((listener, ident))
}

/// Binds a socket in a private directory (the owner endpoint, the cache).
pub fn bind_private(path: &Path) -> Result<(UnixListener, SocketIdent), AgentStartError> {
    let dir = socket_dir(path);
    endpoint::ensure_private_dir(&dir).map_err(|e| dir_error(&dir, e.to_string()))?;
    bind(path, 0o600)
}

/// Removes the socket if it is still the one we bound.
pub fn remove_if_ours(path: &PathBuf, ident: SocketIdent) {
    if SocketIdent::of(path) == Some(ident) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facing_dir_is_made_private_and_must_hold_only_the_socket() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("a/b");
        prepare_facing_dir(&d, "agent.sock", false).expect("creates");
        assert_eq!(fs::metadata(&d).expect("meta").mode() & 0o777, 0o700);
        prepare_facing_dir(&d, "agent.sock", true).expect("opens for search");
        assert_eq!(fs::metadata(&d).expect("meta").mode() & 0o777, 0o711);
        fs::write(d.join("cache.sock"), b"").expect("write");
        let e = prepare_facing_dir(&d, "agent.sock", true)
            .expect_err("another file")
            .to_string();
        assert!(
            e.contains("cache.sock") && e.contains("only the agent's socket"),
            "{e}"
        );
        fs::remove_file(d.join("cache.sock")).expect("rm");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = prepare_facing_dir(&d, "agent.sock", false)
            .expect_err("world-writable")
            .to_string();
        assert!(e.contains("0777"), "{e}");
    }

    #[test]
    fn stale_socket_replaced_live_one_kept() {
        let t = tempfile::tempdir().expect("tempdir");
        let sock = t.path().join("agent.sock");
        let (l, ident) = bind(&sock, 0o600).expect("bind");
        let e = bind(&sock, 0o600).expect_err("live agent");
        assert!(matches!(e, AgentStartError::AlreadyRunning { .. }), "{e}");
        drop(l); // the socket file stays: now stale
        let (_l2, ident2) = bind(&sock, 0o600).expect("replaces stale");
        remove_if_ours(&sock, ident);
        assert!(sock.exists(), "must not remove another agent's socket");
        remove_if_ours(&sock, ident2);
        assert!(!sock.exists());
        fs::write(&sock, b"x").expect("write");
        assert!(matches!(
            bind(&sock, 0o600),
            Err(AgentStartError::NotASocket { .. })
        ));
    }
}
