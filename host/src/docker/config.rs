//! docker's `config.json`: reading it, and `devc-vault install`'s docker
//! part (point it at our helper, remember the helper it replaces), and the
//! checks `devc-vault doctor` makes of it, with the same code.
//!
//! The previous `credsStore` is recorded inside the vault (`chain`), not in
//! `config.json`: the docker CLI drops keys it does not know whenever it
//! rewrites that file (at every `docker login`).

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use devc_helper::docker::protocol::{HELPER_NAME, TOKEN_USERNAME};
use devc_vault::registry::Address;
use devc_vault::{DockerEntry, SealedVault, Secret, Store, Vault, file};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The docker config file's name inside its directory.
pub const CONFIG_FILE: &str = "config.json";
/// The backup of the previous `config.json`, beside it.
pub const BACKUP_FILE: &str = "config.json.bak";
/// Largest `config.json` read; a bigger one is refused, not parsed.
pub const MAX_CONFIG_LEN: u64 = 4 * 1024 * 1024;

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The config file.
    pub config: PathBuf,
    /// Where the previous file was copied, when it was rewritten.
    pub backup: Option<PathBuf>,
    /// Whether `config.json` changed (false on a repeated install).
    pub changed: bool,
    /// The `credHelpers` keys set to this helper.
    pub registries: Vec<String>,
    /// The previous `credsStore` that `get` chains to, as recorded in the vault.
    pub chained: Option<String>,
    /// Registries whose credential was found in clear in `config.json` and
    /// moved into the vault.
    pub moved: Vec<String>,
}

/// Why `install` failed.
#[derive(Debug)]
pub enum InstallError<E> {
    /// No key opened the vault (the caller's unlock error).
    Unlock(E),
    /// The vault refused.
    Vault(devc_vault::Error),
    /// `config.json` cannot be used.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (never file content).
        reason: String,
    },
}

impl<E> From<devc_vault::Error> for InstallError<E> {
    fn from(e: devc_vault::Error) -> Self {
        InstallError::Vault(e)
    }
}

impl<E: fmt::Display> fmt::Display for InstallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Unlock(e) => write!(f, "{e}"),
            InstallError::Vault(e) => write!(f, "{e}"),
            InstallError::Config { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for InstallError<E> {}

/// The `credsStore` a config names, unless it is empty or this helper.
pub fn previous_creds_store(config: &Map<String, Value>) -> Option<String> {
    match config.get("credsStore") {
        Some(Value::String(s)) if !s.is_empty() && s != HELPER_NAME => Some(s.clone()),
        _ => None,
    }
}

/// `config` with `credsStore` set to this helper and a `credHelpers` entry for
/// each of `registries`; every other key is kept as it was.
pub fn point_at_helper(
    mut config: Map<String, Value>,
    registries: &[String],
) -> Result<Map<String, Value>, String> {
    config.insert("credsStore".into(), Value::String(HELPER_NAME.into()));
    let helpers = config
        .entry("credHelpers")
        .or_insert_with(|| Value::Object(Map::new()));
    if helpers.is_null() {
        *helpers = Value::Object(Map::new());
    }
    let Value::Object(helpers) = helpers else {
        return Err(
            "\"credHelpers\" is not a JSON object; fix or remove it, then run install again".into(),
        );
    };
    for r in registries {
        helpers.insert(r.clone(), Value::String(HELPER_NAME.into()));
    }
    Ok(config)
}

/// The `credHelpers` keys under which clients look a stored address up:
/// `host[:port]`, and for Docker Hub both `docker.io` (skopeo, podman) and
/// the legacy index address (the docker CLI). Empty for an unparsable address.
pub fn cred_helper_keys(stored: &str) -> Vec<String> {
    match Address::parse(stored) {
        Some(a) if a.is_docker_hub() => vec![a.registry(), DOCKER_HUB_INDEX.to_owned()],
        Some(a) => vec![a.registry()],
        None => Vec::new(),
    }
}

/// Docker Hub's legacy address, the one the docker CLI stores and asks for.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// The `credHelpers` keys for every docker entry of a vault, sorted, without duplicates.
pub fn registries(vault: &Vault) -> Vec<String> {
    let mut keys: Vec<String> = vault
        .docker()
        .iter()
        .flat_map(|e| cred_helper_keys(&e.server_url))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether `config` names this helper as its `credsStore`.
pub fn uses_helper(config: &Map<String, Value>) -> bool {
    config.get("credsStore").and_then(Value::as_str) == Some(HELPER_NAME)
}

/// Which of `registries` lack a `credHelpers` entry naming this helper
/// (skopeo and podman read only `credHelpers`).
pub fn missing_cred_helpers(config: &Map<String, Value>, registries: &[String]) -> Vec<String> {
    let helpers = config.get("credHelpers").and_then(Value::as_object);
    registries
        .iter()
        .filter(|reg| {
            helpers
                .and_then(|h| h.get(reg.as_str()))
                .and_then(Value::as_str)
                != Some(HELPER_NAME)
        })
        .cloned()
        .collect()
}

/// The fields of an `auths` entry that carry a credential in clear.
pub const PLAINTEXT_FIELDS: [&str; 4] = ["auth", "password", "identitytoken", "registrytoken"];

/// The credential an `auths[registry]` entry holds in clear, if any: an
/// identity token (`identitytoken`), base64 `user:password` (`auth`), or
/// `username` and `password`. An error says why it cannot be read (never
/// with the value).
pub fn plaintext_credential(
    registry: &str,
    a: &Map<String, Value>,
) -> Result<Option<DockerEntry>, String> {
    let text = |k: &str| a.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(token) = text("identitytoken") {
        return Ok(Some(DockerEntry::new(
            registry,
            TOKEN_USERNAME,
            Secret::new(token.to_owned()),
        )));
    }
    if let Some(auth) = text("auth") {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(auth.trim())
                .map_err(|_| "its \"auth\" is not base64".to_string())?,
        );
        let text =
            std::str::from_utf8(&decoded).map_err(|_| "its \"auth\" is not UTF-8".to_string())?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| "its \"auth\" is not user:password".to_string())?;
        return Ok(Some(DockerEntry::new(
            registry,
            user,
            Secret::new(pass.to_owned()),
        )));
    }
    match (text("username"), text("password")) {
        (Some(user), Some(pass)) => Ok(Some(DockerEntry::new(
            registry,
            user,
            Secret::new(pass.to_owned()),
        ))),
        (None, Some(_)) => Err("it has a \"password\" but no \"username\"".into()),
        _ if text("registrytoken").is_some() => {
            Err("it holds a \"registrytoken\", which devc-vault cannot store".into())
        }
        _ => Ok(None),
    }
}

/// Every credential `config.json` holds in clear, by registry: the entry to
/// seal, or why it cannot be sealed.
pub fn plaintext_auths(config: &Map<String, Value>) -> Vec<(String, Result<DockerEntry, String>)> {
    let Some(Value::Object(auths)) = config.get("auths") else {
        return Vec::new();
    };
    auths
        .iter()
        .filter_map(|(registry, v)| {
            let Value::Object(a) = v else { return None };
            let has_secret = PLAINTEXT_FIELDS.iter().any(|f| {
                a.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty())
            });
            if !has_secret {
                return None;
            }
            let found = plaintext_credential(registry, a).and_then(|e| {
                e.ok_or_else(|| "it holds a credential devc-vault cannot read".into())
            });
            Some((registry.clone(), found))
        })
        .collect()
}

/// `config` without any credential in clear: every `auths` entry keeps its
/// registry (as `docker login` writes it, `{}`) but loses the fields that
/// carry a secret.
pub fn without_plaintext(mut config: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(auths)) = config.get_mut("auths") {
        for v in auths.values_mut() {
            if let Value::Object(a) = v {
                for f in PLAINTEXT_FIELDS {
                    a.remove(f);
                }
                if a.get("username").is_some() && a.get("password").is_none() {
                    a.remove("username");
                }
            }
        }
    }
    config
}

/// A `config.json` as read: its bytes (for the backup) and its parsed object.
pub type ConfigFile = (Vec<u8>, Map<String, Value>);

/// Reads `path` (a `config.json`): `None` when it does not exist; an error
/// (naming a position, never content) when it is not a JSON object.
pub fn read_config(path: &Path) -> Result<Option<ConfigFile>, String> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_LEN {
        return Err(format!(
            "larger than {MAX_CONFIG_LEN} bytes; refusing to rewrite it"
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some((bytes, Map::new())));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Some((bytes, m))),
        Ok(_) => Err("not a JSON object; fix or move it, then run install again".into()),
        // Position only: the file may hold plaintext `auths`.
        Err(e) => Err(format!(
            "not valid JSON (line {} column {}); fix or move it, then run install again",
            e.line(),
            e.column()
        )),
    }
}

fn render(config: &Map<String, Value>) -> Vec<u8> {
    // Tab-indented, as the docker CLI writes it.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(config, &mut ser).expect("a JSON map always serializes");
    out.push(b'\n');
    out
}

/// Installs the helper into the docker config in `docker_config_dir`:
/// seals every credential `config.json` holds in clear into the vault (or
/// finds it there) and records the previous `credsStore` (for chaining), in
/// one write of the vault; then rewrites `config.json` atomically with
/// `credsStore` and `credHelpers` set and no credential in clear, keeping a
/// backup of the previous file without its credentials. A credential that
/// cannot be sealed stops it before anything changes. Idempotent: a second
/// run changes nothing.
pub fn install<E>(
    docker_config_dir: &Path,
    store: &Store,
    unlock: impl Fn(&SealedVault) -> Result<Vault, E>,
) -> Result<Installed, InstallError<E>> {
    let path = docker_config_dir.join(CONFIG_FILE);
    let config_error = |reason: String| InstallError::Config {
        path: path.clone(),
        reason,
    };
    let old = read_config(&path).map_err(config_error)?;
    let old_map = old.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
    let previous = previous_creds_store(&old_map);
    let mut plaintext = Vec::new();
    for (registry, found) in plaintext_auths(&old_map) {
        match found {
            Ok(entry) => plaintext.push(entry),
            Err(why) => {
                return Err(config_error(format!(
                    "it holds a credential in clear for {registry} that cannot be moved into the vault: {why}; fix or remove that entry, then run install again (nothing was changed)"
                )));
            }
        }
    }
    let moved: Vec<String> = plaintext.iter().map(|e| e.server_url.clone()).collect();

    let (registries, chained) = store.update(
        |s| unlock(s).map_err(InstallError::Unlock),
        |v| {
            for e in plaintext {
                v.upsert_docker(e)?;
            }
            if previous.is_some() && previous != v.payload().chain.docker_creds_store {
                v.payload_mut().chain.docker_creds_store = previous.clone();
            }
            Ok::<_, InstallError<E>>((registries(v), v.payload().chain.docker_creds_store.clone()))
        },
    )?;

    let clean_old = without_plaintext(old_map.clone());
    let new_map = point_at_helper(clean_old.clone(), &registries).map_err(config_error)?;
    let changed = old.is_none() || new_map != old_map;
    let mut backup = None;
    if changed {
        file::create_private_dir(docker_config_dir)?;
        if old.is_some() {
            // The previous settings, never its credentials: those are in the vault now.
            let b = docker_config_dir.join(BACKUP_FILE);
            file::replace(&b, &render(&clean_old))?;
            backup = Some(b);
        }
        file::replace(&path, &render(&new_map))?;
    }
    scrub_backup(docker_config_dir)?;
    Ok(Installed {
        config: path,
        backup,
        changed,
        registries,
        chained,
        moved,
    })
}

/// `install` for when no key opens the vault yet (a passphrase nobody has
/// typed, an agent that does not serve this uid yet): points `config.json`
/// at the helper (`credsStore`; existing `credHelpers` kept), which needs
/// nothing from the vault. `None`, and nothing written, when that would
/// lose something: `config.json` holds a credential in clear, or names
/// another `credsStore` whose chaining must be recorded in the vault. Run
/// `install` again once a key is available for the `credHelpers` entries
/// (skopeo and podman read only those).
pub fn install_without_key(docker_config_dir: &Path) -> Result<Option<Installed>, String> {
    let path = docker_config_dir.join(CONFIG_FILE);
    let old = read_config(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let old_map = old.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
    if !plaintext_auths(&old_map).is_empty() || previous_creds_store(&old_map).is_some() {
        return Ok(None);
    }
    let new_map =
        point_at_helper(old_map.clone(), &[]).map_err(|e| format!("{}: {e}", path.display()))?;
    let changed = old.is_none() || new_map != old_map;
    if changed {
        let io = |e: devc_vault::Error| e.to_string();
        file::create_private_dir(docker_config_dir).map_err(io)?;
        file::replace(&path, &render(&new_map)).map_err(io)?;
    }
    Ok(Some(Installed {
        config: path,
        backup: None,
        changed,
        registries: Vec::new(),
        chained: None,
        moved: Vec::new(),
    }))
}

/// Rewrites an existing backup that still holds credentials in clear (left
/// by an earlier version) without them.
fn scrub_backup(dir: &Path) -> devc_vault::Result<()> {
    let b = dir.join(BACKUP_FILE);
    if let Ok(Some((_, map))) = read_config(&b)
        && !plaintext_auths(&map).is_empty()
    {
        file::replace(&b, &render(&without_plaintext(map)))?;
    }
    Ok(())
}

/// Files in a docker config directory that hold a credential in clear:
/// `config.json` and its backups (`config.json*`), each with the
/// registries found.
pub fn plaintext_files(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(CONFIG_FILE) {
            continue;
        }
        let path = e.path();
        if let Ok(Some((_, map))) = read_config(&path) {
            let registries: Vec<String> =
                plaintext_auths(&map).into_iter().map(|(r, _)| r).collect();
            if !registries.is_empty() {
                found.push((path, registries));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use devc_vault::{DockerEntry, Key, KeySecret, Secret, SlotKind};
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn previous_store_ignores_ours_and_empty() {
        assert_eq!(
            previous_creds_store(&map(json!({"credsStore": "pass"}))).as_deref(),
            Some("pass")
        );
        assert_eq!(
            previous_creds_store(&map(json!({"credsStore": "devc-encrypted"}))),
            None
        );
        assert_eq!(previous_creds_store(&map(json!({"credsStore": ""}))), None);
        assert_eq!(previous_creds_store(&map(json!({"credsStore": 3}))), None);
        assert_eq!(previous_creds_store(&map(json!({}))), None);
    }

    #[test]
    fn pointing_keeps_other_keys() {
        let old =
            map(json!({"auths": {"x": {}}, "credHelpers": {"gcr.io": "gcloud"}, "psFormat": "t"}));
        let new = point_at_helper(old, &["h:1".into()]).expect("ok");
        assert_eq!(
            Value::Object(new),
            json!({"auths": {"x": {}}, "credHelpers": {"gcr.io": "gcloud", "h:1": "devc-encrypted"},
                   "psFormat": "t", "credsStore": "devc-encrypted"})
        );
        assert!(point_at_helper(map(json!({"credHelpers": []})), &[]).is_err());
    }

    struct Fx {
        dir: tempfile::TempDir,
        store: Store,
        key: Key,
    }

    fn fixture(urls: &[&str]) -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = KeySecret::generate();
        let mut v = Vault::create();
        v.add_secret_slot(SlotKind::KeyFile, &secret).expect("slot");
        for u in urls {
            v.upsert_docker(DockerEntry::new(*u, "u", Secret::from("s")))
                .expect("entry");
        }
        let store = Store::new(dir.path().join(".credentials.enc"));
        store.create(&v).expect("create");
        Fx {
            dir,
            store,
            key: Key::Secret(secret),
        }
    }

    #[test]
    fn install_is_idempotent_and_records_the_previous_store() {
        let fx = fixture(&["127.0.0.1:5000", "https://index.docker.io/v1/"]);
        let cfg = fx.dir.path().join("config.json");
        fs::write(
            &cfg,
            r#"{"credsStore":"pass","auths":{"127.0.0.1:5000":{}},"detachKeys":"ctrl-x"}"#,
        )
        .expect("write");
        let unlock = |s: &SealedVault| s.open(&fx.key);

        let first = install(fx.dir.path(), &fx.store, unlock).expect("install");
        assert!(first.changed);
        assert_eq!(first.chained.as_deref(), Some("pass"));
        assert_eq!(
            first.registries,
            ["127.0.0.1:5000", "docker.io", "https://index.docker.io/v1/"]
        );
        let written: Value = serde_json::from_slice(&fs::read(&cfg).expect("read")).expect("json");
        assert_eq!(
            written,
            json!({"credsStore": "devc-encrypted", "auths": {"127.0.0.1:5000": {}}, "detachKeys": "ctrl-x",
                   "credHelpers": {"127.0.0.1:5000": "devc-encrypted", "docker.io": "devc-encrypted",
                                   "https://index.docker.io/v1/": "devc-encrypted"}})
        );
        let backup = fs::read_to_string(fx.dir.path().join(BACKUP_FILE)).expect("backup");
        assert!(backup.contains("\"credsStore\": \"pass\""), "{backup}");
        let vault = fx.store.read().expect("read").open(&fx.key).expect("open");
        assert_eq!(
            vault.payload().chain.docker_creds_store.as_deref(),
            Some("pass")
        );

        let bytes = fs::read(&cfg).expect("read");
        let second = install(fx.dir.path(), &fx.store, unlock).expect("again");
        assert!(!second.changed);
        assert_eq!(
            second.chained.as_deref(),
            Some("pass"),
            "the recorded helper survives"
        );
        assert_eq!(fs::read(&cfg).expect("read"), bytes);
    }

    #[test]
    fn install_without_config_and_refusals() {
        let fx = fixture(&[]);
        let unlock = |s: &SealedVault| s.open(&fx.key);
        let sub = fx.dir.path().join("new");
        let done = install(&sub, &fx.store, unlock).expect("install");
        assert!(done.changed && done.backup.is_none() && done.chained.is_none());
        let written: Value =
            serde_json::from_slice(&fs::read(sub.join("config.json")).expect("read"))
                .expect("json");
        assert_eq!(
            written,
            json!({"credsStore": "devc-encrypted", "credHelpers": {}})
        );

        fs::write(
            sub.join("config.json"),
            "{\"auths\": {\"h\": {\"auth\": \"c2VjcmV0\"}",
        )
        .expect("write");
        let e = install(&sub, &fx.store, unlock).expect_err("bad json");
        assert!(
            e.to_string().contains("not valid JSON") && !e.to_string().contains("c2VjcmV0"),
            "{e}"
        );

        let wrong = Key::Secret(KeySecret::generate());
        fs::write(sub.join("config.json"), "{}").expect("write");
        assert!(matches!(
            install(&sub, &fx.store, |s: &SealedVault| s.open(&wrong)),
            Err(InstallError::Unlock(_))
        ));
        assert_eq!(
            fs::read_to_string(sub.join("config.json")).expect("read"),
            "{}",
            "nothing written on failure"
        );
    }

    #[test]
    fn cred_helper_keys_name_the_registry() {
        assert_eq!(cred_helper_keys("https://Host:5000/v1/"), ["host:5000"]);
        assert_eq!(cred_helper_keys("https://[::1]:8080/path"), ["[::1]:8080"]);
        assert_eq!(cred_helper_keys("127.0.0.1:5000"), ["127.0.0.1:5000"]);
        assert!(cred_helper_keys("ftp://x").is_empty());
        for hub in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            DOCKER_HUB_INDEX,
        ] {
            assert_eq!(cred_helper_keys(hub), ["docker.io", DOCKER_HUB_INDEX]);
        }
    }

    #[test]
    fn install_moves_plaintext_credentials_into_the_vault_and_leaves_none() {
        let fx = fixture(&[]);
        let cfg = fx.dir.path().join("config.json");
        // "me:s3cret" in base64, an identity token, and a bare password.
        fs::write(
            &cfg,
            r#"{"auths":{"a.example":{"auth":"bWU6czNjcmV0"},
                "b.example":{"identitytoken":"tok-s3cret"},
                "c.example":{"username":"u","password":"pw-s3cret"},
                "d.example":{}}}"#,
        )
        .expect("write");
        let unlock = |s: &SealedVault| s.open(&fx.key);
        let done = install(fx.dir.path(), &fx.store, unlock).expect("install");
        assert_eq!(done.moved, ["a.example", "b.example", "c.example"]);
        for f in [CONFIG_FILE, BACKUP_FILE] {
            let text = fs::read_to_string(fx.dir.path().join(f)).expect("read");
            for secret in ["s3cret", "bWU6czNjcmV0"] {
                assert!(!text.contains(secret), "{f}: {text}");
            }
            assert!(text.contains("d.example"), "registries stay: {text}");
        }
        assert!(plaintext_files(fx.dir.path()).is_empty());
        let vault = fx.store.read().expect("read").open(&fx.key).expect("open");
        assert_eq!(
            vault.find_docker("a.example").map(|e| e.secret.expose()),
            Some("s3cret")
        );
        assert_eq!(
            vault.find_docker("b.example").map(|e| e.username.as_str()),
            Some("<token>")
        );
        // Nothing to move the second time; nothing changes.
        let again = install(fx.dir.path(), &fx.store, unlock).expect("again");
        assert!(!again.changed && again.moved.is_empty());
    }

    #[test]
    fn a_credential_that_cannot_be_sealed_stops_install_before_any_change() {
        let fx = fixture(&[]);
        let cfg = fx.dir.path().join("config.json");
        let text = r#"{"auths":{"a.example":{"auth":"bm90LXVzZXItcGFzcw=="}}}"#;
        fs::write(&cfg, text).expect("write");
        let before = fs::read(fx.store.path()).expect("vault");
        let e = install(fx.dir.path(), &fx.store, |s: &SealedVault| s.open(&fx.key))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("a.example") && e.contains("not user:password"),
            "{e}"
        );
        assert!(!e.contains("bm90"), "{e}");
        assert_eq!(fs::read_to_string(&cfg).expect("read"), text);
        assert_eq!(fs::read(fx.store.path()).expect("vault"), before);
        assert!(!fx.dir.path().join(BACKUP_FILE).exists());
        assert_eq!(plaintext_files(fx.dir.path()).len(), 1);
    }
}
