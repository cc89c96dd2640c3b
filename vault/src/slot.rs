//! Keyslots (the LUKS2 model): each slot wraps the same vault master key
//! under its own key-encryption key (KEK). Any one slot opens the vault.
//!
//! | kind         | KEK                                                        |
//! |--------------|------------------------------------------------------------|
//! | `keyfile`    | HKDF-SHA256(key-file secret, slot salt, "devc-vault v1 keyfile kek") |
//! | `agent`      | HKDF-SHA256(agent secret, slot salt, "devc-vault v1 agent kek")      |
//! | `passphrase` | Argon2id(passphrase, slot salt, m, t, p)                   |
//!
//! The wrapped key is AES-256-GCM(KEK, nonce, master key, aad = vault id || slot id).

use std::fmt;

use crate::error::{Error, Result};
use crate::format::VaultId;
use crate::hex;
use crate::keyfile;
use crate::primitives::{self, Argon2Cost, KEY_LEN, NONCE_LEN, TAG_LEN, random};
use crate::secret::{KeySecret, MasterKey, Passphrase};

/// Length of a slot id in bytes.
pub const SLOT_ID_LEN: usize = 8;
/// Length of a slot's salt.
pub const SLOT_SALT_LEN: usize = 32;
/// Exact length of a wrapped master key (key + GCM tag).
pub const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;

/// A slot's id: the key's fingerprint for key-file and agent slots, random for passphrase slots.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId(pub [u8; SLOT_ID_LEN]);

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotId({self})")
    }
}

impl SlotId {
    /// Parses the 16-hex-digit form.
    pub fn parse(s: &str) -> Option<SlotId> {
        hex::decode(s.as_bytes()).map(SlotId)
    }
    /// The slot id a key secret's slots carry.
    pub fn of_secret(secret: &KeySecret) -> SlotId {
        SlotId::parse(&keyfile::key_id(secret)).expect("key_id is 16 hex digits")
    }
}

/// What kind of key opens a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A key file's secret.
    KeyFile,
    /// A passphrase stretched with Argon2id at these costs.
    Passphrase(Argon2Cost),
    /// A secret that lives only in a `devc-vault agent`.
    Agent,
}

impl SlotKind {
    /// The kind's name as written in the header.
    pub fn name(&self) -> &'static str {
        match self {
            SlotKind::KeyFile => "keyfile",
            SlotKind::Passphrase(_) => "passphrase",
            SlotKind::Agent => "agent",
        }
    }

    fn kek_label(&self) -> &'static [u8] {
        match self {
            SlotKind::KeyFile => b"devc-vault v1 keyfile kek",
            SlotKind::Agent => b"devc-vault v1 agent kek",
            SlotKind::Passphrase(_) => b"",
        }
    }
}

/// One keyslot as stored in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The kind of key that opens it.
    pub kind: SlotKind,
    /// Its id.
    pub id: SlotId,
    /// Salt for the KEK derivation.
    pub salt: [u8; SLOT_SALT_LEN],
    /// Nonce of the wrapped master key.
    pub nonce: [u8; NONCE_LEN],
    /// The wrapped master key (ciphertext || tag).
    pub wrapped: [u8; WRAPPED_LEN],
}

fn aad(vault: &VaultId, id: &SlotId) -> [u8; 16 + SLOT_ID_LEN] {
    let mut a = [0u8; 16 + SLOT_ID_LEN];
    a[..16].copy_from_slice(&vault.0);
    a[16..].copy_from_slice(&id.0);
    a
}

impl Slot {
    fn wrap(
        kind: SlotKind,
        id: SlotId,
        salt: [u8; SLOT_SALT_LEN],
        kek: &[u8; KEY_LEN],
        vault: &VaultId,
        vmk: &MasterKey,
    ) -> Slot {
        let nonce = random::<NONCE_LEN>();
        let ct = primitives::seal(kek, &nonce, vmk.expose(), &aad(vault, &id));
        let wrapped: [u8; WRAPPED_LEN] = ct.try_into().expect("GCM output is key + tag");
        Slot {
            kind,
            id,
            salt,
            nonce,
            wrapped,
        }
    }

    /// A slot that a key file (`KeyFile`) or an agent secret (`Agent`) opens.
    pub fn for_secret(
        kind: SlotKind,
        vault: &VaultId,
        vmk: &MasterKey,
        secret: &KeySecret,
    ) -> Slot {
        assert!(
            !matches!(kind, SlotKind::Passphrase(_)),
            "secret slots are keyfile or agent"
        );
        let salt = random::<SLOT_SALT_LEN>();
        let kek = primitives::hkdf(secret.expose(), &salt, kind.kek_label());
        Slot::wrap(kind, SlotId::of_secret(secret), salt, &kek, vault, vmk)
    }

    /// A slot that a passphrase opens, stretched with Argon2id at `cost`.
    pub fn for_passphrase(
        vault: &VaultId,
        vmk: &MasterKey,
        passphrase: &Passphrase,
        cost: Argon2Cost,
    ) -> Result<Slot> {
        let salt = random::<SLOT_SALT_LEN>();
        let kek = primitives::argon2id(passphrase.expose().as_bytes(), &salt, cost)?;
        Ok(Slot::wrap(
            SlotKind::Passphrase(cost),
            SlotId(random()),
            salt,
            &kek,
            vault,
            vmk,
        ))
    }

    fn unwrap_with_kek(&self, vault: &VaultId, kek: &[u8; KEY_LEN]) -> Option<MasterKey> {
        let pt = primitives::open(kek, &self.nonce, &self.wrapped, &aad(vault, &self.id))?;
        let bytes: [u8; KEY_LEN] = pt.as_slice().try_into().ok()?;
        Some(MasterKey::from_bytes(bytes))
    }

    /// Unwraps a keyfile or agent slot with a secret; `None` if it does not fit.
    pub fn unwrap_secret(&self, vault: &VaultId, secret: &KeySecret) -> Option<MasterKey> {
        if matches!(self.kind, SlotKind::Passphrase(_)) {
            return None;
        }
        let kek = primitives::hkdf(secret.expose(), &self.salt, self.kind.kek_label());
        self.unwrap_with_kek(vault, &kek)
    }

    /// Unwraps a passphrase slot; `Ok(None)` if the passphrase does not fit.
    pub fn unwrap_passphrase(
        &self,
        vault: &VaultId,
        passphrase: &Passphrase,
    ) -> Result<Option<MasterKey>> {
        let SlotKind::Passphrase(cost) = self.kind else {
            return Ok(None);
        };
        let kek = primitives::argon2id(passphrase.expose().as_bytes(), &self.salt, cost)?;
        Ok(self.unwrap_with_kek(vault, &kek))
    }

    /// The slot's header line, without the newline.
    pub fn to_line(&self) -> String {
        let params = match self.kind {
            SlotKind::Passphrase(c) => format!(" m={} t={} p={}", c.m_kib, c.t, c.p),
            _ => String::new(),
        };
        format!(
            "slot {} {}{} {} {} {}",
            self.kind.name(),
            self.id,
            params,
            hex::encode(&self.salt),
            hex::encode(&self.nonce),
            hex::encode(&self.wrapped)
        )
    }

    /// Parses a header slot line (`slot <kind> <id> ...`, no newline), strictly.
    pub fn parse_line(line: &str) -> Result<Slot> {
        let fields: Vec<&[u8]> = line.as_bytes().split(|&b| b == b' ').collect();
        match fields.as_slice() {
            [b"slot", rest @ ..] => Slot::parse_fields(rest, 1),
            _ => Err(Error::malformed(1, "not a slot line")),
        }
    }

    /// Parses a slot line (after `slot `), strictly; Argon2 caps are checked here.
    pub(crate) fn parse_fields(fields: &[&[u8]], line: usize) -> Result<Slot> {
        let bad = |reason| Error::malformed(line, reason);
        let (kind, rest) = match fields {
            [b"keyfile", rest @ ..] => (SlotKind::KeyFile, rest),
            [b"agent", rest @ ..] => (SlotKind::Agent, rest),
            [b"passphrase", id, m, t, p, rest @ ..] => {
                let cost = Argon2Cost {
                    m_kib: cost_field(m, b"m=", line)?,
                    t: cost_field(t, b"t=", line)?,
                    p: cost_field(p, b"p=", line)?,
                };
                cost.check_caps()?;
                if !cost.is_valid() {
                    return Err(bad("argon2id parameters out of range"));
                }
                // Put the id back in front so the common tail parses below.
                return Slot::parse_tail(SlotKind::Passphrase(cost), id, rest, line);
            }
            [_, ..] => return Err(bad("unknown slot kind")),
            [] => return Err(bad("empty slot line")),
        };
        match rest {
            [id, tail @ ..] => Slot::parse_tail(kind, id, tail, line),
            [] => Err(bad("slot line too short")),
        }
    }

    fn parse_tail(kind: SlotKind, id: &[u8], tail: &[&[u8]], line: usize) -> Result<Slot> {
        let bad = |reason| Error::malformed(line, reason);
        let [salt, nonce, wrapped] = tail else {
            return Err(bad("slot line has the wrong number of fields"));
        };
        Ok(Slot {
            kind,
            id: SlotId(hex::decode(id).ok_or_else(|| bad("bad slot id"))?),
            salt: hex::decode(salt).ok_or_else(|| bad("bad slot salt"))?,
            nonce: hex::decode(nonce).ok_or_else(|| bad("bad slot nonce"))?,
            wrapped: hex::decode(wrapped)
                .ok_or_else(|| bad("bad wrapped key length or encoding"))?,
        })
    }
}

/// Parses `name=<decimal>` with no sign, no leading zeros; values that do
/// not fit in u32 are excessive work, not malformed.
fn cost_field(field: &[u8], name: &[u8], line: usize) -> Result<u32> {
    let bad = || Error::malformed(line, "bad argon2id parameter");
    let digits = field.strip_prefix(name).ok_or_else(bad)?;
    let v = crate::format::parse_decimal(digits).ok_or_else(bad)?;
    u32::try_from(v).map_err(|_| Error::ExcessiveWork {
        what: format!("argon2id {}{v}", String::from_utf8_lossy(name)),
    })
}
