//! One error enum whose variants mirror the vault's failure classes.
//!
//! Messages never carry secret material: only paths, counts, slot ids and
//! the names of fields.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong reading, opening or writing a vault.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The first line names a format version this build does not know.
    UnknownVersion {
        /// The version token found (printable ASCII only, truncated).
        found: String,
    },
    /// The header does not follow the v1 grammar.
    MalformedHeader {
        /// 1-based line number of the offending header line.
        line: usize,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// No keyslot could be opened with the keys that were offered.
    NoMatchingKey {
        /// A hint for the user (e.g. an interrupted rotate), never a secret.
        hint: Option<String>,
    },
    /// A slot asks for more key-derivation work than the caps allow.
    ExcessiveWork {
        /// Which parameter exceeded its cap, with the value and the cap.
        what: String,
    },
    /// The header MAC does not match the header bytes.
    HeaderTampered,
    /// The key commitment does not match the unwrapped master key.
    CommitmentMismatch,
    /// Keys from an agent or cache are for another version of the vault
    /// (it was written since they were handed out).
    OtherVersion,
    /// The agent or cache that opened the vault gave no keys for a write.
    KeyService {
        /// Why (never a secret).
        reason: String,
    },
    /// The operation needs the vault's master key (a key file or a
    /// passphrase); keys from an agent or a cache only read and write entries.
    NeedsMasterKey,
    /// The payload failed authenticated decryption.
    PayloadTampered,
    /// The decrypted payload is not a valid v1 payload.
    MalformedPayload {
        /// What was wrong with it.
        reason: String,
    },
    /// The file ends before the header or payload is complete.
    Truncated,
    /// Bytes follow the payload.
    TrailingData {
        /// How many extra bytes there are.
        extra: u64,
    },
    /// A file or value exceeds its size cap.
    Oversized {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes (or count).
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// A path that must be a regular file is something else (a symbolic
    /// link where none is followed, a FIFO, a directory, ...).
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it should be (`vault`, `lock file`, `key file`).
        what: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// Another writer held the vault's lock for longer than the wait allows.
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, if it said (`pid N (program)`).
        holder: Option<String>,
        /// How long we waited, in seconds.
        waited: u64,
    },
    /// The vault file does not exist.
    VaultNotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Refusing to overwrite an existing vault or key file.
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A key file is accessible by group or others.
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A vault exists but the key file that should open it does not.
    MissingKeyFile {
        /// Where the key file was expected.
        path: PathBuf,
    },
    /// A key file is not in the strict key-file form.
    MalformedKeyFile {
        /// The key file, if it came from one.
        path: Option<PathBuf>,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Removing this slot would leave the vault without any slot.
    LastSlot,
    /// No slot has this id.
    UnknownSlot {
        /// The id asked for.
        id: String,
    },
    /// The vault already holds the maximum number of slots.
    TooManySlots,
    /// Rotate would drop slots whose keys were not supplied.
    LockedSlots {
        /// The ids (and kinds) of those slots.
        slots: Vec<String>,
    },
    /// An entry field is invalid (empty where required, control characters).
    InvalidEntry {
        /// What is wrong.
        reason: String,
    },
    /// An operating-system error on a file.
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(line: usize, reason: &'static str) -> Self {
        Error::MalformedHeader { line, reason }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownVersion { found } => write!(
                f,
                "unknown vault format version {found:?}: this file was written by a newer or different tool; upgrade devc-vault"
            ),
            Error::MalformedHeader { line, reason } => write!(
                f,
                "malformed vault header at line {line}: {reason}; the file is damaged or not a devc-vault vault"
            ),
            Error::NoMatchingKey { hint } => {
                write!(
                    f,
                    "no key opens this vault: the key file or passphrase is wrong"
                )?;
                match hint {
                    Some(h) => write!(f, " ({h})"),
                    None => write!(
                        f,
                        " (check --key-file / DEVC_VAULT_KEY_FILE, or the passphrase)"
                    ),
                }
            }
            Error::ExcessiveWork { what } => write!(
                f,
                "refusing to open: the vault asks for excessive key-derivation work ({what}); it was crafted or damaged"
            ),
            Error::OtherVersion => write!(
                f,
                "the keys are for another version of this vault (it was written since); ask again"
            ),
            Error::KeyService { reason } => {
                write!(f, "no keys for writing the vault: {reason}")
            }
            Error::NeedsMasterKey => write!(
                f,
                "this needs the vault's own key: pass --key-file or --passphrase-fd (keys from an agent or a passphrase cache only read and write credentials)"
            ),
            Error::HeaderTampered => write!(
                f,
                "vault header authentication failed: the header was modified; restore the vault from a backup"
            ),
            Error::CommitmentMismatch => write!(
                f,
                "vault key commitment mismatch: the header was modified or the key belongs to another vault"
            ),
            Error::PayloadTampered => write!(
                f,
                "vault payload authentication failed: the encrypted contents were modified; restore the vault from a backup"
            ),
            Error::MalformedPayload { reason } => {
                write!(f, "vault contents are malformed: {reason}")
            }
            Error::Truncated => write!(f, "vault file is truncated: restore it from a backup"),
            Error::TrailingData { extra } => write!(
                f,
                "vault file has {extra} unexpected trailing byte(s): it was modified; restore it from a backup"
            ),
            Error::Oversized { what, size, cap } => {
                write!(f, "{what} is too large: {size} bytes, the limit is {cap}")
            }
            Error::NotAFile { path, what, found } => write!(
                f,
                "refusing {}: the {what} must be a regular file, and it is {found}; move it away",
                path.display()
            ),
            Error::LockTimeout {
                path,
                holder,
                waited,
            } => write!(
                f,
                "another writer has held {} for over {waited}s{}; try again, or stop that process",
                path.display(),
                holder
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            ),
            Error::VaultNotFound { path } => write!(
                f,
                "no vault at {}: create one with `devc-vault init`, or point --vault / DEVC_VAULT at it",
                path.display()
            ),
            Error::AlreadyExists { path } => write!(
                f,
                "{} already exists; refusing to overwrite it",
                path.display()
            ),
            Error::KeyFilePermissions { path, mode } => write!(
                f,
                "key file {} has mode {:04o}, so group or others can read it; run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
            Error::MissingKeyFile { path } => write!(
                f,
                "the vault exists but its key file {} does not; restore the key file, or move the vault away to start over",
                path.display()
            ),
            Error::MalformedKeyFile { path, reason } => match path {
                Some(p) => write!(
                    f,
                    "key file {} is malformed: {reason}; it must be a key written by `devc-vault init`",
                    p.display()
                ),
                None => write!(f, "key is malformed: {reason}"),
            },
            Error::LastSlot => write!(
                f,
                "refusing to remove the last keyslot: the vault could never be opened again; add another slot first"
            ),
            Error::UnknownSlot { id } => {
                write!(f, "no keyslot with id {id:?}; see `devc-vault slot list`")
            }
            Error::TooManySlots => {
                write!(f, "the vault already has the maximum number of keyslots")
            }
            Error::LockedSlots { slots } => write!(
                f,
                "rotate would drop keyslot(s) {} whose keys were not supplied; supply their keys or pass --drop-locked-slots",
                slots.join(", ")
            ),
            Error::InvalidEntry { reason } => write!(f, "invalid entry: {reason}"),
            Error::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
