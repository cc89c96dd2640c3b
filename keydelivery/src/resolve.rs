//! The resolver: walks the configured sources in order and opens the vault
//! with the first key that fits. Its error is the one every binary maps:
//! [`UnlockError::is_miss`] says when "nothing here" is the right answer.

use std::fmt;
use std::path::PathBuf;

use devc_vault::{Error, Key, SealedVault, Store, Vault};

use crate::environment::{Config, ConfigError, SourceKind};
use crate::source;

/// Why one source gave no key.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The source.
    pub source: SourceKind,
    /// Why it failed (never a secret).
    pub why: String,
}

/// Why a vault could not be opened.
#[derive(Debug)]
pub enum UnlockError {
    /// The key-source configuration (environment or config file) is invalid.
    Config(ConfigError),
    /// There is no vault file.
    NoVault(PathBuf),
    /// No source produced a key that opens the vault.
    NoKey(Vec<Attempt>),
    /// The vault is damaged, tampered, unreadable or could not be written.
    Vault(Error),
}

impl UnlockError {
    /// An expected miss: no vault here, or no key for it. The helpers then
    /// answer "nothing here" (docker: not found, git: silence) instead of
    /// failing, so that public images and other credentials keep working.
    pub fn is_miss(&self) -> bool {
        matches!(self, UnlockError::NoVault(_) | UnlockError::NoKey(_))
    }
}

impl fmt::Display for UnlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockError::Config(e) => write!(f, "{e}"),
            UnlockError::NoVault(path) => write!(
                f,
                "no vault at {}: create one with `devc-vault init`, or point --vault / DEVC_VAULT at it",
                path.display()
            ),
            UnlockError::NoKey(attempts) => {
                write!(f, "no key for the vault (tried ")?;
                for (i, a) in attempts.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{}: {}", a.source, a.why)?;
                }
                write!(f, ")")
            }
            UnlockError::Vault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UnlockError {}

impl From<Error> for UnlockError {
    fn from(e: Error) -> Self {
        match e {
            Error::VaultNotFound { path } => UnlockError::NoVault(path),
            other => UnlockError::Vault(other),
        }
    }
}

impl From<ConfigError> for UnlockError {
    fn from(e: ConfigError) -> Self {
        UnlockError::Config(e)
    }
}

/// Reads the vault at `store` and opens it with the configured sources.
///
/// When no key fits and the file changed meanwhile (a rotate replaced the
/// vault and the key file between our two reads), both are read again and
/// tried once more, so a reader racing a rotate never gets a false miss.
pub fn open(store: &Store, cfg: &Config) -> Result<Vault, UnlockError> {
    let sealed = store.read()?;
    match unlock(&sealed, cfg) {
        Err(UnlockError::NoKey(attempts)) => {
            let again = store.read()?;
            if again.salt() == sealed.salt() {
                return Err(UnlockError::NoKey(attempts));
            }
            unlock(&again, cfg)
        }
        other => other,
    }
}

/// Opens `sealed` with the first configured source whose key fits.
pub fn unlock(sealed: &SealedVault, cfg: &Config) -> Result<Vault, UnlockError> {
    unlock_with_source(sealed, cfg).map(|(v, _)| v)
}

/// [`unlock`], also saying which source opened the vault.
pub fn unlock_with_source(
    sealed: &SealedVault,
    cfg: &Config,
) -> Result<(Vault, SourceKind), UnlockError> {
    let mut attempts = Vec::new();
    for &kind in &cfg.order {
        let src = source::for_kind(kind, cfg);
        let key = match src.key(sealed) {
            Ok(k) => k,
            Err(e) => {
                attempts.push(Attempt {
                    source: kind,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let from_cache = matches!(key, Key::Delegated(..));
        match sealed.open(&key) {
            Ok(vault) => return Ok((vault, kind)),
            Err(Error::NoMatchingKey { .. }) => attempts.push(Attempt {
                source: kind,
                why: "its key does not open this vault".into(),
            }),
            // A master key from an agent or the cache that fails the
            // commitment belongs to an older version of the vault (rotated
            // since): that source has no key, the vault is not damaged.
            Err(Error::CommitmentMismatch | Error::OtherVersion) if from_cache => {
                attempts.push(Attempt {
                    source: kind,
                    why: "its key is for an older version of this vault (rotated since?)".into(),
                })
            }
            Err(e) => return Err(UnlockError::Vault(e)),
        }
    }
    Err(UnlockError::NoKey(attempts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use devc_vault::{KeySecret, SlotKind, keyfile};

    use crate::environment::PromptPolicy;

    fn vault_with_key() -> (SealedVault, KeySecret) {
        let secret = KeySecret::generate();
        let mut v = Vault::create();
        v.add_secret_slot(SlotKind::KeyFile, &secret).expect("slot");
        let bytes = v.seal().expect("seal");
        (SealedVault::parse(bytes).expect("parse"), secret)
    }

    fn cfg(dir: &std::path::Path, order: Vec<SourceKind>) -> Config {
        let mut c = Config::defaults();
        c.order = order;
        c.key_file = dir.join("key");
        c.agent_sockets = vec![dir.join("agent.sock")];
        c.cache_socket = dir.join("cache.sock");
        c.prompt = PromptPolicy::Never;
        c
    }

    #[test]
    fn every_source_tried_is_listed_in_one_line() {
        let t = tempfile::tempdir().expect("tmp");
        let (sealed, _) = vault_with_key();
        let c = cfg(
            t.path(),
            vec![
                SourceKind::File,
                SourceKind::Agent,
                SourceKind::Passphrase,
                SourceKind::Command,
            ],
        );
        let e = unlock(&sealed, &c).expect_err("no key");
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        for part in [
            "file: ",
            "key not found",
            "agent: no agent at ",
            "passphrase: the vault has no passphrase slot",
            "command: no key_command in the config",
        ] {
            assert!(line.contains(part), "missing {part:?} in {line}");
        }
    }

    #[test]
    fn file_source_refuses_open_modes_and_wrong_keys() {
        let t = tempfile::tempdir().expect("tmp");
        let (sealed, secret) = vault_with_key();
        let c = cfg(t.path(), vec![SourceKind::File]);
        std::fs::write(&c.key_file, keyfile::render(&secret).as_bytes()).expect("write");
        std::fs::set_permissions(&c.key_file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let line = unlock(&sealed, &c).expect_err("0644 refused").to_string();
        assert!(line.contains("chmod 600"), "{line}");

        std::fs::set_permissions(&c.key_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let (_, src) = unlock_with_source(&sealed, &c).expect("opens");
        assert_eq!(src, SourceKind::File);

        let other = KeySecret::generate();
        std::fs::write(&c.key_file, keyfile::render(&other).as_bytes()).expect("write");
        let line = unlock(&sealed, &c).expect_err("wrong key").to_string();
        assert!(line.contains("does not open this vault"), "{line}");

        std::fs::write(&c.key_file, b"devc-vault-key v1 nothex\n").expect("write");
        let line = unlock(&sealed, &c).expect_err("malformed").to_string();
        assert!(line.contains("malformed"), "{line}");
    }

    #[test]
    fn key_command_opens_the_vault() {
        let t = tempfile::tempdir().expect("tmp");
        let (sealed, secret) = vault_with_key();
        let key = t.path().join("k");
        std::fs::write(&key, keyfile::render(&secret).as_bytes()).expect("write");
        let mut c = cfg(t.path(), vec![SourceKind::Command]);
        c.key_command = Some(vec!["cat".into(), key.display().to_string()]);
        let (_, src) = unlock_with_source(&sealed, &c).expect("opens");
        assert_eq!(src, SourceKind::Command);
    }
}
