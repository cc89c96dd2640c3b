//! Importing on the host: resolve the registry credentials the host's docker
//! configuration already has (plain `auths`, identity tokens, `credHelpers`,
//! `credsStore`) so that `devc-vault seal docker` can put them in a vault.
//!
//! `--all` asks every configured source: the registries `auths` and
//! `credHelpers` name, and every server the `credsStore`'s own `list`
//! names. Each helper call has a deadline and they run in parallel; a
//! registry that gives nothing is reported and the others go on. Every
//! entry remembers its [`Source`] (the helper or the file, and when).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use devc_vault::{DockerEntry, Source};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use devc_helper::docker::client::{self, Answer};
use devc_helper::docker::protocol::HELPER_NAME;
use devc_vault::registry;

/// How long one host helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many host helpers run at once.
pub const MAX_PARALLEL: usize = 8;

/// [`Source::kind`] of an entry read from `config.json`'s `auths`
/// (`from` is the file).
pub const KIND_CONFIG: &str = "docker-config";
/// [`Source::kind`] of an entry a docker credential helper answered
/// (`from` is its name, e.g. `ecr-login`).
pub const KIND_HELPER: &str = "docker-helper";

/// Which registries to seal.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every registry the config names (`auths` and `credHelpers` keys) and
    /// every server its `credsStore` lists.
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
    /// Credentials to store, each with its [`Source`].
    pub entries: Vec<DockerEntry>,
    /// Registries (or the credsStore's list) that gave nothing, each with why.
    pub missed: Vec<String>,
}

/// A parsed `config.json`: the parts that say where credentials are.
struct DockerConfig {
    path: PathBuf,
    auths: Map<String, Value>,
    helpers: Map<String, Value>,
    store: Option<String>,
}

fn read_config(path: &Path) -> Result<DockerConfig, SealError> {
    let bad = |reason: String| SealError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?);
    let config: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a JSON object".into()))?;
    Ok(DockerConfig {
        path: path.to_path_buf(),
        auths: object(&config, "auths"),
        helpers: object(&config, "credHelpers"),
        store: config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    })
}

/// Reads `<dir>/config.json` and resolves the selected registries' credentials.
pub fn resolve(dir: &Path, selection: &Selection) -> Result<Resolved, SealError> {
    let config = read_config(&dir.join("config.json"))?;
    let mut out = Resolved::default();
    let wanted: Vec<String> = match selection {
        Selection::Only(list) => list.clone(),
        Selection::All => {
            let mut all: Vec<String> = config
                .auths
                .keys()
                .chain(config.helpers.keys())
                .cloned()
                .collect();
            if let Some(store) = config.store.as_deref().filter(|s| *s != HELPER_NAME) {
                match client::list(store, HELPER_TIMEOUT, self_exe().as_deref()) {
                    Ok(servers) => all.extend(servers.into_keys()),
                    Err(why) => out.missed.push(format!("credsStore {store}: {why}")),
                }
            }
            distinct_registries(all)
        }
    };
    if wanted.is_empty() {
        let mut why = format!(
            "{} names no registries (auths, credHelpers) and no credsStore lists any",
            config.path.display()
        );
        for m in &out.missed {
            why.push_str(&format!(" ({m})"));
        }
        why.push_str("; pass --registry HOST");
        return Err(SealError::Nothing(why));
    }
    let fetched = devc_vault::now();
    let results = in_parallel(wanted, |registry| {
        let r = resolve_one(&registry, &config, fetched);
        (registry, r)
    });
    for (registry, r) in results {
        match r {
            Ok(entry) => out.entries.push(entry),
            Err(why) => out.missed.push(format!("{registry}: {why}")),
        }
    }
    Ok(out)
}

/// Re-resolves one entry from the source it names (for a refresh): the
/// helper `from` for a [`KIND_HELPER`] source, the file `from` for a
/// [`KIND_CONFIG`] one. The new entry carries a source fetched now.
pub fn resolve_again(server_url: &str, source: &Source) -> Result<DockerEntry, String> {
    let fetched = devc_vault::now();
    match source.kind.as_str() {
        KIND_HELPER => from_helper(server_url, &source.from, fetched),
        KIND_CONFIG => {
            let config = read_config(Path::new(&source.from)).map_err(|e| e.to_string())?;
            match lookup(&config.auths, server_url) {
                Some(Value::Object(a)) => from_auths(server_url, a, &config.path, fetched)?
                    .ok_or_else(|| {
                        format!(
                            "{} holds no credential for it any more",
                            config.path.display()
                        )
                    }),
                _ => Err(format!(
                    "{} has no auths entry for it any more",
                    config.path.display()
                )),
            }
        }
        other => Err(format!(
            "its source {other:?} is not one devc-vault can ask again"
        )),
    }
}

/// The registries in `all`, each once (the first spelling of each registry
/// kept, by the vault's rule for the same registry), sorted.
fn distinct_registries(mut all: Vec<String>) -> Vec<String> {
    all.sort();
    let mut out: Vec<String> = Vec::new();
    for r in all {
        if !out.iter().any(|o| registry::same_entry(o, &r)) {
            out.push(r);
        }
    }
    out
}

/// Runs `f` on every item, at most [`MAX_PARALLEL`] at once, and returns
/// the results in the items' order.
pub fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..n.min(MAX_PARALLEL) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let item = slots[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(item) = item {
                        let r = f(item);
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

fn self_exe() -> Option<PathBuf> {
    std::env::current_exe().ok()
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

fn resolve_one(registry: &str, config: &DockerConfig, fetched: u64) -> Result<DockerEntry, String> {
    // Docker's own order: a per-registry helper, then plain auths, then the store.
    if let Some(Value::String(helper)) = lookup(&config.helpers, registry) {
        return from_helper(registry, helper, fetched);
    }
    if let Some(Value::Object(a)) = lookup(&config.auths, registry)
        && let Some(entry) = from_auths(registry, a, &config.path, fetched)?
    {
        return Ok(entry);
    }
    match &config.store {
        Some(helper) => from_helper(registry, helper, fetched),
        None => Err("no credential in auths and no credsStore or credHelpers entry".into()),
    }
}

fn from_auths(
    registry: &str,
    a: &Map<String, Value>,
    path: &Path,
    fetched: u64,
) -> Result<Option<DockerEntry>, String> {
    Ok(super::config::plaintext_credential(registry, a)?.map(|e| {
        e.with_source(Source::new(
            KIND_CONFIG,
            path.display().to_string(),
            fetched,
        ))
    }))
}

fn from_helper(registry: &str, helper: &str, fetched: u64) -> Result<DockerEntry, String> {
    if helper == HELPER_NAME {
        return Err("the host already uses devc-encrypted for it; nothing to import".into());
    }
    match client::get(helper, registry, HELPER_TIMEOUT, self_exe().as_deref()) {
        Answer::Found(c) => Ok(DockerEntry::new(registry, c.username, c.secret)
            .with_source(Source::new(KIND_HELPER, helper, fetched))),
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
        let source = by("r.example:5000").source.clone().expect("a source");
        assert_eq!(
            (source.kind.as_str(), source.from.clone()),
            (
                KIND_CONFIG,
                d.path().join("config.json").display().to_string()
            )
        );
        // Asked again, the same file gives the same credential.
        let again = resolve_again("r.example:5000", &source).expect("again");
        assert_eq!(again.secret.expose(), "p4ss:word");
        fs::write(d.path().join("config.json"), "{}").expect("write");
        let gone = resolve_again("r.example:5000", &source).expect_err("gone");
        assert!(gone.contains("no auths entry"), "{gone}");
    }

    #[test]
    fn registries_are_distinct_by_the_vault_rule_and_results_keep_order() {
        assert_eq!(
            distinct_registries(vec![
                "https://index.docker.io/v1/".into(),
                "b.example".into(),
                "https://registry-1.docker.io/".into(),
                "b.example".into(),
            ]),
            ["b.example", "https://index.docker.io/v1/"]
        );
        let out = in_parallel((0..50).collect(), |i: u32| i * 2);
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
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
