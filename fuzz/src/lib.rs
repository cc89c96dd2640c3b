//! What the fuzz targets share: the fixed key, a vault sealed around any
//! plaintext, vaults in a temporary directory for the helpers' whole verb
//! paths, and the split of one input into several requests.
//!
//! Nothing here reaches into the crates' internals: every target goes
//! through their public API, as the helpers and the CLI do.

use std::fs;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use devc_keydelivery::{Config, PromptPolicy, SourceKind};
use devc_vault::{DockerEntry, GitEntry, KeySecret, SlotKind, Store, Vault, keyfile};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key every vault target opens with: the key of the `ok-keyfile` test
/// vector, so the vectors that are intact vaults open all the way.
pub const FIXED_KEY_LINE: &str =
    "devc-vault-key v1 4d746d7088c3e0bb2129979abea6775232d0914be69b19c36f714024ee9f393c";

/// [`FIXED_KEY_LINE`]'s secret.
pub fn fixed_secret() -> KeySecret {
    keyfile::parse(FIXED_KEY_LINE.as_bytes()).expect("FIXED_KEY_LINE is a key line")
}

fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

fn gcm(key: &[u8; 32], nonce: &[u8; 12], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(&Nonce::from(*nonce), Payload { msg, aad })
        .expect("in-memory AES-GCM encryption")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seals any plaintext as the payload of a v1 vault that [`fixed_secret`]
/// opens, so a target can hand the payload parser arbitrary bytes through
/// the public `SealedVault::parse` and `open`.
///
/// This is a second, independent implementation of docs/FORMAT.md (slot
/// id, KEK, wrapped master key, per-write keys, header MAC, payload AEAD),
/// written from the document rather than from the library: when the two
/// disagree, every input fails to open and the target says so.
/// Deterministic: fixed ids, salts and nonces, so a crash reproduces.
pub struct Sealer {
    header_head: String,
    payload_key: [u8; 32],
    mac_key: [u8; 32],
    commit: [u8; 32],
}

impl Default for Sealer {
    fn default() -> Self {
        Sealer::new()
    }
}

impl Sealer {
    const VMK: [u8; 32] = [0x5a; 32];
    const VAULT_ID: [u8; 16] = *b"fuzzfuzzfuzzfuzz";
    const SLOT_SALT: [u8; 32] = [0x11; 32];
    const SLOT_NONCE: [u8; 12] = [0x22; 12];
    const SALT: [u8; 32] = [0x33; 32];
    const NONCE: [u8; 12] = [0x44; 12];
    /// The `created` time written in the header.
    pub const CREATED: u64 = 1_795_973_090;

    /// Derives the keys once.
    pub fn new() -> Sealer {
        let secret = fixed_secret();
        let slot_id = &hkdf(secret.expose(), b"", b"devc-vault v1 key id")[..8];
        let kek = hkdf(
            secret.expose(),
            &Self::SLOT_SALT,
            b"devc-vault v1 keyfile kek",
        );
        let mut aad = Self::VAULT_ID.to_vec();
        aad.extend_from_slice(slot_id);
        let wrapped = gcm(&kek, &Self::SLOT_NONCE, &Self::VMK, &aad);
        let header_head = format!(
            "devc-vault v1\nid {}\ncreated {}\nslot keyfile {} {} {} {}\nsalt {}\n",
            hex(&Self::VAULT_ID),
            Self::CREATED,
            hex(slot_id),
            hex(&Self::SLOT_SALT),
            hex(&Self::SLOT_NONCE),
            hex(&wrapped),
            hex(&Self::SALT),
        );
        Sealer {
            header_head,
            payload_key: hkdf(&Self::VMK, &Self::SALT, b"devc-vault v1 payload key"),
            mac_key: hkdf(&Self::VMK, &Self::SALT, b"devc-vault v1 header mac key"),
            commit: hkdf(&Self::VMK, &Self::SALT, b"devc-vault v1 key commitment"),
        }
    }

    /// The whole vault file with `plaintext` as its payload.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let header = format!(
            "{}payload {}\ncommit {}\n",
            self.header_head,
            12 + plaintext.len() + 16,
            hex(&self.commit)
        );
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.mac_key)
            .expect("HMAC takes any key length");
        mac.update(header.as_bytes());
        let tag = mac.finalize().into_bytes();
        let ct = gcm(
            &self.payload_key,
            &Self::NONCE,
            plaintext,
            header.as_bytes(),
        );
        let mut out = header.into_bytes();
        out.extend_from_slice(format!("mac {}\n", hex(&tag)).as_bytes());
        out.extend_from_slice(&Self::NONCE);
        out.extend_from_slice(&ct);
        out
    }
}

/// A vault and its key file in a private temporary directory, for the
/// targets that run a helper's whole verb path (read, unlock, write).
///
/// The directory is on `/dev/shm` when that is writable (a write's fsyncs
/// cost nothing there), else in `std::env::temp_dir()`. It is named after
/// the target and the process id; a later run removes the directories of
/// processes that are gone (libFuzzer leaves by `exit`, which runs no
/// destructors).
pub struct TempVault {
    /// The directory.
    pub dir: PathBuf,
    /// The vault file.
    pub vault: PathBuf,
    /// The key file (mode 0600), holding [`fixed_secret`].
    pub key_file: PathBuf,
    pristine: Vec<u8>,
}

const DIR_PREFIX: &str = "devc-vault-fuzz-";

fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if let Some(dir) = std::env::var_os("DEVC_VAULT_FUZZ_TMP") {
        return PathBuf::from(dir);
    }
    let probe = shm.join(format!("{DIR_PREFIX}probe-{}", std::process::id()));
    if fs::create_dir(&probe).is_ok() {
        let _ = fs::remove_dir(&probe);
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Removes `devc-vault-fuzz-*-<pid>` directories whose process is gone.
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The entries every helper target's vault starts with: one docker entry per
/// URL form the registry rules know, git entries with and without a path,
/// expiry and refresh token.
pub fn sample_entries(v: &mut Vault) {
    for (url, user, secret) in [
        ("https://index.docker.io/v1/", "hub", "hub-secret"),
        ("host:5000", "u1", "s1"),
        ("https://[::1]:8080/path", "<token>", "idtoken"),
        ("http://plain.example", "p", "multi\nline\tsecret"),
    ] {
        v.upsert_docker(DockerEntry::new(url, user, secret.into()))
            .expect("sample docker entry");
    }
    v.upsert_git(GitEntry::new("https", "example.com", "alice", "pw1".into()))
        .expect("sample git entry");
    v.upsert_git(
        GitEntry::new("https", "example.com:8443", "bob", "pw2".into())
            .with_path(Some("org/repo.git".into()))
            .with_expiry(Some(2_000_000_000))
            .with_refresh_token(Some("refresh".into())),
    )
    .expect("sample git entry");
}

impl TempVault {
    /// Creates the key file and a vault with a key-file slot for
    /// [`fixed_secret`] and [`sample_entries`].
    pub fn new(target: &str) -> TempVault {
        let base = base_dir();
        remove_stale(&base);
        let dir = base.join(format!("{DIR_PREFIX}{target}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let key_file = dir.join("keys").join("devc-vault-key");
        let vault = dir.join("docker").join(".credentials.enc");
        keyfile::create(&key_file, &fixed_secret()).expect("create the key file");
        let mut v = Vault::create();
        v.add_secret_slot(SlotKind::KeyFile, &fixed_secret())
            .expect("key-file slot");
        sample_entries(&mut v);
        Store::new(&vault).create(&v).expect("create the vault");
        let pristine = fs::read(&vault).expect("read the new vault");
        TempVault {
            dir,
            vault,
            key_file,
            pristine,
        }
    }

    /// Key sources: the key file only, never a prompt, no agent, no cache.
    pub fn config(&self) -> Config {
        let mut c = Config::defaults();
        c.order = vec![SourceKind::File];
        c.key_file = self.key_file.clone();
        c.prompt = PromptPolicy::Never;
        c.start_cache = false;
        c.agent_sockets = Vec::new();
        c
    }

    /// Puts the vault back as [`TempVault::new`] made it, so every input
    /// starts from the same state (and a crash reproduces).
    pub fn reset(&self) {
        fs::write(&self.vault, &self.pristine).expect("restore the vault");
    }
}

/// Splits one fuzz input into at most `max` requests, each a verb byte and
/// the bytes up to the next NUL: `s{"ServerURL":…}\0gHOST\0l`. A verb byte
/// is its letter, or any other byte modulo the number of verbs.
pub fn requests<'a, V: Copy>(
    data: &'a [u8],
    verbs: &[(u8, V)],
    max: usize,
) -> impl Iterator<Item = (V, &'a [u8])> {
    let verbs: Vec<(u8, V)> = verbs.to_vec();
    data.split(|&b| b == 0).take(max).filter_map(move |rec| {
        let (&first, stdin) = rec.split_first()?;
        let verb = verbs
            .iter()
            .find(|(letter, _)| *letter == first)
            .map_or_else(|| verbs[usize::from(first) % verbs.len()].1, |v| v.1);
        Some((verb, stdin))
    })
}
