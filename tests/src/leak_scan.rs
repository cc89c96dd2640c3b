//! Scanning a container's files for secrets (issue 10's "nothing at rest"):
//! every form a secret could take in a file — raw, base64 (standard and
//! URL-safe, at each of the three byte alignments it can have inside a
//! longer encoded string, as in docker's `auth` = base64(`user:pass`)), hex
//! (both cases), JSON-escaped (serde's and Go's HTML-safe escaping) and
//! percent-encoded (git's `store` helper) — searched in a `podman export`
//! tarball with `grep -F` (fast on hundreds of megabytes), and each hit
//! mapped back to the file it is in. Reports name the secret's label and
//! the encoding, never the secret.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process;
use crate::registry::base64;

/// A secret to look for, with a label for reports.
#[derive(Clone, Debug)]
pub struct Needle {
    /// What it is, e.g. "registry password".
    pub label: String,
    /// Which encoding this form is.
    pub encoding: &'static str,
    /// The bytes searched for.
    pub bytes: Vec<u8>,
}

/// The shortest form searched for: shorter pieces would match by chance.
const MIN_LEN: usize = 8;

/// Every searchable form of `secret`.
pub fn needles(label: &str, secret: &[u8]) -> Vec<Needle> {
    let mut forms: Vec<(&'static str, Vec<u8>)> = Vec::new();
    // Raw: binary secrets are split where grep's one-pattern-per-line
    // format cannot carry a byte; each long enough piece is a leak.
    for piece in secret.split(|b| *b == b'\n' || *b == 0) {
        forms.push(("raw", piece.to_vec()));
    }
    for k in 0..3usize {
        let mut data = vec![0u8; k];
        data.extend_from_slice(secret);
        let enc = base64(&data);
        // Characters wholly made of the secret's bits.
        let start = (8 * k).div_ceil(6);
        let end = (8 * data.len()) / 6;
        if end > start {
            let core = enc.as_bytes()[start..end].to_vec();
            let url: Vec<u8> = core
                .iter()
                .map(|&c| match c {
                    b'+' => b'-',
                    b'/' => b'_',
                    c => c,
                })
                .collect();
            forms.push(("base64", core));
            forms.push(("base64url", url));
        }
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    forms.push(("hex", hex.clone().into_bytes()));
    forms.push(("HEX", hex.to_uppercase().into_bytes()));
    if let Ok(text) = std::str::from_utf8(secret) {
        let json = serde_json::to_string(text).expect("a string serializes");
        let inner = json[1..json.len() - 1].to_owned();
        let go = inner
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        let slash = inner.replace('/', "\\/");
        forms.push(("json", inner.into_bytes()));
        forms.push(("json-go", go.into_bytes()));
        forms.push(("json-slash", slash.into_bytes()));
        let pct = |upper: bool| -> Vec<u8> {
            text.bytes()
                .flat_map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        vec![b]
                    } else if upper {
                        format!("%{b:02X}").into_bytes()
                    } else {
                        format!("%{b:02x}").into_bytes()
                    }
                })
                .collect()
        };
        forms.push(("percent", pct(true)));
        forms.push(("percent-lower", pct(false)));
    }
    let mut out: Vec<Needle> = Vec::new();
    for (encoding, bytes) in forms {
        if bytes.len() >= MIN_LEN && !out.iter().any(|n| n.bytes == bytes) {
            out.push(Needle {
                label: label.to_owned(),
                encoding,
                bytes,
            });
        }
    }
    out
}

/// One hit: which secret, which encoding, which file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The secret's label.
    pub label: String,
    /// The encoding found.
    pub encoding: &'static str,
    /// The tar member holding it.
    pub file: String,
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}) in {}", self.label, self.encoding, self.file)
    }
}

/// Searches the tar file `tar` for every needle; `work` is a private
/// directory for the pattern file. Returns the hits (empty: clean).
pub fn scan_tar(tar: &Path, needles: &[Needle], work: &Path) -> Vec<Hit> {
    assert!(!needles.is_empty(), "nothing to scan for");
    let pats = work.join("needles");
    let mut text = Vec::new();
    for n in needles {
        text.extend_from_slice(&n.bytes);
        text.push(b'\n');
    }
    fs::write(&pats, &text).expect("write the pattern file");
    crate::scratch::set_mode(&pats, 0o600);
    let out = process::run(
        Command::new("grep")
            .args(["-a", "-F", "-o", "-b", "-f"])
            .arg(&pats)
            .arg(tar)
            .env("LC_ALL", "C"),
        None,
        Duration::from_secs(300),
    )
    .expect("spawn grep");
    let _ = fs::remove_file(&pats);
    // 0: found, 1: nothing found, 2: trouble.
    assert!(
        matches!(out.code(), Some(0 | 1)),
        "grep failed: {}",
        out.stderr_str()
    );
    let mut found: Vec<(u64, &Needle)> = Vec::new();
    for line in out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let offset: u64 = String::from_utf8_lossy(&line[..colon]).parse().unwrap_or(0);
        let matched = &line[colon + 1..];
        for n in needles.iter().filter(|n| n.bytes == matched) {
            found.push((offset, n));
        }
    }
    if found.is_empty() {
        return Vec::new();
    }
    let members = tar_members(tar);
    let mut hits: Vec<Hit> = found
        .into_iter()
        .map(|(offset, n)| Hit {
            label: n.label.clone(),
            encoding: n.encoding,
            file: members
                .iter()
                .find(|(start, end, _)| *start <= offset && offset < *end)
                .map_or_else(
                    || format!("<tar offset {offset}>"),
                    |(_, _, name)| name.clone(),
                ),
        })
        .collect();
    hits.sort_by(|a, b| (&a.file, &a.label).cmp(&(&b.file, &b.label)));
    hits.dedup();
    hits
}

/// The members of a tar file: (data start, data end, name). Handles
/// ustar prefixes, GNU long names and pax `path` records.
pub fn tar_members(tar: &Path) -> Vec<(u64, u64, String)> {
    let Ok(mut f) = fs::File::open(tar) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    loop {
        let mut h = [0u8; 512];
        if f.seek(SeekFrom::Start(pos)).is_err() || f.read_exact(&mut h).is_err() {
            break;
        }
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let b = &h[r];
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let size_text = field(124..136);
        let size = u64::from_str_radix(size_text.trim(), 8).unwrap_or(0);
        let kind = h[156];
        let data = pos + 512;
        let mut name = field(0..100);
        let prefix = field(345..500);
        if !prefix.is_empty() && &h[257..262] == b"ustar" {
            name = format!("{prefix}/{name}");
        }
        if kind == b'L' || kind == b'x' {
            let mut body = vec![0u8; usize::try_from(size).unwrap_or(0).min(1 << 20)];
            if f.read_exact(&mut body).is_ok() {
                let text = String::from_utf8_lossy(&body).into_owned();
                long_name = if kind == b'L' {
                    Some(text.trim_end_matches('\0').to_owned())
                } else {
                    text.lines()
                        .find_map(|l| l.split_once(" path=").map(|(_, p)| p.to_owned()))
                        .or(long_name)
                };
            }
        } else {
            let name = long_name.take().unwrap_or(name);
            out.push((data, data + size, name));
        }
        pos = data + size.div_ceil(512) * 512;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_inside_docker_auth_is_found_at_any_alignment() {
        let secret = b"Tr0ub4dor&<3>pw";
        let ns = needles("pw", secret);
        for user in ["a", "ab", "abc"] {
            let auth = base64(format!("{user}:{}", String::from_utf8_lossy(secret)).as_bytes());
            assert!(
                ns.iter().any(|n| n.encoding == "base64"
                    && auth.as_bytes().windows(n.bytes.len()).any(|w| w == n.bytes)),
                "{auth} not matched"
            );
        }
        assert!(
            ns.iter()
                .any(|n| n.bytes == b"Tr0ub4dor\\u0026\\u003c3\\u003epw")
        );
        assert!(ns.iter().any(|n| n.bytes == b"Tr0ub4dor%26%3C3%3Epw"));
    }
}
