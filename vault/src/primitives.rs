//! The few cryptographic operations the format uses, in one place, each a
//! thin call into a RustCrypto crate: AES-256-GCM, HKDF-SHA256,
//! HMAC-SHA256, Argon2id, and the OS random number generator.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of every symmetric key and MAC in the format.
pub const KEY_LEN: usize = 32;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Fills an array from the operating system's random number generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS RNG failing is not recoverable and must never be papered over
    // with weaker randomness.
    getrandom::fill(&mut out).expect("the operating system's random number generator failed");
    out
}

/// HKDF-SHA256 expanding `ikm` under `salt` and `info` to one 32-byte key.
pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hk.expand(info, okm.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8; KEY_LEN], data: &[u8]) -> [u8; KEY_LEN] {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time.
pub fn hmac_verify(key: &[u8; KEY_LEN], data: &[u8], tag: &[u8; KEY_LEN]) -> bool {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

/// Constant-time equality of two 32-byte values.
pub fn ct_eq(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> bool {
    a.ct_eq(b).into()
}

/// AES-256-GCM encryption; returns ciphertext || tag.
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .encrypt(&Nonce::from(*nonce), Payload { msg, aad })
        .expect("AES-GCM encryption of an in-memory buffer cannot fail")
}

/// AES-256-GCM decryption of ciphertext || tag; `None` when authentication fails.
pub fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if ciphertext.len() < TAG_LEN {
        return None;
    }
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Argon2id cost parameters as stored in a passphrase slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism (lanes).
    pub p: u32,
}

impl Argon2Cost {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    pub const DEFAULT: Argon2Cost = Argon2Cost {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };
    /// Largest memory cost a vault may ask for (1 GiB).
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    /// Largest pass count a vault may ask for.
    pub const MAX_T: u32 = 10;
    /// Largest lane count a vault may ask for.
    pub const MAX_P: u32 = 8;

    /// Work done by one derivation, in KiB-passes (memory times passes;
    /// lanes split the same work).
    pub fn work(&self) -> u64 {
        u64::from(self.m_kib) * u64::from(self.t)
    }

    /// The most derivation work one vault file may ask of a reader, over
    /// all its passphrase slots: ten derivations at the default cost.
    pub const MAX_FILE_WORK: u64 = 10 * (64 * 1024) * 3;

    /// Refuses costs above the caps, before any work is done.
    pub fn check_caps(&self) -> Result<()> {
        let over = |name: &str, v: u32, cap: u32| Error::ExcessiveWork {
            what: format!("argon2id {name}={v}, cap {cap}"),
        };
        if self.m_kib > Self::MAX_M_KIB {
            return Err(over("m (KiB)", self.m_kib, Self::MAX_M_KIB));
        }
        if self.t > Self::MAX_T {
            return Err(over("t", self.t, Self::MAX_T));
        }
        if self.p > Self::MAX_P {
            return Err(over("p", self.p, Self::MAX_P));
        }
        Ok(())
    }

    fn params(&self) -> Option<argon2::Params> {
        argon2::Params::new(self.m_kib, self.t, self.p, Some(KEY_LEN)).ok()
    }

    /// Whether argon2 accepts these parameters (m >= 8*p, t >= 1, p >= 1).
    pub fn is_valid(&self) -> bool {
        self.params().is_some()
    }
}

/// Argon2id(passphrase, salt) to a 32-byte key; caps are checked first.
pub fn argon2id(
    passphrase: &[u8],
    salt: &[u8],
    cost: Argon2Cost,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    cost.check_caps()?;
    let params = cost.params().ok_or(Error::ExcessiveWork {
        what: "argon2id parameters out of range".into(),
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut_slice())
        .map_err(|_| Error::ExcessiveWork {
            what: "argon2id rejected the parameters".into(),
        })?;
    Ok(out)
}
