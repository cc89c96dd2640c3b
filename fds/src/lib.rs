//! Inherited file descriptors: the one place devc-vault uses `unsafe`.
//!
//! Rust's I/O safety rightly gives no safe way to take a descriptor by
//! number. Two jobs need one: a detached passphrase cache closes what it
//! inherited (a pipe its starter's caller left open would keep that caller
//! waiting until the cache exits), and `--passphrase-fd N` reads the
//! descriptor it was handed (reopening `/proc/self/fd/N` fails on sockets,
//! re-reads files from offset 0, and is refused across a uid change). Each
//! is one small block with its argument for why it is sound.

use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;

/// Whether this process has descriptor `fd` open (from /proc, no syscall on `fd`).
fn is_open(fd: RawFd) -> bool {
    Path::new(&format!("/proc/self/fd/{fd}"))
        .symlink_metadata()
        .is_ok()
}

/// Closes every descriptor above 2; returns how many. Call it first thing
/// in a process that was started to live on alone (the passphrase cache),
/// before it opens anything of its own or starts a thread.
pub fn close_inherited() -> io::Result<usize> {
    // Collect first: reading /proc/self/fd holds a descriptor of its own,
    // closed when the iterator is dropped (so it is skipped below).
    let inherited: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd > 2)
        .collect();
    let mut closed = 0;
    for fd in inherited {
        if !is_open(fd) {
            continue;
        }
        #[allow(unsafe_code)]
        // SAFETY: `fd` is above 2 and open (checked just above). This runs
        // at the start of a process started to live on alone, before it has
        // opened a file, made a descriptor or started a thread: no owner in
        // it (an `OwnedFd`, a `File`, std's internals) holds `fd`, which was
        // inherited across exec, so closing it invalidates no handle.
        unsafe {
            rustix::io::close(fd);
        }
        closed += 1;
    }
    Ok(closed)
}

/// Takes descriptor `fd`, handed to this process for reading (as
/// `--passphrase-fd N`), as a [`File`] of its own: a duplicate sharing the
/// open file (its offset included), so a socket, a pipe, or a file already
/// partly read all work. `fd` itself stays open.
pub fn take(fd: RawFd) -> io::Result<File> {
    if fd < 0 || !is_open(fd) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("file descriptor {fd} is not open"),
        ));
    }
    #[allow(unsafe_code)]
    // SAFETY: `fd` was just found open, and the borrow lives only for the
    // `try_clone_to_owned` call right after it, which makes a descriptor of
    // our own: nothing in this process closes `fd` meanwhile (the CLI takes
    // it once, at start, on its main thread).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(File::from(borrowed.try_clone_to_owned()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn take_reads_from_the_current_offset_of_a_file_and_from_a_socket() {
        let mut f = tempfile_in_tmp();
        f.write_all(b"first\nsecond\n").expect("write");
        f.rewind().expect("rewind");
        let mut line = [0u8; 6];
        f.read_exact(&mut line).expect("read");
        let mut rest = String::new();
        take(f.as_raw_fd())
            .expect("take")
            .read_to_string(&mut rest)
            .expect("read");
        assert_eq!(rest, "second\n");

        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.write_all(b"over a socket").expect("write");
        drop(a);
        let mut got = String::new();
        take(b.as_raw_fd())
            .expect("take")
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "over a socket");
        assert!(take(9999).is_err());
        assert!(take(-1).is_err());
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("devc-fds-test-{}", std::process::id()));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open");
        let _ = std::fs::remove_file(&path);
        f
    }
}
