//! Importing on the host: ask the host's own git for a credential
//! (`git credential fill`, through whatever helpers the host configured) so
//! that `devc-vault seal git` can put it in a vault.

use std::process::{Command, Stdio};
use std::time::Duration;

use devc_helper::git::protocol;
use devc_helper::io::MAX_INPUT;
use devc_keydelivery::child;
use devc_vault::{GitEntry, Source};

/// [`Source::kind`] of an entry the host's git answered.
pub const KIND_GIT: &str = "git";
/// Its [`Source::from`].
pub const FROM_FILL: &str = "git credential fill";

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
/// the credential git's configured helpers answered, with its [`Source`].
/// Errors never carry it.
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

    let mut cmd = Command::new(git);
    cmd.args(["credential", "fill"])
        // Never a prompt: not on the terminal, not through an askpass program.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .stderr(Stdio::null());
    let out = child::run(cmd, Some(request.as_bytes()), MAX_INPUT, FILL_TIMEOUT)
        .map_err(|e| format!("git credential fill {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the host's git has no credential for {}://{} (its helpers answered nothing and prompts are off)",
            q.protocol, q.host
        ));
    }
    let out = out.stdout;
    let got = protocol::parse_request(&out).map_err(|e| format!("git answered: {e}"))?;
    let (Some(username), Some(password)) = (got.username, got.password) else {
        return Err("git answered without a username and password".into());
    };
    Ok(GitEntry::new(&q.protocol, &q.host, username, password)
        .with_path(q.path.clone())
        .with_expiry(got.password_expiry_utc)
        .with_refresh_token(got.oauth_refresh_token)
        .with_source(Source::new(KIND_GIT, FROM_FILL, devc_vault::now())))
}
