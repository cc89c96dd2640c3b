//! Running another program with a deadline: the one way devc-vault does it
//! (the `key_command` source, the docker helper's chaining, importing from
//! the host's helpers and git). The child gets its own process group, so a
//! kill at the deadline also reaches anything it started; its output is
//! read into a capped buffer that is wiped on drop.

use std::fmt;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use devc_vault::{ReadCappedError, read_capped};
use zeroize::Zeroizing;

/// What the child printed and how it ended.
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout (may hold a secret: wiped on drop).
    pub stdout: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("status", &self.status)
            .field("stdout", &format_args!("[{} bytes]", self.stdout.len()))
            .finish()
    }
}

/// Why a child gave no output.
#[derive(Debug)]
pub enum ChildError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It (or something holding its stdout) ran past the deadline and was killed.
    Timeout(Duration),
    /// It printed more than the cap.
    TooMuchOutput(usize),
    /// Reading its output or waiting for it failed.
    Io(std::io::Error),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Spawn(e) => write!(f, "could not start: {e}"),
            ChildError::Timeout(d) => write!(f, "did not answer within {}s", d.as_secs_f32()),
            ChildError::TooMuchOutput(cap) => write!(f, "printed more than {cap} bytes"),
            ChildError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ChildError {}

/// Runs `cmd` with `stdin` (or `/dev/null`), reads at most `cap` bytes of
/// its stdout, and kills its process group if it (or a descendant holding
/// the pipe) is not done by `timeout`. Set stderr on `cmd` beforehand
/// (it defaults to inherited).
pub fn run(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    cap: usize,
    timeout: Duration,
) -> Result<Output, ChildError> {
    let deadline = Instant::now() + timeout;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(ChildError::Spawn)?;
    let group = rustix::process::Pid::from_child(&child);
    let kill = |child: &mut std::process::Child| {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = child.kill();
        let _ = child.wait();
    };
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = Zeroizing::new(data.to_vec());
        // A child that exits without reading its input gives EPIPE: not an error here.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        thread::spawn(move || {
            let _ = tx.send(read_capped(&mut out, cap));
        });
    }
    let output = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(buf)) => buf,
        Ok(Err(ReadCappedError::TooLarge)) => {
            kill(&mut child);
            return Err(ChildError::TooMuchOutput(cap));
        }
        Ok(Err(ReadCappedError::Io(e))) => {
            kill(&mut child);
            return Err(ChildError::Io(e));
        }
        Err(_) => {
            kill(&mut child);
            return Err(ChildError::Timeout(timeout));
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(Output {
                    status,
                    stdout: output,
                });
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                kill(&mut child);
                return Err(ChildError::Timeout(timeout));
            }
            Err(e) => {
                kill(&mut child);
                return Err(ChildError::Io(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]).stderr(Stdio::null());
        c
    }

    #[test]
    fn output_status_stdin_and_cap() {
        let out = run(
            sh("cat; exit 3"),
            Some(b"hello"),
            100,
            Duration::from_secs(5),
        )
        .expect("runs");
        assert_eq!(
            (&out.stdout[..], out.status.code()),
            (&b"hello"[..], Some(3))
        );
        let e = run(
            sh("head -c 200 /dev/zero"),
            None,
            100,
            Duration::from_secs(5),
        )
        .expect_err("cap");
        assert!(matches!(e, ChildError::TooMuchOutput(100)), "{e}");
        let e = run(
            Command::new("/nonexistent/x"),
            None,
            100,
            Duration::from_secs(5),
        )
        .expect_err("spawn");
        assert!(matches!(e, ChildError::Spawn(_)), "{e}");
    }

    #[test]
    fn a_slow_child_or_a_grandchild_holding_the_pipe_is_killed_at_the_deadline() {
        for script in ["sleep 30", "(sleep 30 &) ; echo started"] {
            let t = Instant::now();
            let e = run(sh(script), None, 100, Duration::from_millis(300)).expect_err(script);
            assert!(matches!(e, ChildError::Timeout(_)), "{script}: {e}");
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{script}: {:?}",
                t.elapsed()
            );
        }
    }
}
