//! Crashing a command at a chosen system call with `strace` (Debian's
//! `strace`): trace a full run to learn its system calls, then run it again
//! with `-e inject=NAME:signal=SIGKILL:when=N`, which kills it on entering
//! the N-th call of NAME, before that call does anything.
//!
//! strace counts `when=` for each system call (and each traced thread)
//! separately, so "the k-th system call of the run" is named as the pair
//! (its name, how many calls of that name the thread had made by then):
//! [`Call::name`] and [`Call::nth`]. A run that makes the same calls in the
//! same order is killed at exactly that point; [`Killed::at`] says where
//! the kill landed, read back from the killed run's own trace.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Outcome};
use crate::tools;

/// Limit for one traced run.
pub const TRACE_TIMEOUT: Duration = Duration::from_secs(60);

/// One system call of a traced run, in the order the process made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The thread that made it.
    pub pid: u32,
    /// The system call's name, as strace spells it (`openat`, `rename`).
    pub name: String,
    /// 1-based: this is the `nth` call of `name` by this thread.
    pub nth: usize,
    /// The trace line, for messages.
    pub line: String,
}

/// The `strace` executable.
#[derive(Debug, Clone)]
pub struct Strace {
    path: PathBuf,
}

/// A run killed before a system call.
#[derive(Debug)]
pub struct Killed {
    /// How the run ended.
    pub outcome: Outcome,
    /// The last call the killed run entered (where the kill landed), if
    /// it was killed by SIGKILL.
    pub at: Option<Call>,
}

impl Strace {
    /// Finds strace, or reports it missing ([`tools::require_tool`]).
    #[track_caller]
    pub fn available() -> Option<Strace> {
        let path = tools::require_tool(
            "strace",
            "kills a command before each of its system calls (apt: strace)",
        )?;
        Some(Strace { path })
    }

    /// `strace -f -qq -o LOG [EXTRA...] -- PROGRAM ARGS`, with `cmd`'s
    /// environment changes.
    fn wrap(&self, cmd: &Command, log: &Path, extra: &[&str]) -> Command {
        let mut s = Command::new(&self.path);
        s.args(["-f", "-qq", "-o"]).arg(log).args(extra).arg("--");
        s.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => s.env(k, v),
                None => s.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            s.current_dir(dir);
        }
        s
    }

    /// Runs `cmd` to the end under strace; its outcome and its calls.
    pub fn trace(&self, cmd: &Command, stdin: Option<&[u8]>, log: &Path) -> (Outcome, Vec<Call>) {
        let mut s = self.wrap(cmd, log, &[]);
        let out = process::run(&mut s, stdin, TRACE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        (out, calls(log))
    }

    /// Runs `cmd` under strace, which sends it SIGKILL on entering `call`
    /// (its `nth` call of that name, in any thread).
    pub fn kill_before(
        &self,
        cmd: &Command,
        call: &Call,
        stdin: Option<&[u8]>,
        log: &Path,
    ) -> Killed {
        let inject = format!("inject={}:signal=SIGKILL:when={}", call.name, call.nth);
        let mut s = self.wrap(cmd, log, &["-e", &inject]);
        let outcome = process::run(&mut s, stdin, TRACE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        // strace ends the way its tracee did: by the same signal.
        let killed = outcome.status.and_then(|s| s.signal()) == Some(9);
        let at = if killed { calls(log).pop() } else { None };
        Killed { outcome, at }
    }
}

/// Parses an `strace -f -o` log (lines `PID name(args) = result`) into the
/// calls made, numbering each name per thread. Signals, exits and the
/// second halves of interrupted calls (`<... name resumed>`) are skipped.
pub fn calls(log: &Path) -> Vec<Call> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut seen: std::collections::HashMap<(u32, String), usize> = Default::default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let Some((name, _)) = rest.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let n = seen.entry((pid, name.to_owned())).or_insert(0);
        *n += 1;
        out.push(Call {
            pid,
            name: name.to_owned(),
            nth: *n,
            line: line.to_owned(),
        });
    }
    out
}

/// The index of the first call named `name` whose line contains `needle`
/// (e.g. the `openat` of the lock file).
pub fn find(calls: &[Call], name: &str, needle: impl AsRef<OsStr>) -> Option<usize> {
    let needle = needle.as_ref().to_string_lossy();
    calls
        .iter()
        .position(|c| c.name == name && c.line.contains(needle.as_ref()))
}
