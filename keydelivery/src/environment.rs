//! The environment, in one place: every `DEVC_VAULT*` variable, every
//! default path (the vault's included), and the config file, with the key
//! sources' configuration built from them.
//!
//! It also holds the host's refresh settings (`[refresh]` in the config
//! file: how often sealed entries are re-resolved from their host source,
//! with built-in intervals for the well-known short-lived helpers).
//!
//! Precedence: environment variables, then the config file
//! (`$DEVC_VAULT_CONFIG`, else `$XDG_CONFIG_HOME/devc/vault.toml`, else
//! `~/.config/devc/vault.toml`), then built-in defaults.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The vault file.
pub const ENV_VAULT: &str = "DEVC_VAULT";
/// The key file.
pub const ENV_KEY_FILE: &str = "DEVC_VAULT_KEY_FILE";
/// The key sources' order, e.g. `file,agent,passphrase`.
pub const ENV_KEY_ORDER: &str = "DEVC_VAULT_KEY_ORDER";
/// The agent socket.
pub const ENV_AGENT_SOCK: &str = "DEVC_VAULT_AGENT_SOCK";
/// The config file.
pub const ENV_CONFIG: &str = "DEVC_VAULT_CONFIG";
/// Turns on the git helper's diagnostics for expected misses.
pub const ENV_DEBUG: &str = "DEVC_VAULT_DEBUG";
/// Set in a chained docker helper's environment; a helper that sees it does
/// not chain again, so two helpers pointing at each other cannot loop.
pub const ENV_DOCKER_CHAINED: &str = "DEVC_VAULT_DOCKER_CHAINED";
/// docker's own config directory variable.
pub const ENV_DOCKER_CONFIG: &str = "DOCKER_CONFIG";

/// The vault's file name inside a docker config directory.
pub const VAULT_FILE_NAME: &str = ".credentials.enc";
/// Where container secrets are mounted by Docker, Compose and Kubernetes.
pub const DEFAULT_KEY_FILE: &str = "/run/secrets/devc-vault-key";
/// The system-wide agent socket, where a container usually gets it mounted.
pub const SYSTEM_AGENT_SOCK: &str = "/run/devc-vault/agent.sock";
/// Default idle TTL of the passphrase cache.
pub const CACHE_IDLE_TTL: Duration = Duration::from_secs(15 * 60);
/// Default max lifetime of a key in the passphrase cache.
pub const CACHE_MAX_TTL: Duration = Duration::from_secs(4 * 60 * 60);
/// Default time limit for `key_command`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// One kind of key source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A key file (mounted secret).
    File,
    /// A `devc-vault agent` over a unix socket.
    Agent,
    /// A passphrase typed on the terminal (or remembered by the cache agent).
    Passphrase,
    /// An external command printing the key file's content.
    Command,
}

impl SourceKind {
    /// The name used in `DEVC_VAULT_KEY_ORDER` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Agent => "agent",
            SourceKind::Passphrase => "passphrase",
            SourceKind::Command => "command",
        }
    }

    /// Parses a source name.
    pub fn parse(s: &str) -> Option<SourceKind> {
        match s {
            "file" => Some(SourceKind::File),
            "agent" => Some(SourceKind::Agent),
            "passphrase" => Some(SourceKind::Passphrase),
            "command" => Some(SourceKind::Command),
            _ => None,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a source may prompt on `/dev/tty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptPolicy {
    /// Prompt when a terminal is available.
    IfTerminal,
    /// Never prompt, and write nothing to the terminal (the git helper:
    /// git compares stderr in its tests). A running passphrase cache is
    /// still asked, silently.
    Never,
}

/// Where each source looks, and in which order they are tried.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sources, in the order tried.
    pub order: Vec<SourceKind>,
    /// The key file for the `file` source.
    pub key_file: PathBuf,
    /// Whether prompting is allowed.
    pub prompt: PromptPolicy,
    /// Agent sockets tried in turn by the `agent` source.
    pub agent_sockets: Vec<PathBuf>,
    /// The passphrase cache agent's socket.
    pub cache_socket: PathBuf,
    /// Start a cache agent after a successful passphrase prompt.
    pub start_cache: bool,
    /// The cache's idle TTL.
    pub cache_idle_ttl: Duration,
    /// The cache's max lifetime.
    pub cache_max_ttl: Duration,
    /// The `key_command` argv (no shell), if configured.
    pub key_command: Option<Vec<String>>,
    /// Time limit for `key_command`.
    pub key_command_timeout: Duration,
    /// How the host keeps sealed entries fresh (`[refresh]`).
    pub refresh: RefreshConfig,
}

/// The interval for sources with no interval of their own, when neither
/// `--refresh-every` nor `[refresh] every` gives one.
pub const DEFAULT_REFRESH_EVERY: Duration = Duration::from_secs(60 * 60);

/// Host credential helpers whose tokens are short-lived: (helper name, how
/// often to re-resolve, the most one of its tokens lives). The lifetime is
/// an upper bound (these helpers hand out cached tokens), so an entry is
/// marked expired no earlier than its token really expires.
pub const WELL_KNOWN_SOURCES: &[(&str, Duration, Duration)] = &[
    // Amazon ECR authorization tokens: 12 hours.
    (
        "ecr-login",
        Duration::from_secs(6 * 3600),
        Duration::from_secs(12 * 3600),
    ),
    // Google access tokens (docker-credential-gcloud, -gcr): 1 hour.
    (
        "gcloud",
        Duration::from_secs(30 * 60),
        Duration::from_secs(3600),
    ),
    (
        "gcr",
        Duration::from_secs(30 * 60),
        Duration::from_secs(3600),
    ),
    // Azure Container Registry refresh tokens: 3 hours.
    (
        "acr-env",
        Duration::from_secs(3600),
        Duration::from_secs(3 * 3600),
    ),
];

/// When the host re-resolves entries from one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceSchedule {
    /// Re-resolve this long after the last fetch.
    pub every: Option<Duration>,
    /// The most a secret from this source lives (its entries get
    /// `expires = fetched + lifetime` when the secret carries no expiry).
    pub lifetime: Option<Duration>,
}

/// The `[refresh]` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshConfig {
    /// `every`: the interval for sources without one of their own.
    pub every: Option<Duration>,
    /// `vaults`: the vaults `devc-vault agent` refreshes.
    pub vaults: Vec<PathBuf>,
    /// `[refresh.sources.NAME]`, by source name: a helper name (`ecr-login`),
    /// `docker-config` or `git`.
    pub sources: BTreeMap<String, SourceSchedule>,
}

impl RefreshConfig {
    /// The schedule of source `name`: the config file's, else the built-in
    /// one of a well-known helper, each field on its own; `every` falls
    /// back to `default_every`.
    pub fn schedule(&self, name: &str, default_every: Duration) -> (Duration, Option<Duration>) {
        let own = self.sources.get(name).copied().unwrap_or_default();
        let known = WELL_KNOWN_SOURCES.iter().find(|(n, _, _)| *n == name);
        let every = own.every.or(known.map(|k| k.1)).unwrap_or(default_every);
        (every, own.lifetime.or(known.map(|k| k.2)))
    }
}

/// The default order.
pub const DEFAULT_ORDER: [SourceKind; 3] =
    [SourceKind::File, SourceKind::Agent, SourceKind::Passphrase];

/// Why the configuration could not be read.
#[derive(Debug)]
pub enum ConfigError {
    /// An unknown name in a source order.
    UnknownSource {
        /// Where the order came from.
        origin: String,
        /// The offending name.
        name: String,
    },
    /// The config file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (from the TOML parser: positions and names, no values).
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownSource { origin, name } => write!(
                f,
                "unknown key source {name:?} in {origin}; use file, agent, passphrase, command"
            ),
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::Invalid { path, reason } => {
                write!(
                    f,
                    "invalid config {}: {}",
                    path.display(),
                    reason.replace('\n', " ")
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The config file's shape. Unknown keys are refused, so a typo is loud.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    order: Option<Vec<String>>,
    key_file: Option<PathBuf>,
    agent_socket: Option<PathBuf>,
    prompt: Option<bool>,
    key_command: Option<Vec<String>>,
    key_command_timeout_secs: Option<u64>,
    cache: Option<bool>,
    cache_idle_ttl_secs: Option<u64>,
    cache_max_ttl_secs: Option<u64>,
    refresh: Option<RefreshFile>,
}

/// `[refresh]` as written: durations are strings such as `"15m"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshFile {
    every: Option<String>,
    vaults: Option<Vec<PathBuf>>,
    sources: Option<BTreeMap<String, SourceFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    every: Option<String>,
    lifetime: Option<String>,
}

fn non_empty(v: Option<OsString>) -> Option<PathBuf> {
    v.filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn env_path(name: &str) -> Option<PathBuf> {
    non_empty(std::env::var_os(name))
}

/// The user's home directory (`$HOME`, else `/`).
pub fn home_dir() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// The docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    env_path(ENV_DOCKER_CONFIG).unwrap_or_else(|| home_dir().join(".docker"))
}

/// The vault path: `$DEVC_VAULT`, else `<docker config dir>/.credentials.enc`.
pub fn vault_path() -> PathBuf {
    env_path(ENV_VAULT).unwrap_or_else(|| docker_config_dir().join(VAULT_FILE_NAME))
}

/// Whether `DEVC_VAULT_DEBUG` asks for diagnostics (git's boolean spellings).
pub fn debug() -> bool {
    std::env::var(ENV_DEBUG).is_ok_and(|v| is_true(&v))
}

/// Whether this process was started by a docker helper chaining to another.
pub fn docker_chained() -> bool {
    std::env::var_os(ENV_DOCKER_CHAINED).is_some()
}

/// git's spellings of "true" (`git config --type=bool`).
pub fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// git's spellings of "false".
pub fn is_false(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn data_home() -> PathBuf {
    env_path("XDG_DATA_HOME").unwrap_or_else(|| home_dir().join(".local").join("share"))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> PathBuf {
    env_path("XDG_CONFIG_HOME").unwrap_or_else(|| home_dir().join(".config"))
}

/// The key file's name in a dev-container project's key directory (and,
/// mounted, in the container's `/run/secrets`).
pub const KEY_FILE_NAME: &str = "devc-vault-key";

/// A dev-container project's vault (`devc-vault devcontainer`):
/// `<data home>/devc/vaults/<project>/.credentials.enc`. Its directory is
/// what the container mounts as its docker config directory.
pub fn project_vault(project: &str) -> PathBuf {
    data_home()
        .join("devc")
        .join("vaults")
        .join(project)
        .join(VAULT_FILE_NAME)
}

/// A dev-container project's key file:
/// `<config home>/devc/keys/<project>/devc-vault-key`, alone in its
/// directory, which the key-file road mounts read-only at `/run/secrets`.
pub fn project_key_file(project: &str) -> PathBuf {
    config_home()
        .join("devc")
        .join("keys")
        .join(project)
        .join(KEY_FILE_NAME)
}

/// Where `devc-vault devcontainer` mounts the vault's directory in the
/// container (and points `DOCKER_CONFIG`).
pub const CONTAINER_DOCKER_CONFIG: &str = "/var/lib/devc-vault";
/// Where the key-file road mounts the key's directory in the container.
pub const CONTAINER_SECRETS_DIR: &str = "/run/secrets";
/// Where the agent road mounts the agent's socket directory in the container.
pub const CONTAINER_AGENT_DIR: &str = "/run/devc-vault";
/// Where `--binaries mount` mounts the static binaries in the container.
pub const CONTAINER_BIN_DIR: &str = "/opt/devc-vault/bin";

/// The config file in use: `$DEVC_VAULT_CONFIG`, else the XDG location.
/// The flag says whether it was named explicitly (then it must exist).
pub fn config_path() -> (PathBuf, bool) {
    if let Some(p) = env_path(ENV_CONFIG) {
        return (p, true);
    }
    (config_home().join("devc").join("vault.toml"), false)
}

/// The real uid, for per-user paths.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The user's private runtime directory: `$XDG_RUNTIME_DIR/devc-vault`,
/// else `/tmp/devc-vault-<uid>` (created 0700 and checked: see
/// [`crate::endpoint::ensure_private_dir`]). It holds the passphrase cache's
/// socket, the agents' owner endpoints and the prompt lock, and is never
/// mounted into a container.
pub fn private_runtime_dir() -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(d) => d.join("devc-vault"),
        None => std::env::temp_dir().join(format!("devc-vault-{}", uid())),
    }
}

/// The directory a container mounts to reach the agent:
/// `$XDG_RUNTIME_DIR/devc-vault-agent`, else `/tmp/devc-vault-agent-<uid>`.
/// It holds the agent's container-facing socket and nothing else.
pub fn agent_dir() -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(d) => d.join("devc-vault-agent"),
        None => std::env::temp_dir().join(format!("devc-vault-agent-{}", uid())),
    }
}

/// The agent's name for its socket in [`agent_dir`].
pub const AGENT_SOCKET_NAME: &str = "agent.sock";

/// Where `devc-vault agent` listens for containers by default:
/// `$DEVC_VAULT_AGENT_SOCK`, else `<agent dir>/agent.sock`.
pub fn default_agent_socket() -> PathBuf {
    env_path(ENV_AGENT_SOCK).unwrap_or_else(|| agent_dir().join(AGENT_SOCKET_NAME))
}

/// The passphrase cache's socket: `<private runtime dir>/cache.sock`.
pub fn default_cache_socket() -> PathBuf {
    private_runtime_dir().join("cache.sock")
}

/// The owner endpoint of the agent whose container-facing socket is
/// `agent_socket`: `<private runtime dir>/owner/<16 hex digits>.sock`, named
/// by a hash of the socket's absolute path (with its directory's symlinks
/// resolved), so `devc-vault lock --socket S` finds the agent started with
/// `--socket S`.
pub fn owner_socket(agent_socket: &Path) -> PathBuf {
    let dir = crate::endpoint::socket_dir(agent_socket);
    let dir = dir
        .canonicalize()
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir);
    let full = match agent_socket.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    };
    use sha2::Digest;
    let digest = sha2::Sha256::digest(full.as_os_str().as_encoded_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    private_runtime_dir()
        .join("owner")
        .join(format!("{name}.sock"))
}

impl Config {
    /// The vault at `path` as this configuration's writers use it: when the
    /// key file is one of the sources, a writer finishes an interrupted
    /// rotate of it (see `devc_vault::Store::with_key_file`).
    pub fn store(&self, path: impl Into<PathBuf>) -> devc_vault::Store {
        let store = devc_vault::Store::new(path);
        if self.order.contains(&SourceKind::File) {
            store.with_key_file(&self.key_file)
        } else {
            store
        }
    }

    /// Configuration from the environment (`DEVC_VAULT_KEY_FILE`,
    /// `DEVC_VAULT_KEY_ORDER`, `DEVC_VAULT_AGENT_SOCK`) over the config file.
    pub fn load() -> Result<Config, ConfigError> {
        let (path, explicit) = config_path();
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => parse_file(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                FileConfig::default()
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Config::build(file, &path)
    }

    /// The defaults, ignoring the environment and any config file.
    pub fn defaults() -> Config {
        Config {
            order: DEFAULT_ORDER.to_vec(),
            key_file: PathBuf::from(DEFAULT_KEY_FILE),
            prompt: PromptPolicy::IfTerminal,
            agent_sockets: vec![
                PathBuf::from(SYSTEM_AGENT_SOCK),
                agent_dir().join(AGENT_SOCKET_NAME),
            ],
            cache_socket: default_cache_socket(),
            start_cache: true,
            cache_idle_ttl: CACHE_IDLE_TTL,
            cache_max_ttl: CACHE_MAX_TTL,
            key_command: None,
            key_command_timeout: COMMAND_TIMEOUT,
            refresh: RefreshConfig::default(),
        }
    }

    fn build(file: FileConfig, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg = Config::defaults();
        let origin = || format!("config {}", path.display());
        if let Some(order) = &file.order {
            cfg.order = order
                .iter()
                .map(|n| {
                    SourceKind::parse(n.trim()).ok_or_else(|| ConfigError::UnknownSource {
                        origin: origin(),
                        name: n.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Ok(s) = std::env::var(ENV_KEY_ORDER)
            && !s.trim().is_empty()
        {
            cfg.order = parse_order(&s)?;
        }
        cfg.key_file = env_path(ENV_KEY_FILE)
            .or(file.key_file)
            .unwrap_or(cfg.key_file);
        if let Some(sock) = env_path(ENV_AGENT_SOCK).or(file.agent_socket) {
            cfg.agent_sockets = vec![sock];
        }
        if file.prompt == Some(false) {
            cfg.prompt = PromptPolicy::Never;
        }
        cfg.key_command = file.key_command.filter(|argv| !argv.is_empty());
        if let Some(s) = file.key_command_timeout_secs {
            cfg.key_command_timeout = Duration::from_secs(s.clamp(1, 600));
        }
        if let Some(c) = file.cache {
            cfg.start_cache = c;
        }
        if let Some(s) = file.cache_idle_ttl_secs {
            cfg.cache_idle_ttl = Duration::from_secs(s.max(1));
        }
        if let Some(s) = file.cache_max_ttl_secs {
            cfg.cache_max_ttl = Duration::from_secs(s.max(1));
        }
        if let Some(r) = file.refresh {
            cfg.refresh = refresh_settings(r, path)?;
        }
        Ok(cfg)
    }
}

fn refresh_settings(r: RefreshFile, path: &Path) -> Result<RefreshConfig, ConfigError> {
    let duration = |key: String, v: Option<String>| -> Result<Option<Duration>, ConfigError> {
        v.map(|v| {
            parse_duration(&v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("{key} = {v:?} is not a duration like 90s, 15m, 4h"),
                })
        })
        .transpose()
    };
    let mut sources = BTreeMap::new();
    for (name, s) in r.sources.unwrap_or_default() {
        let every = duration(format!("refresh.sources.{name}.every"), s.every)?;
        let lifetime = duration(format!("refresh.sources.{name}.lifetime"), s.lifetime)?;
        sources.insert(name, SourceSchedule { every, lifetime });
    }
    Ok(RefreshConfig {
        every: duration("refresh.every".into(), r.every)?,
        vaults: r.vaults.unwrap_or_default(),
        sources,
    })
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        reason: e.message().to_owned(),
    })
}

/// Parses a comma-separated source list such as `file,agent`.
pub fn parse_order(s: &str) -> Result<Vec<SourceKind>, ConfigError> {
    s.split(',')
        .map(|t| {
            SourceKind::parse(t.trim()).ok_or_else(|| ConfigError::UnknownSource {
                origin: ENV_KEY_ORDER.to_owned(),
                name: t.trim().to_owned(),
            })
        })
        .collect()
}

/// Parses a duration such as `90`, `90s`, `15m`, `4h` or `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_parsing() {
        assert_eq!(
            parse_order("file, agent").expect("ok"),
            vec![SourceKind::File, SourceKind::Agent]
        );
        let e = parse_order("file,gpg").expect_err("unknown");
        assert!(e.to_string().contains("\"gpg\""), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("4h"), Some(Duration::from_secs(14400)));
        for bad in ["", "m", "1x", "-1", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_file_fields_and_strictness() {
        let p = Path::new("/x/vault.toml");
        let f = parse_file(
            p,
            "order = [\"command\", \"file\"]\nkey_command = [\"pass\", \"show\", \"devc\"]\nkey_command_timeout_secs = 3\nprompt = false\n",
        )
        .expect("valid");
        let cfg = Config::build(f, p).expect("builds");
        assert_eq!(cfg.order[0], SourceKind::Command);
        assert_eq!(cfg.key_command.as_deref().map(<[String]>::len), Some(3));
        assert_eq!(cfg.key_command_timeout, Duration::from_secs(3));
        assert_eq!(cfg.prompt, PromptPolicy::Never);
        let e = parse_file(p, "ordr = []\n").expect_err("unknown key");
        assert!(e.to_string().contains("/x/vault.toml"), "{e}");
        let f = parse_file(p, "order = [\"gpg\"]\n").expect("parses");
        assert!(Config::build(f, p).is_err());
    }

    #[test]
    fn refresh_settings_and_well_known_sources() {
        let p = Path::new("/x/vault.toml");
        let f = parse_file(
            p,
            "[refresh]\nevery = \"2h\"\nvaults = [\"/v/.credentials.enc\"]\n[refresh.sources.ecr-login]\nevery = \"3h\"\n[refresh.sources.mine]\nlifetime = \"10m\"\n",
        )
        .expect("valid");
        let r = Config::build(f, p).expect("builds").refresh;
        assert_eq!(r.every, Some(Duration::from_secs(7200)));
        assert_eq!(r.vaults, vec![PathBuf::from("/v/.credentials.enc")]);
        let h = |n: u64| Duration::from_secs(n * 3600);
        // Its own interval, the built-in lifetime.
        assert_eq!(r.schedule("ecr-login", h(1)), (h(3), Some(h(12))));
        // Built in for a well-known helper; the default for others.
        assert_eq!(r.schedule("gcloud", h(5)), (h(1) / 2, Some(h(1))));
        assert_eq!(r.schedule("pass", h(5)), (h(5), None));
        assert_eq!(
            r.schedule("mine", h(5)),
            (h(5), Some(Duration::from_secs(600)))
        );
        for bad in [
            "[refresh]\nevery = \"soon\"\n",
            "[refresh]\nevery = \"0s\"\n",
            "[refresh.sources.x]\nevry = \"1h\"\n",
        ] {
            let e = parse_file(p, bad).and_then(|f| Config::build(f, p));
            assert!(e.is_err(), "{bad}");
        }
    }
}
