//! The v1 file format (docs/FORMAT.md is the specification):
//!
//! ```text
//! devc-vault v1
//! id <32 hex>
//! created <unix seconds>
//! slot <kind> <id> [m=<KiB> t=<n> p=<n>] <salt> <nonce> <wrapped>   (1 to 32 lines)
//! salt <64 hex>
//! payload <length in bytes>
//! commit <64 hex>
//! mac <64 hex>
//! <payload: 12-byte nonce || AES-256-GCM ciphertext || 16-byte tag>
//! ```
//!
//! The header is every byte up to and including the `commit` line. The MAC
//! covers those bytes as read; the payload's associated data is the same bytes.

use std::fmt;

use std::sync::Arc;

use crate::access::{AccessKeys, Authority, KeyService, SALT_LEN};
use crate::entry::Payload;
use crate::error::{Error, Result};
use crate::hex;
use crate::primitives::{self, Argon2Cost, KEY_LEN, NONCE_LEN, TAG_LEN, random};
use crate::secret::{KeySecret, MasterKey, Passphrase};
use crate::slot::{Slot, SlotKind};

/// The vault format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The version line every v1 vault starts with.
pub const MAGIC: &[u8] = b"devc-vault v1";
/// Largest vault file accepted or written (16 MiB).
pub const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;
/// Largest number of keyslots.
pub const MAX_SLOTS: usize = 32;
/// Longest header line; longer means damage, not a bigger vault.
const MAX_LINE_LEN: usize = 512;

/// A vault's random 16-byte identity, fixed at creation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VaultId(pub [u8; 16]);

impl VaultId {
    /// A fresh random id.
    pub fn generate() -> VaultId {
        VaultId(random())
    }
    /// Parses the 32-hex-digit form.
    pub fn parse(s: &str) -> Option<VaultId> {
        hex::decode(s.as_bytes()).map(VaultId)
    }
}

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({self})")
    }
}

/// A key offered to open a vault.
#[derive(Clone, Debug)]
pub enum Key {
    /// A key file's (or agent's) 32-byte secret.
    Secret(KeySecret),
    /// A passphrase.
    Passphrase(Passphrase),
    /// The master key itself, when the caller unwrapped it (a passphrase
    /// prompt that then hands it to the cache); never from an agent.
    Master(MasterKey),
    /// The keys of this version of the vault, as an agent or a passphrase
    /// cache answers them, and the service that gives keys for the next.
    Delegated(AccessKeys, Arc<dyn KeyService>),
}

/// A parsed, still-encrypted vault: the header is readable, nothing else.
#[derive(Clone, Debug)]
pub struct SealedVault {
    /// The vault's id.
    pub id: VaultId,
    /// Creation time, unix seconds.
    pub created: u64,
    /// The keyslots, in file order.
    pub slots: Vec<Slot>,
    salt: [u8; SALT_LEN],
    commit: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
    /// The whole file; the header is `..header_end`, the payload `payload_start..`.
    bytes: Vec<u8>,
    header_end: usize,
    payload_start: usize,
}

/// Parses a decimal with no sign and no leading zeros (one spelling per number).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads header lines; each must end in `\n` within `MAX_LINE_LEN` bytes.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Result<&'a [u8]> {
        self.number += 1;
        let rest = &self.bytes[self.pos..];
        let window = &rest[..rest.len().min(MAX_LINE_LEN + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None if window.len() == rest.len() => Err(Error::Truncated),
            None => Err(Error::malformed(self.number, "line too long")),
        }
    }

    /// The next line as `keyword` followed by space-separated fields.
    fn keyword(&mut self, keyword: &[u8]) -> Result<Vec<&'a [u8]>> {
        let line = self.next()?;
        let mut fields = line.split(|&b| b == b' ');
        if fields.next() != Some(keyword) {
            return Err(Error::malformed(self.number, "unexpected line"));
        }
        Ok(fields.collect())
    }

    fn single<const N: usize>(&mut self, keyword: &[u8], what: &'static str) -> Result<[u8; N]> {
        match self.keyword(keyword)?.as_slice() {
            [v] => hex::decode(v).ok_or(Error::malformed(self.number, what)),
            _ => Err(Error::malformed(self.number, what)),
        }
    }

    fn decimal(&mut self, keyword: &[u8], what: &'static str) -> Result<u64> {
        match self.keyword(keyword)?.as_slice() {
            [v] => parse_decimal(v).ok_or(Error::malformed(self.number, what)),
            _ => Err(Error::malformed(self.number, what)),
        }
    }
}

/// [`parse`], keeping the buffer instead of copying it (a large vault's
/// payload is most of its bytes).
pub fn parse_owned(bytes: Vec<u8>) -> Result<SealedVault> {
    let fields = parse_fields(&bytes)?;
    Ok(SealedVault { bytes, ..fields })
}

fn parse_fields(bytes: &[u8]) -> Result<SealedVault> {
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(Error::Oversized {
            what: "vault file",
            size: bytes.len() as u64,
            cap: MAX_FILE_LEN,
        });
    }
    let mut lines = Lines {
        bytes,
        pos: 0,
        number: 0,
    };
    let version = lines.next()?;
    if version != MAGIC {
        return Err(match version.strip_prefix(b"devc-vault ") {
            Some(v) => Error::UnknownVersion {
                found: v
                    .iter()
                    .take(16)
                    .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                    .collect(),
            },
            None => Error::malformed(1, "not a devc-vault vault (bad first line)"),
        });
    }
    let id = VaultId(lines.single::<16>(b"id", "bad vault id")?);
    let created = lines.decimal(b"created", "bad creation time")?;

    let mut slots = Vec::new();
    let salt = loop {
        let fields = {
            let line = lines.next()?;
            line.split(|&b| b == b' ').collect::<Vec<_>>()
        };
        match fields.as_slice() {
            [b"slot", rest @ ..] => {
                if slots.len() == MAX_SLOTS {
                    return Err(Error::Oversized {
                        what: "keyslot count",
                        size: MAX_SLOTS as u64 + 1,
                        cap: MAX_SLOTS as u64,
                    });
                }
                slots.push(Slot::parse_fields(rest, lines.number)?);
            }
            [b"salt", v] if !slots.is_empty() => {
                break hex::decode::<32>(v).ok_or(Error::malformed(lines.number, "bad salt"))?;
            }
            [b"salt", _] => {
                return Err(Error::malformed(
                    lines.number,
                    "a vault needs at least one slot",
                ));
            }
            _ => {
                return Err(Error::malformed(
                    lines.number,
                    "expected a slot or salt line",
                ));
            }
        }
    };
    check_work(&slots)?;
    let payload_len = lines.decimal(b"payload", "bad payload length")?;
    let commit = lines.single::<KEY_LEN>(b"commit", "bad commitment")?;
    let header_end = lines.pos;
    let mac = lines.single::<KEY_LEN>(b"mac", "bad header MAC")?;

    if payload_len < (NONCE_LEN + TAG_LEN) as u64 {
        return Err(Error::malformed(
            lines.number - 2,
            "payload length too small",
        ));
    }
    let rest = (bytes.len() - lines.pos) as u64;
    if rest < payload_len {
        return Err(Error::Truncated);
    }
    if rest > payload_len {
        return Err(Error::TrailingData {
            extra: rest - payload_len,
        });
    }
    Ok(SealedVault {
        id,
        created,
        slots,
        salt,
        commit,
        mac,
        bytes: Vec::new(),
        header_end,
        payload_start: lines.pos,
    })
}

/// Refuses slots whose derivations add up to more than
/// [`Argon2Cost::MAX_FILE_WORK`] (each slot is within its own caps already):
/// a reader tries every passphrase slot, so the file decides the total.
pub(crate) fn check_work(slots: &[Slot]) -> Result<()> {
    let total: u64 = slots
        .iter()
        .filter_map(|s| match s.kind {
            SlotKind::Passphrase(c) => Some(c.work()),
            _ => None,
        })
        .sum();
    if total > Argon2Cost::MAX_FILE_WORK {
        return Err(Error::ExcessiveWork {
            what: format!(
                "its passphrase slots ask for {total} KiB-passes of argon2id in all, over the {} a vault may ask (ten unlocks at the default cost)",
                Argon2Cost::MAX_FILE_WORK
            ),
        });
    }
    Ok(())
}

impl SealedVault {
    /// Parses a whole vault file strictly (see [`crate::Store::read`] for
    /// reading one from disk). No key is needed or used.
    pub fn parse(bytes: Vec<u8>) -> Result<SealedVault> {
        parse_owned(bytes)
    }

    /// The salt of this version (what an agent derives its keys from).
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// Finds a slot the key opens and returns the master key.
    ///
    /// Key-file secrets try the slot whose id is the key's fingerprint first.
    pub fn unwrap_master(&self, key: &Key) -> Result<MasterKey> {
        let found = match key {
            Key::Master(vmk) => Some(vmk.clone()),
            Key::Delegated(..) => return Err(Error::NeedsMasterKey),
            Key::Secret(secret) => {
                let id = crate::slot::SlotId::of_secret(secret);
                let mut order: Vec<&Slot> = self.slots.iter().filter(|s| s.id == id).collect();
                order.extend(self.slots.iter().filter(|s| s.id != id));
                order
                    .into_iter()
                    .find_map(|s| s.unwrap_secret(&self.id, secret))
            }
            Key::Passphrase(p) => {
                let mut found = None;
                for s in self
                    .slots
                    .iter()
                    .filter(|s| matches!(s.kind, SlotKind::Passphrase(_)))
                {
                    if let Some(vmk) = s.unwrap_passphrase(&self.id, p)? {
                        found = Some(vmk);
                        break;
                    }
                }
                found
            }
        };
        found.ok_or(Error::NoMatchingKey { hint: None })
    }

    /// Opens the vault with a key: unwrap, commitment, header MAC, payload.
    pub fn open(&self, key: &Key) -> Result<crate::Vault> {
        match key {
            Key::Delegated(keys, service) => {
                if keys.salt != self.salt {
                    return Err(Error::OtherVersion);
                }
                let payload = self.decrypt(keys)?;
                Ok(self.vault(Authority::Delegated(Arc::clone(service)), payload))
            }
            _ => self.open_with_master(self.unwrap_master(key)?),
        }
    }

    /// Opens the vault with its master key (the last three checks of `open`).
    pub fn open_with_master(&self, vmk: MasterKey) -> Result<crate::Vault> {
        let payload = self.decrypt(&AccessKeys::derive(&vmk, self.salt))?;
        Ok(self.vault(Authority::Master(vmk), payload))
    }

    fn vault(&self, authority: Authority, payload: Payload) -> crate::Vault {
        crate::Vault::from_parts(
            self.id,
            self.created,
            self.slots.clone(),
            authority,
            payload,
        )
    }

    /// Commitment, header MAC, payload: the checks after a key was found.
    fn decrypt(&self, keys: &AccessKeys) -> Result<Payload> {
        if !primitives::ct_eq(&keys.commit, &self.commit) {
            return Err(Error::CommitmentMismatch);
        }
        let header = &self.bytes[..self.header_end];
        if !primitives::hmac_verify(&keys.mac, header, &self.mac) {
            return Err(Error::HeaderTampered);
        }
        let (nonce, ct) = self.bytes[self.payload_start..].split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("payload length checked at parse");
        let plain =
            primitives::open(&keys.payload, &nonce, ct, header).ok_or(Error::PayloadTampered)?;
        Payload::from_json(&plain)
    }
}

/// Serializes and encrypts a vault under `keys` (a fresh salt's, so fresh
/// payload and MAC keys for every write).
pub fn seal(
    id: &VaultId,
    created: u64,
    slots: &[Slot],
    keys: &AccessKeys,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    assert!(
        !slots.is_empty() && slots.len() <= MAX_SLOTS,
        "slot count is checked by Vault"
    );
    let salt = keys.salt;
    let payload_len = (NONCE_LEN + plaintext.len() + TAG_LEN) as u64;

    let mut header = String::new();
    header.push_str(std::str::from_utf8(MAGIC).expect("ASCII"));
    header.push('\n');
    header.push_str(&format!("id {id}\ncreated {created}\n"));
    for s in slots {
        header.push_str(&s.to_line());
        header.push('\n');
    }
    header.push_str(&format!(
        "salt {}\npayload {payload_len}\ncommit {}\n",
        hex::encode(&salt),
        hex::encode(&keys.commit)
    ));
    let mac = primitives::hmac(&keys.mac, header.as_bytes());
    let nonce = random::<NONCE_LEN>();
    let ct = primitives::seal(&keys.payload, &nonce, plaintext, header.as_bytes());

    let mut out = header.into_bytes();
    out.extend_from_slice(format!("mac {}\n", hex::encode(&mac)).as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    if out.len() as u64 > MAX_FILE_LEN {
        return Err(Error::Oversized {
            what: "vault",
            size: out.len() as u64,
            cap: MAX_FILE_LEN,
        });
    }
    Ok(out)
}
