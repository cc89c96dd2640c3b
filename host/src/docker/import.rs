//! Importing on the host: resolve the registry credentials the host's docker
//! configuration already has (plain `auths`, identity tokens, `credHelpers`,
//! `credsStore`) so that `devc-vault seal docker` can put them in a vault.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devc_vault::{DockerEntry, Secret};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use devc_helper::docker::client::{self, Answer};
use devc_helper::docker::protocol::HELPER_NAME;
use devc_vault::registry;

/// How long one host helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Which registries to seal.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every registry the config names (`auths` and `credHelpers` keys).
    All,
    /// These registries, as the user wrote them.
    Only(Vec<String>),
}

/// Why sealing could not start. Messages name files and registries, never secrets.
#[derive(Debug)]
pub enum SealError {
    /// The config file could not be read or is not a JSON object.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to seal.
    Nothing(String),
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealError::Config { path, reason } => write!(f, "{}: {reason}", path.display()),
            SealError::Nothing(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SealError {}

/// What resolving found: the entries, and one line per registry that gave none.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Credentials to store.
    pub entries: Vec<DockerEntry>,
    /// Registries that gave nothing, each with why.
    pub missed: Vec<String>,
}

/// Reads `<dir>/config.json` and resolves the selected registries' credentials.
pub fn resolve(dir: &Path, selection: &Selection) -> Result<Resolved, SealError> {
    let path = dir.join("config.json");
    let bad = |reason: String| SealError::Config {
        path: path.clone(),
        reason,
    };
    let bytes = Zeroizing::new(fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?);
    let config: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a JSON object".into()))?;
    let auths = object(&config, "auths");
    let helpers = object(&config, "credHelpers");
    let store = config
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());

    let wanted: Vec<String> = match selection {
        Selection::Only(list) => list.clone(),
        Selection::All => {
            let mut all: Vec<String> = auths.keys().chain(helpers.keys()).cloned().collect();
            all.sort();
            all.dedup_by(|a, b| registry::same_entry(a, b));
            all
        }
    };
    if wanted.is_empty() {
        return Err(SealError::Nothing(format!(
            "{} names no registries; pass --registry HOST",
            path.display()
        )));
    }

    let mut out = Resolved::default();
    for registry in wanted {
        match resolve_one(&registry, &auths, &helpers, store) {
            Ok(entry) => out.entries.push(entry),
            Err(why) => out.missed.push(format!("{registry}: {why}")),
        }
    }
    Ok(out)
}

fn object(config: &Map<String, Value>, key: &str) -> Map<String, Value> {
    match config.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// The value of the first key in `map` that names the same registry as `registry`.
fn lookup<'a>(map: &'a Map<String, Value>, registry: &str) -> Option<&'a Value> {
    map.get(registry).or_else(|| {
        map.iter()
            .find(|(k, _)| registry::matches(registry, k).is_some())
            .map(|(_, v)| v)
    })
}

fn resolve_one(
    registry: &str,
    auths: &Map<String, Value>,
    helpers: &Map<String, Value>,
    store: Option<&str>,
) -> Result<DockerEntry, String> {
    // Docker's own order: a per-registry helper, then plain auths, then the store.
    if let Some(Value::String(helper)) = lookup(helpers, registry) {
        return from_helper(registry, helper);
    }
    if let Some(Value::Object(a)) = lookup(auths, registry)
        && let Some(entry) = super::config::plaintext_credential(registry, a)?
    {
        return Ok(entry);
    }
    match store {
        Some(helper) => from_helper(registry, helper),
        None => Err("no credential in auths and no credsStore or credHelpers entry".into()),
    }
}

fn entry(registry: &str, username: String, secret: Secret) -> DockerEntry {
    DockerEntry::new(registry, username, secret)
}

fn from_helper(registry: &str, helper: &str) -> Result<DockerEntry, String> {
    if helper == HELPER_NAME {
        return Err("the host already uses devc-encrypted for it; nothing to import".into());
    }
    match client::get(
        helper,
        registry,
        HELPER_TIMEOUT,
        std::env::current_exe().ok().as_deref(),
    ) {
        Answer::Found(c) => Ok(entry(registry, c.username, c.secret)),
        Answer::NotFound => Err(format!(
            "docker-credential-{helper} has no credential for it (or is not installed)"
        )),
        Answer::Failed(why) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) {
        fs::write(dir.join("config.json"), json).expect("write config");
    }

    #[test]
    fn plain_auths_and_identity_tokens() {
        let d = tempfile::tempdir().expect("tempdir");
        // "me:p4ss:word" — a password may contain ':'.
        config(
            d.path(),
            r#"{"auths":{"r.example:5000":{"auth":"bWU6cDRzczp3b3Jk"},
                "https://index.docker.io/v1/":{"identitytoken":"tok"}}}"#,
        );
        let r = resolve(d.path(), &Selection::All).expect("resolve");
        assert!(r.missed.is_empty(), "{:?}", r.missed);
        let by = |s: &str| r.entries.iter().find(|e| e.server_url == s).expect(s);
        assert_eq!(by("r.example:5000").username, "me");
        assert_eq!(by("r.example:5000").secret.expose(), "p4ss:word");
        assert_eq!(by("https://index.docker.io/v1/").username, "<token>");
        assert_eq!(by("https://index.docker.io/v1/").secret.expose(), "tok");
    }

    #[test]
    fn missing_and_malformed_entries_are_reported_not_fatal() {
        let d = tempfile::tempdir().expect("tempdir");
        config(
            d.path(),
            r#"{"auths":{"a.example":{"auth":"***"},"b.example":{}}}"#,
        );
        let r = resolve(d.path(), &Selection::All).expect("resolve");
        assert!(r.entries.is_empty());
        assert_eq!(r.missed.len(), 2, "{:?}", r.missed);
        assert!(r.missed[0].contains("not base64"), "{:?}", r.missed);
        let only = resolve(d.path(), &Selection::Only(vec!["c.example".into()])).expect("resolve");
        assert!(
            only.missed[0].starts_with("c.example: "),
            "{:?}",
            only.missed
        );
    }

    #[test]
    fn no_config_or_no_registries_is_an_error() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            resolve(d.path(), &Selection::All),
            Err(SealError::Config { .. })
        ));
        config(d.path(), "{}");
        assert!(matches!(
            resolve(d.path(), &Selection::All),
            Err(SealError::Nothing(_))
        ));
        config(d.path(), "[1]");
        assert!(matches!(
            resolve(d.path(), &Selection::All),
            Err(SealError::Config { .. })
        ));
    }

    #[test]
    fn our_own_helper_is_never_asked() {
        let d = tempfile::tempdir().expect("tempdir");
        config(
            d.path(),
            r#"{"credsStore":"devc-encrypted","auths":{"x.example":{}}}"#,
        );
        let r = resolve(d.path(), &Selection::All).expect("resolve");
        assert!(
            r.missed[0].contains("already uses devc-encrypted"),
            "{:?}",
            r.missed
        );
    }
}
