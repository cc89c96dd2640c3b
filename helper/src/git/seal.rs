//! Sealing on the host: ask the host's own git for a credential
//! (`git credential fill`, through whatever helpers the host configured) so
//! that `devc-vault seal git` can put it in a vault.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devc_vault::GitEntry;
use zeroize::Zeroizing;

use super::protocol::{self, MAX_INPUT};

/// How long the host's `git credential fill` may take.
pub const FILL_TIMEOUT: Duration = Duration::from_secs(30);

/// What to ask git for.
#[derive(Debug, Clone)]
pub struct Query {
    /// Protocol, e.g. `https`.
    pub protocol: String,
    /// Host, with `:port` when not the default.
    pub host: String,
    /// Repository path, if the credential is per path.
    pub path: Option<String>,
    /// User name, if more than one is stored.
    pub username: Option<String>,
}

/// Runs `git credential fill` for `q` with every prompt disabled and returns
/// the credential git's configured helpers answered. Errors never carry it.
pub fn fill(git: &str, q: &Query) -> Result<GitEntry, String> {
    for (name, v) in [("protocol", Some(&q.protocol)), ("host", Some(&q.host))]
        .into_iter()
        .chain([("path", q.path.as_ref()), ("username", q.username.as_ref())])
    {
        if v.is_some_and(|v| v.contains(['\0', '\n'])) {
            return Err(format!("{name} contains a NUL or newline"));
        }
    }
    let mut request = format!("protocol={}\nhost={}\n", q.protocol, q.host);
    if let Some(p) = &q.path {
        request.push_str(&format!("path={p}\n"));
    }
    if let Some(u) = &q.username {
        request.push_str(&format!("username={u}\n"));
    }
    request.push('\n');

    let mut child = Command::new(git)
        .args(["credential", "fill"])
        // Never a prompt: not on the terminal, not through an askpass program.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {git}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request.as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or("no stdout from git")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::with_capacity(4096));
        let r = (&mut stdout)
            .take(MAX_INPUT as u64 + 1)
            .read_to_end(&mut buf);
        r.map(|_| buf)
    });
    let deadline = Instant::now() + FILL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "git credential fill did not answer within {FILL_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("waiting for git failed: {e}")),
        }
    };
    let out = reader
        .join()
        .map_err(|_| "reading git's answer failed".to_string())?
        .map_err(|e| format!("reading git's answer failed: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the host's git has no credential for {}://{} (its helpers answered nothing and prompts are off)",
            q.protocol, q.host
        ));
    }
    let got = protocol::parse_request(&out).map_err(|e| format!("git answered: {e}"))?;
    let (Some(username), Some(password)) = (got.username, got.password) else {
        return Err("git answered without a username and password".into());
    };
    Ok(GitEntry {
        protocol: q.protocol.clone(),
        host: q.host.clone(),
        path: q.path.clone(),
        username,
        password,
        password_expiry_utc: got.password_expiry_utc,
        oauth_refresh_token: got.oauth_refresh_token,
        created: 0,
        updated: 0,
        extra: Default::default(),
    })
}
