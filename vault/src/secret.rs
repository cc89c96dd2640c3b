//! Types that hold secrets. Each zeroizes on drop and prints `[redacted]`
//! under `Debug`; none implements `Display`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::primitives::{KEY_LEN, random};

macro_rules! redacted_debug {
    ($t:ty) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

/// The vault master key: 32 random bytes, stable across writes.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);
redacted_debug!(MasterKey);

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Self {
        MasterKey(Zeroizing::new(random()))
    }
    /// Wraps bytes received from a trusted source (an agent's reply).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }
    /// The key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The 32-byte secret held in a key file (or in an agent).
#[derive(Clone)]
pub struct KeySecret(Zeroizing<[u8; KEY_LEN]>);
redacted_debug!(KeySecret);

impl KeySecret {
    /// A fresh random key secret.
    pub fn generate() -> Self {
        KeySecret(Zeroizing::new(random()))
    }
    /// Wraps existing bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        KeySecret(Zeroizing::new(bytes))
    }
    /// The key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// A passphrase, as typed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);
redacted_debug!(Passphrase);

impl Passphrase {
    /// Takes ownership of a passphrase string.
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }
    /// The passphrase bytes.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A credential secret stored in an entry (a password, token or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);
redacted_debug!(Secret);

impl Secret {
    /// Takes ownership of a secret string.
    pub fn new(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}
