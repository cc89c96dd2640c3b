//! The `key_command` source: an external secret-manager CLI prints the key
//! file's content on stdout. Run without a shell, stdin closed, under a time
//! limit; its exit status is checked and its output is never logged.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault::{KeySecret, keyfile};

use crate::child::{self, ChildError};

/// Output cap: a key file line and a little slack; more is not a key.
const MAX_OUTPUT: usize = 4096;

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
    let mut cmd = Command::new(&program);
    cmd.args(argv.iter().skip(1)).stderr(if quiet {
        Stdio::null()
    } else {
        Stdio::inherit()
    });
    let out = match child::run(cmd, None, MAX_OUTPUT, timeout) {
        Ok(out) => out,
        Err(ChildError::Spawn(source)) => return Err(CommandError::Spawn { program, source }),
        Err(ChildError::TooMuchOutput(_)) => {
            return Err(CommandError::Malformed {
                program,
                reason: "output too long",
            });
        }
        Err(_) => {
            return Err(CommandError::Timeout {
                program,
                limit: timeout,
            });
        }
    };
    if !out.status.success() {
        return Err(CommandError::Failed {
            program,
            status: out.status,
        });
    }
    keyfile::parse(&out.stdout).map_err(|reason| CommandError::Malformed { program, reason })
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
