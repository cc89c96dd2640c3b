//! The key file: one line, `devc-vault-key v1 <64 lowercase hex>`, with an
//! optional final newline and nothing else. Mode 0600; a file that group or
//! others can access is refused, as ssh refuses such private keys.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::file;
use crate::format::{Key, SealedVault};
use crate::hex;
use crate::primitives::{KEY_LEN, hkdf};
use crate::secret::KeySecret;
use crate::store::pending_key_path;

const PREFIX: &[u8] = b"devc-vault-key v1 ";
/// Exact length of a key file's line, without its newline.
pub const LINE_LEN: usize = PREFIX.len() + 2 * KEY_LEN;

/// Parses the key file text form.
pub fn parse(bytes: &[u8]) -> std::result::Result<KeySecret, &'static str> {
    let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if line.len() != LINE_LEN {
        return Err("expected one line `devc-vault-key v1 <64 hex digits>`");
    }
    let rest = line
        .strip_prefix(PREFIX)
        .ok_or("it does not start with `devc-vault-key v1 `")?;
    hex::decode::<KEY_LEN>(rest)
        .map(KeySecret::from_bytes)
        .ok_or("the key is not 64 lowercase hex digits")
}

/// Renders a key secret in the key file text form.
pub fn render(secret: &KeySecret) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(LINE_LEN + 1));
    s.push_str(std::str::from_utf8(PREFIX).expect("ASCII prefix"));
    s.push_str(&hex::encode(secret.expose()));
    s.push('\n');
    s
}

/// The public fingerprint of a key secret: 16 hex digits, used as its slot id.
pub fn key_id(secret: &KeySecret) -> String {
    let id = hkdf(secret.expose(), b"", b"devc-vault v1 key id");
    hex::encode(&id[..8])
}

/// Reads and checks a key file: a regular file (opened without blocking;
/// a symbolic link is followed, as secrets mounts use them), permissions,
/// then size, then form.
pub fn read(path: &Path) -> Result<KeySecret> {
    let (file, meta) = file::open_regular(path, true, "key file").map_err(|e| match e {
        Error::Io { source, .. } => Error::io("read key file", path, source),
        other => other,
    })?;
    if meta.mode() & 0o077 != 0 {
        return Err(Error::KeyFilePermissions {
            path: path.to_path_buf(),
            mode: meta.mode(),
        });
    }
    // Sized for the one line and a byte more, so it never reallocates.
    let mut buf = Zeroizing::new(Vec::with_capacity(LINE_LEN + 2));
    file.take(LINE_LEN as u64 + 2)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read key file", path, e))?;
    parse(&buf).map_err(|reason| Error::MalformedKeyFile {
        path: Some(path.to_path_buf()),
        reason,
    })
}

/// Whether `secret` opens a key-file or agent slot of `sealed`.
pub fn opens(secret: &KeySecret, sealed: &SealedVault) -> bool {
    sealed.unwrap_master(&Key::Secret(secret.clone())).is_ok()
}

/// The key at `path` that opens `sealed`: the key file itself, or, when a
/// rotate was interrupted between replacing the vault and renaming
/// `K.next` over `K`, `K.next`. (The next writer completes the rename: see
/// [`crate::Store::with_key_file`].) When neither opens, `K`'s own result.
pub fn read_for(path: &Path, sealed: &SealedVault) -> Result<KeySecret> {
    let k = read(path);
    if k.as_ref().is_ok_and(|k| opens(k, sealed)) {
        return k;
    }
    match read(&pending_key_path(path)) {
        Ok(next) if opens(&next, sealed) => Ok(next),
        // A rotate may have renamed K.next over K between the two reads.
        _ => match read(path) {
            Ok(again) if opens(&again, sealed) => Ok(again),
            _ => k,
        },
    }
}

/// What [`settle`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Nothing was pending.
    Nothing,
    /// `K.next`, the only key that opened the vault, was renamed over `K`.
    Completed,
    /// A `K.next` that opens nothing (a rotate died before replacing the
    /// vault) was removed.
    Removed,
}

/// Finishes what an interrupted rotate left at `path`, given the vault on
/// disk. Call it holding the vault's write lock: rotates hold it for their
/// whole run, so nothing here is half done by a live one.
pub fn settle(path: &Path, sealed: &SealedVault) -> Result<Settled> {
    let next = pending_key_path(path);
    let Ok(pending) = read(&next) else {
        return Ok(Settled::Nothing);
    };
    if read(path).is_ok_and(|k| opens(&k, sealed)) {
        if !opens(&pending, sealed) {
            fs::remove_file(&next).map_err(|e| Error::io("remove", &next, e))?;
            return Ok(Settled::Removed);
        }
        return Ok(Settled::Nothing);
    }
    if opens(&pending, sealed) {
        fs::rename(&next, path).map_err(|e| Error::io("replace key file", path, e))?;
        file::fsync_dir(&file::parent_dir(path))?;
        return Ok(Settled::Completed);
    }
    Ok(Settled::Nothing)
}

/// Writes a new key file, refusing to overwrite one; creates its directory 0700.
pub fn create(path: &Path, secret: &KeySecret) -> Result<()> {
    file::create_private_dir(&file::parent_dir(path))?;
    file::create_new(path, render(secret).as_bytes())
}

/// Atomically replaces a key file's secret (used by rotate).
pub fn replace(path: &Path, secret: &KeySecret) -> Result<()> {
    file::replace(path, render(secret).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let k = KeySecret::generate();
        let text = render(&k);
        assert_eq!(text.len(), LINE_LEN + 1);
        let back = parse(text.as_bytes()).expect("parses");
        assert_eq!(back.expose(), k.expose());
        // Without the final newline too.
        assert!(parse(text.trim_end().as_bytes()).is_ok());
    }

    #[test]
    fn strictness() {
        let k = KeySecret::from_bytes([7; 32]);
        let good = render(&k).to_string();
        for bad in [
            good.to_uppercase(),
            format!("{good}\n"),
            format!(" {good}"),
            good.replace("v1", "v2"),
            good.replacen('7', "g", 1),
            good.trim_end()[..LINE_LEN - 1].to_string(),
            format!("{}\r\n", good.trim_end()),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn key_id_is_stable_and_distinct() {
        let a = KeySecret::from_bytes([1; 32]);
        let b = KeySecret::from_bytes([2; 32]);
        assert_eq!(key_id(&a), key_id(&a.clone()));
        assert_ne!(key_id(&a), key_id(&b));
        assert_eq!(key_id(&a).len(), 16);
    }
}
