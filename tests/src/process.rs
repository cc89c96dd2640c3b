//! Running external commands with a deadline, captured output and a kill on
//! overrun. Every helper in this crate that starts a short-lived process goes
//! through [`run`], so no test can hang on a stuck client.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for one external command in test support.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished (or killed) command produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// A human-readable rendering of the command line, for messages.
    pub command: String,
    /// Exit status; `None` only if the process could not be reaped.
    pub status: Option<ExitStatus>,
    /// Everything read from stdout.
    pub stdout: Vec<u8>,
    /// Everything read from stderr.
    pub stderr: Vec<u8>,
    /// The process overran its deadline and was killed.
    pub timed_out: bool,
    /// The process exited but something it started still held stdout or
    /// stderr open at the deadline (a caller reading the pipes would hang).
    pub stdio_held_open: bool,
    /// Wall-clock time from spawn to the end of output collection.
    pub elapsed: Duration,
}

impl Outcome {
    /// The exit code, if the process exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Exited with status 0, in time, and closed its output.
    pub fn success(&self) -> bool {
        !self.timed_out && !self.stdio_held_open && self.status.is_some_and(|s| s.success())
    }

    /// Stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// A multi-line description with command, status, stdout and stderr.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {:?} timed_out: {} stdio_held_open: {} elapsed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status,
            self.timed_out,
            self.stdio_held_open,
            self.elapsed,
            self.stdout_str(),
            self.stderr_str()
        )
    }

    /// Panics with [`Outcome::describe`] unless [`Outcome::success`].
    #[track_caller]
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(self.success(), "{what} failed\n{}", self.describe());
        self
    }
}

/// `cmd` under `setsid --wait`: no controlling terminal, so nothing prompts.
pub fn without_terminal(cmd: &Command) -> Command {
    let mut wrapped = Command::new("setsid");
    wrapped
        .arg("--wait")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// Renders a command line for diagnostics (program and arguments, lossy).
pub fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, feeding `stdin` (or `/dev/null` when `None`),
/// capturing stdout and stderr, and killing its whole process group if it
/// takes longer than `timeout`. The command is started in its own process
/// group so that a kill also reaches anything it spawned in the foreground.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> io::Result<Outcome> {
    let from = if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    run_from(cmd, from, stdin, timeout)
}

/// [`run`] with `stdin` as the command's standard input as it is (a file
/// already partly read, one end of a socket pair).
pub fn run_with_stdin(cmd: &mut Command, stdin: Stdio, timeout: Duration) -> io::Result<Outcome> {
    run_from(cmd, stdin, None, timeout)
}

fn run_from(
    cmd: &mut Command,
    from: Stdio,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Outcome> {
    let command = render(cmd);
    cmd.stdin(from)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let deadline = start + timeout;
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("spawning `{command}`: {e}")))?;

    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A child that exits without reading its input gives EPIPE; ignore it.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }

    let (tx, rx) = mpsc::channel::<()>();
    let stdout_buf = spawn_reader(child.stdout.take(), tx.clone());
    let stderr_buf = spawn_reader(child.stderr.take(), tx);

    let (status, timed_out) = wait_until(&mut child, deadline)?;

    // Collect output: both readers report EOF, or we give up at the deadline
    // (plus a short grace when the process itself was killed).
    let read_deadline = if timed_out {
        Instant::now() + Duration::from_secs(2)
    } else {
        deadline
    };
    let mut eofs = 0;
    while eofs < 2 {
        let left = read_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => eofs += 1,
            Err(_) => break,
        }
    }
    let stdio_held_open = eofs < 2 && !timed_out;
    if stdio_held_open {
        // Whatever still holds the pipes was started by the child, in its
        // process group: don't leave it running.
        kill_group(child.id());
    }
    let take = |b: &Arc<Mutex<Vec<u8>>>| b.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(Outcome {
        command,
        status,
        stdout: take(&stdout_buf),
        stderr: take(&stderr_buf),
        timed_out,
        stdio_held_open,
        elapsed: start.elapsed(),
    })
}

/// [`run`], panicking (with full diagnostics) unless the command succeeds.
#[track_caller]
pub fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration, what: &str) -> Outcome {
    let out = run(cmd, stdin, timeout).unwrap_or_else(|e| panic!("{what}: {e}"));
    out.assert_success(what);
    out
}

fn spawn_reader<R: Read + Send + 'static>(
    pipe: Option<R>,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&buf);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Ok(mut v) = out.lock() {
                            v.extend_from_slice(&chunk[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let _ = done.send(());
    });
    buf
}

/// Polls `child` until it exits or `deadline` passes; on overrun kills its
/// process group and reaps it. Returns (status, timed_out).
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<(Option<ExitStatus>, bool)> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((Some(status), false));
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            let status = child.wait().ok();
            return Ok((status, true));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Sends SIGKILL to process group `pgid` (best effort, via kill(1), since
/// this crate forbids `unsafe` and so cannot call kill(2) directly).
pub fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `cond` every few milliseconds until it returns `true` or `timeout`
/// passes. Returns whether it became true.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
