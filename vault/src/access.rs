//! The keys of one version of a vault: from the master key and the salt a
//! write draws, HKDF derives the payload key, the header MAC key and the key
//! commitment. An agent or a passphrase cache hands out only these, never the
//! master key: they open the one version whose salt they were derived for,
//! and seal one new version under a salt the agent chose.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::format::VaultId;
use crate::primitives::{self, KEY_LEN, random};
use crate::secret::MasterKey;
use crate::slot::Slot;

/// Length of a write's salt.
pub const SALT_LEN: usize = 32;
/// Length of [`AccessKeys::to_bytes`]: salt, payload key, MAC key, commitment.
pub const ACCESS_KEYS_LEN: usize = SALT_LEN + 3 * KEY_LEN;

const LABEL_PAYLOAD: &[u8] = b"devc-vault v1 payload key";
const LABEL_MAC: &[u8] = b"devc-vault v1 header mac key";
const LABEL_COMMIT: &[u8] = b"devc-vault v1 key commitment";

/// The keys of one version of a vault (one salt).
#[derive(Clone)]
pub struct AccessKeys {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) payload: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) mac: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) commit: [u8; KEY_LEN],
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for AccessKeys {
    /// In constant time.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.to_bytes(), other.to_bytes());
        let mut same = true;
        for (x, y) in a.chunks_exact(KEY_LEN).zip(b.chunks_exact(KEY_LEN)) {
            let x: &[u8; KEY_LEN] = x.try_into().expect("chunks_exact");
            let y: &[u8; KEY_LEN] = y.try_into().expect("chunks_exact");
            same &= primitives::ct_eq(x, y);
        }
        same
    }
}

impl Eq for AccessKeys {}

impl AccessKeys {
    /// The keys of the version written with `salt`.
    pub fn derive(vmk: &MasterKey, salt: [u8; SALT_LEN]) -> AccessKeys {
        AccessKeys {
            salt,
            payload: primitives::hkdf(vmk.expose(), &salt, LABEL_PAYLOAD),
            mac: primitives::hkdf(vmk.expose(), &salt, LABEL_MAC),
            commit: *primitives::hkdf(vmk.expose(), &salt, LABEL_COMMIT),
        }
    }

    /// The keys of a new version, under a fresh random salt.
    pub fn fresh(vmk: &MasterKey) -> AccessKeys {
        AccessKeys::derive(vmk, random())
    }

    /// The salt these keys belong to.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The wire form: salt, payload key, header MAC key, commitment.
    pub fn to_bytes(&self) -> Zeroizing<[u8; ACCESS_KEYS_LEN]> {
        let mut out = Zeroizing::new([0u8; ACCESS_KEYS_LEN]);
        out[..SALT_LEN].copy_from_slice(&self.salt);
        out[SALT_LEN..SALT_LEN + KEY_LEN].copy_from_slice(&self.payload[..]);
        out[SALT_LEN + KEY_LEN..SALT_LEN + 2 * KEY_LEN].copy_from_slice(&self.mac[..]);
        out[SALT_LEN + 2 * KEY_LEN..].copy_from_slice(&self.commit);
        out
    }

    /// Parses the wire form.
    pub fn from_bytes(bytes: &[u8; ACCESS_KEYS_LEN]) -> AccessKeys {
        let part = |i: usize| -> [u8; KEY_LEN] {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(&bytes[i..i + KEY_LEN]);
            k
        };
        AccessKeys {
            salt: part(0),
            payload: Zeroizing::new(part(SALT_LEN)),
            mac: Zeroizing::new(part(SALT_LEN + KEY_LEN)),
            commit: part(SALT_LEN + 2 * KEY_LEN),
        }
    }
}

/// Whoever holds a vault's master key on a vault's behalf (an agent, a
/// passphrase cache) and hands out [`AccessKeys`] for new versions.
pub trait KeyService: fmt::Debug + Send + Sync {
    /// Keys for a new version of `vault`, under a salt the service draws.
    /// `slots` are the vault's slots (public header data), for the service
    /// to find the master key with.
    fn write_keys(&self, vault: &VaultId, slots: &[Slot]) -> Result<AccessKeys>;
}

/// What a [`crate::Vault`] can do with its keys.
#[derive(Clone, Debug)]
pub(crate) enum Authority {
    /// The master key itself (a key file or a passphrase opened the vault):
    /// everything, slots and rotation included.
    Master(MasterKey),
    /// Keys handed out for one version, and a service for the next:
    /// reading and changing entries only.
    Delegated(Arc<dyn KeyService>),
}
