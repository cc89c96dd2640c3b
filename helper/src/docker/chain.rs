//! Chaining: when the vault has no credential for a registry, ask the helper
//! the container used before `devc-vault install` (its `credsStore`), with a
//! deadline, and never ourselves.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::protocol::{self, Credentials, HELPER_NAME, MAX_INPUT, NOT_FOUND};

/// How long a chained helper may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Set in a chained helper's environment; a helper that sees it does not
/// chain again, so two helpers pointing at each other cannot loop.
pub const ENV_CHAINED: &str = "DEVC_VAULT_DOCKER_CHAINED";

/// What the previous helper said.
#[derive(Debug)]
pub enum Answer {
    /// It had a credential.
    Found(Credentials),
    /// It had none (or chaining is not possible here).
    NotFound,
    /// It failed; why, for one stderr line (never its output, which we do not trust).
    Failed(String),
}

/// The executable to chain to for helper `name`: `Ok(None)` when it is not
/// installed here, `Err(why)` when it must not be run.
pub fn resolve(name: &str, self_exe: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("previous credsStore {name:?} is not a helper name"));
    }
    if name == HELPER_NAME {
        return Err("previous credsStore is this helper".into());
    }
    let Some(program) = find_on_path(&format!("docker-credential-{name}")) else {
        return Ok(None);
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    // A link to ourselves under another name would recurse (a copy is
    // stopped by ENV_CHAINED instead).
    if self_exe.is_some_and(|me| same(me, &program)) {
        return Err(format!("docker-credential-{name} is this helper"));
    }
    Ok(Some(program))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Runs `docker-credential-<name> get` with `server_url` on stdin, killing it
/// (and anything it started in its process group) after `timeout`.
pub fn get(name: &str, server_url: &str, timeout: Duration, self_exe: Option<&Path>) -> Answer {
    if std::env::var_os(ENV_CHAINED).is_some() {
        return Answer::NotFound;
    }
    let path = match resolve(name, self_exe) {
        Ok(Some(path)) => path,
        // A helper that is not installed here has no credentials: quietly
        // not found (configs copied from a host often name `desktop.exe`).
        Ok(None) => return Answer::NotFound,
        Err(why) => return Answer::Failed(why),
    };
    let program = format!("docker-credential-{name}");
    let deadline = Instant::now() + timeout;
    // The path checked above is the one run.
    let mut child = match Command::new(&path)
        .arg("get")
        .env(ENV_CHAINED, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Answer::Failed(format!("cannot run {program}: {e}")),
    };
    let pid = rustix::process::Pid::from_child(&child);
    let kill = || {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    };

    if let Some(mut stdin) = child.stdin.take() {
        let input = server_url.to_owned();
        // A helper that exits without reading gives EPIPE: not our problem.
        thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    let (out_tx, out_rx) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        thread::spawn(move || {
            // Capped, and grown without leaving freed copies of the answer.
            let _ = out_tx.send(protocol::read_input(&mut stdout));
        });
    }
    let (status_tx, status_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = status_tx.send(child.wait());
    });

    let left = || deadline.saturating_duration_since(Instant::now());
    let output = match out_rx.recv_timeout(left()) {
        Ok(Ok(buf)) => buf,
        Ok(Err(protocol::InputError::TooLarge)) => {
            kill();
            return Answer::Failed(format!("{program} answered more than {MAX_INPUT} bytes"));
        }
        Ok(Err(e)) => {
            kill();
            return Answer::Failed(format!("reading {program}'s answer failed: {e}"));
        }
        Err(_) => {
            kill();
            return Answer::Failed(format!("{program} did not answer within {timeout:?}"));
        }
    };
    let status = match status_rx.recv_timeout(left()) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Answer::Failed(format!("waiting for {program} failed: {e}")),
        Err(_) => {
            kill();
            return Answer::Failed(format!("{program} did not exit within {timeout:?}"));
        }
    };
    if !status.success() {
        let text = String::from_utf8_lossy(&output);
        if text.trim() == NOT_FOUND {
            return Answer::NotFound;
        }
        return Answer::Failed(format!("{program} get failed ({status})"));
    }
    match protocol::parse_credentials(&output) {
        Ok(mut c) => {
            // The reference client keeps the address it asked for.
            c.server_url = server_url.to_owned();
            Answer::Found(c)
        }
        Err(_) => Answer::Failed(format!(
            "{program} answered something that is not a credential"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_bad_names_and_ourselves() {
        for bad in ["", "../x", "a/b", "a b", "x\n"] {
            assert!(resolve(bad, None).is_err(), "{bad:?}");
        }
        assert_eq!(
            resolve(HELPER_NAME, None),
            Err("previous credsStore is this helper".into())
        );
        assert_eq!(resolve("surely-not-installed-anywhere", None), Ok(None));
    }

    #[test]
    fn a_missing_helper_is_quietly_not_found() {
        let a = get("surely-not-installed-anywhere", "h", DEFAULT_TIMEOUT, None);
        assert!(matches!(a, Answer::NotFound), "{a:?}");
    }
}
