//! Asking another docker credential helper (`docker-credential-<name>`), as
//! the docker CLI does, with a deadline and never ourselves: `get` for the
//! helper's chaining to the container's previous `credsStore` and for
//! importing the host's credentials, `list` for finding every server a
//! host's `credsStore` holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_keydelivery::child::{self, ChildError};
use devc_keydelivery::environment;

use super::protocol::{self, Credentials, HELPER_NAME, NOT_FOUND};
use crate::io::MAX_INPUT;

/// How long a chained helper may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

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
///
/// An answer with an empty user name and an empty secret is not a
/// credential: Debian's `docker-credential-pass` 0.6.4 answers a server it
/// does not hold that way, with exit 0, and the docker CLI then pulls
/// anonymously.
pub fn get(name: &str, server_url: &str, timeout: Duration, self_exe: Option<&Path>) -> Answer {
    if environment::docker_chained() {
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
    let out = match run(&path, "get", Some(server_url.as_bytes()), timeout) {
        Ok(out) => out,
        Err(why) => return Answer::Failed(format!("{program} {why}")),
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim() == NOT_FOUND {
            return Answer::NotFound;
        }
        return Answer::Failed(format!("{program} get failed ({})", out.status));
    }
    match protocol::parse_credentials(&out.stdout) {
        Ok(c) if c.username.is_empty() && c.secret.expose().is_empty() => Answer::NotFound,
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

/// Runs `docker-credential-<name> list` (no stdin) and returns the servers it
/// holds credentials for, each with its user name. Errors are one line
/// naming the helper (never its output).
pub fn list(
    name: &str,
    timeout: Duration,
    self_exe: Option<&Path>,
) -> Result<BTreeMap<String, String>, String> {
    let program = format!("docker-credential-{name}");
    let path = resolve(name, self_exe)?
        .ok_or_else(|| format!("{program} is not on PATH; install it or fix credsStore"))?;
    let out = run(&path, "list", None, timeout).map_err(|why| format!("{program} {why}"))?;
    if !out.status.success() {
        return Err(format!("{program} list failed ({})", out.status));
    }
    serde_json::from_slice::<BTreeMap<String, String>>(&out.stdout)
        .map_err(|_| format!("{program} list answered something that is not a server list"))
}

/// Runs the helper at `path` with `verb`, with [`ENV_DOCKER_CHAINED`](environment::ENV_DOCKER_CHAINED)
/// set so it cannot chain back, its stderr discarded (we do not trust what
/// it prints), and a deadline.
fn run(
    path: &Path,
    verb: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<child::Output, String> {
    // The path checked by `resolve` is the one run.
    let mut cmd = Command::new(path);
    cmd.arg(verb)
        .env(environment::ENV_DOCKER_CHAINED, "1")
        .stderr(Stdio::null());
    child::run(cmd, stdin, MAX_INPUT, timeout).map_err(|e| match e {
        ChildError::Spawn(e) => format!("could not start: {e}"),
        e => e.to_string(),
    })
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
