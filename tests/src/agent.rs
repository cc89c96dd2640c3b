//! A background server a test starts on a unix socket (a `devc-vault
//! agent`, or the probe playing a squatter), waited for until it accepts
//! connections, and always killed and reaped on drop.

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::process;

/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// Spawns `cmd` with stderr to `log`, and waits up to [`START_TIMEOUT`]
    /// for `socket` to accept a connection; panics (with the log) if the
    /// process exits or never listens.
    #[track_caller]
    pub fn spawn(cmd: Command, socket: &Path, log: &Path) -> Agent {
        Agent::spawn_with_stdin(cmd, socket, log, None)
    }

    /// [`Agent::spawn`], writing `stdin` (e.g. a passphrase for
    /// `--passphrase-fd 0`) to its standard input, then closing it.
    #[track_caller]
    pub fn spawn_with_stdin(
        mut cmd: Command,
        socket: &Path,
        log: &Path,
        stdin: Option<&[u8]>,
    ) -> Agent {
        let log_file = fs::File::create(log).expect("create agent log");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(log_file);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", process::render(&cmd)));
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).expect("write agent stdin");
        }
        let mut agent = Agent {
            child,
            socket: socket.to_path_buf(),
            log: log.to_path_buf(),
        };
        let up = process::wait_for(START_TIMEOUT, || {
            UnixStream::connect(socket).is_ok() || matches!(agent.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && agent.running(),
            "agent did not start; log:\n{}",
            agent.log()
        );
        agent
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1).
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
        assert!(st.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// Waits up to `t` for it to exit; its exit status if it did.
    pub fn wait_exit(&mut self, t: Duration) -> Option<ExitStatus> {
        let mut status = None;
        process::wait_for(t, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of the processes holding a listening unix socket bound at
/// `path` (from `/proc/net/unix` and each process's fd links). Finds a
/// server that nothing in the test holds a handle to, such as the
/// passphrase cache a helper starts detached.
pub fn listeners(path: &Path) -> Vec<u32> {
    let Ok(table) = fs::read_to_string("/proc/net/unix") else {
        return Vec::new();
    };
    let want = path.to_string_lossy();
    // Columns: Num RefCount Protocol Flags Type St Inode Path.
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 8 && cols[7] == want).then(|| format!("socket:[{}]", cols[6]))
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| {
                    fs::read_link(fd.path())
                        .is_ok_and(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
                })
            })
        })
        .collect()
}
