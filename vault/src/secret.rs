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

impl PartialEq for MasterKey {
    /// In constant time.
    fn eq(&self, other: &Self) -> bool {
        crate::primitives::ct_eq(&self.0, &other.0)
    }
}

impl Eq for MasterKey {}

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

/// Why [`read_capped`] failed.
#[derive(Debug)]
pub enum ReadCappedError {
    /// More than the cap was offered.
    TooLarge,
    /// Reading failed.
    Io(std::io::Error),
}

/// Reads all of `r` into a buffer that is wiped on drop, refusing more than
/// `cap` bytes. The buffer grows by hand, never by `Vec`'s reallocation, so
/// no freed copy of a secret is left behind in the heap.
pub fn read_capped(
    r: &mut dyn std::io::Read,
    cap: usize,
) -> Result<Zeroizing<Vec<u8>>, ReadCappedError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(cap.min(4096)));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        let n = match r.read(&mut chunk[..]) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadCappedError::Io(e)),
        };
        if buf.len() + n > cap {
            return Err(ReadCappedError::TooLarge);
        }
        if buf.len() + n > buf.capacity() {
            let want = (buf.capacity() * 2).max(buf.len() + n).min(cap);
            let mut bigger = Zeroizing::new(Vec::with_capacity(want));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
