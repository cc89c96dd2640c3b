//! The `key_command` source: an external secret-manager CLI prints the key
//! file's content on stdout. Run without a shell, stdin closed, under a time
//! limit; its exit status is checked and its output is never logged.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use devc_vault::{KeySecret, keyfile};

/// Output cap: a key file line and a little slack; more is not a key.
const MAX_OUTPUT: u64 = 4096;

/// Why the command gave no key.
#[derive(Debug)]
pub enum CommandError {
    /// It could not be started.
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It ran past the time limit and was killed.
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        limit: Duration,
    },
    /// It exited unsuccessfully.
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// Its output is not a key file (the reason names no content).
    Malformed {
        /// The program.
        program: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Spawn { program, source } => {
                write!(f, "key_command {program:?} could not start: {source}")
            }
            CommandError::Timeout { program, limit } => {
                write!(
                    f,
                    "key_command {program:?} timed out after {}s",
                    limit.as_secs()
                )
            }
            CommandError::Failed { program, status } => {
                write!(f, "key_command {program:?} failed ({status})")
            }
            CommandError::Malformed { program, reason } => {
                write!(f, "key_command {program:?} printed no valid key: {reason}")
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// Runs `argv` and parses its stdout as a key file. `quiet` discards its
/// stderr (the git helper must stay silent); otherwise it reaches the user.
pub fn run(argv: &[String], timeout: Duration, quiet: bool) -> Result<KeySecret, CommandError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(argv.iter().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .map_err(|source| CommandError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    // A grandchild may keep the pipe open after the command exits: read in
    // a thread and stop waiting at the deadline.
    thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_OUTPUT as usize + 1));
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::Timeout {
                    program,
                    limit: timeout,
                });
            }
        }
    };
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let Ok(out) = rx.recv_timeout(left) else {
        return Err(CommandError::Timeout {
            program,
            limit: timeout,
        });
    };
    if !status.success() {
        return Err(CommandError::Failed { program, status });
    }
    if out.len() as u64 > MAX_OUTPUT {
        return Err(CommandError::Malformed {
            program,
            reason: "output too long",
        });
    }
    keyfile::parse(&out).map_err(|reason| CommandError::Malformed { program, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn reads_a_key_and_checks_status_timeout_and_form() {
        let k = KeySecret::generate();
        let text = keyfile::render(&k);
        let got = run(
            &sh(&format!("printf '%s' '{}'", text.as_str())),
            Duration::from_secs(5),
            true,
        )
        .expect("key");
        assert_eq!(got.expose(), k.expose());
        let e = run(
            &sh(&format!("printf '%s' '{}'; exit 3", text.as_str())),
            Duration::from_secs(5),
            true,
        )
        .expect_err("exit 3");
        assert!(matches!(e, CommandError::Failed { .. }), "{e}");
        let e = run(&sh("sleep 5"), Duration::from_millis(200), true).expect_err("timeout");
        assert!(matches!(e, CommandError::Timeout { .. }), "{e}");
        let e = run(&sh("echo hunter2"), Duration::from_secs(5), true).expect_err("malformed");
        assert!(!e.to_string().contains("hunter2"), "output leaked: {e}");
        let e = run(
            &["/nonexistent/secret-tool".into()],
            Duration::from_secs(5),
            true,
        )
        .expect_err("spawn");
        assert!(matches!(e, CommandError::Spawn { .. }), "{e}");
    }
}
