//! The agent's socket: a private directory (0700, refusing one with
//! group/other bits, as git's credential-cache daemon does), stale-socket
//! replacement, and the SO_PEERCRED check.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::AgentStartError;

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

/// Creates the socket directory 0700, or checks an existing one: a real
/// directory (not a symlink), owned by us or an allowed uid, with no
/// group/other permission bits.
pub fn prepare_dir(dir: &Path, owners: &[u32]) -> Result<(), AgentStartError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| dir_error(dir, format!("cannot create it: {e}")))?;
            // The umask may have removed bits but never adds any; set exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| dir_error(dir, format!("cannot chmod it: {e}")))?;
            check_dir(dir, owners)
        }
        Err(e) => Err(dir_error(dir, format!("cannot inspect it: {e}"))),
        Ok(_) => check_dir(dir, owners),
    }
}

fn check_dir(dir: &Path, owners: &[u32]) -> Result<(), AgentStartError> {
    let m =
        fs::symlink_metadata(dir).map_err(|e| dir_error(dir, format!("cannot inspect it: {e}")))?;
    if m.file_type().is_symlink() {
        return Err(dir_error(
            dir,
            "it is a symlink; use the real directory".into(),
        ));
    }
    if !m.is_dir() {
        return Err(dir_error(dir, "it is not a directory".into()));
    }
    if !owners.contains(&m.uid()) {
        return Err(dir_error(
            dir,
            format!(
                "it is owned by uid {}, not by this user or an --allow-uid uid",
                m.uid()
            ),
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(dir_error(
            dir,
            format!(
                "it has mode {mode:04o}, so group or others can reach the socket; run `chmod 700 {}`",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Binds the socket, replacing a stale one left by a dead agent and
/// refusing to steal one a live agent answers on.
pub fn bind(
    path: &Path,
    owners: &[u32],
    mode: u32,
) -> Result<(UnixListener, SocketIdent), AgentStartError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| dir_error(path, "the socket path has no directory".into()))?;
    prepare_dir(dir, owners)?;
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
    let ident = SocketIdent::of(path)
        .ok_or_else(|| io_err("inspect socket")(io::ErrorKind::NotFound.into()))?;
    Ok((listener, ident))
}

/// Removes the socket if it is still the one we bound.
pub fn remove_if_ours(path: &PathBuf, ident: SocketIdent) {
    if SocketIdent::of(path) == Some(ident) {
        let _ = fs::remove_file(path);
    }
}

/// The connecting process's uid and pid, from the kernel (SO_PEERCRED).
pub fn peer(stream: &UnixStream) -> io::Result<(u32, i32)> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    Ok((cred.uid.as_raw(), cred.pid.as_raw_nonzero().get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        crate::environment::uid()
    }

    #[test]
    fn creates_private_dir_and_refuses_open_ones() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("a/b");
        prepare_dir(&d, &[me()]).expect("creates");
        assert_eq!(fs::metadata(&d).expect("meta").mode() & 0o777, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = prepare_dir(&d, &[me()])
            .expect_err("0755 refused")
            .to_string();
        assert!(e.contains("0755") && e.contains("chmod 700"), "{e}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).expect("chmod");
        let e = prepare_dir(&d, &[me().wrapping_add(1)])
            .expect_err("owner refused")
            .to_string();
        assert!(e.contains("owned by uid"), "{e}");
    }

    #[test]
    fn stale_socket_replaced_live_one_kept() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("s");
        let sock = dir.join("agent.sock");
        let (l, ident) = bind(&sock, &[me()], 0o600).expect("bind");
        let e = bind(&sock, &[me()], 0o600).expect_err("live agent");
        assert!(matches!(e, AgentStartError::AlreadyRunning { .. }), "{e}");
        drop(l); // the socket file stays: now stale
        let (_l2, ident2) = bind(&sock, &[me()], 0o600).expect("replaces stale");
        remove_if_ours(&sock, ident);
        assert!(sock.exists(), "must not remove another agent's socket");
        remove_if_ours(&sock, ident2);
        assert!(!sock.exists());
        fs::write(&sock, b"x").expect("write");
        assert!(matches!(
            bind(&sock, &[me()], 0o600),
            Err(AgentStartError::NotASocket { .. })
        ));
    }
}
