//! The decrypted payload: docker and git entries, as JSON, and the rules
//! that say which entries are the same and which answer a request.
//!
//! Forward compatibility: fields this version does not know, at the top
//! level and inside entries, are kept and written back unchanged, so an
//! older devc-vault never drops what a newer one stored.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

mod docker;
mod git;

pub use docker::DockerEntry;
pub use git::{GitEntry, GitQuery};

/// What the vault's one upsert rule needs of an entry type: its identity
/// (which stored entries it replaces), whether it holds the same credential,
/// and its timestamps.
pub(crate) trait Stored {
    /// Whether the entry's fields are acceptable.
    fn check(&self) -> Result<()>;
    /// Whether `other` is the entry this one replaces.
    fn same_place(&self, other: &Self) -> bool;
    /// Whether `other` holds the same credential (so storing changes nothing).
    fn same_secret(&self, other: &Self) -> bool;
    /// When first stored.
    fn created(&self) -> u64;
    /// Sets when first stored and when last replaced.
    fn stamp(&mut self, created: u64, updated: u64);
}

/// `Stored` for an entry type, given the method that says which stored
/// entry it replaces.
macro_rules! stored {
    ($ty:ty, $same_place:ident) => {
        impl Stored for $ty {
            fn check(&self) -> Result<()> {
                self.validate()
            }
            fn same_place(&self, other: &Self) -> bool {
                self.$same_place(other)
            }
            fn same_secret(&self, other: &Self) -> bool {
                self.same_credential(other)
            }
            fn created(&self) -> u64 {
                self.created
            }
            fn stamp(&mut self, created: u64, updated: u64) {
                self.created = created;
                self.updated = updated;
            }
        }
    };
}

stored!(DockerEntry, same_registry);
stored!(GitEntry, same_slot);

/// Largest single secret (or any other field) accepted (64 KiB).
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// Where the host got a sealed entry. It lives inside the encrypted payload
/// like everything else; nothing in it is a secret.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Source {
    /// What kind of source: e.g. `docker-config`, `docker-helper`, `git`, or
    /// an embedding program's own name.
    pub kind: String,
    /// Which one: a helper name, a file path, a host (never a secret).
    #[serde(default)]
    pub from: String,
    /// When it was fetched, unix seconds.
    #[serde(default)]
    pub fetched: u64,
    /// Fields written by newer versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Source {
    /// A source fetched at `fetched` (unix seconds).
    pub fn new(kind: impl Into<String>, from: impl Into<String>, fetched: u64) -> Source {
        Source {
            kind: kind.into(),
            from: from.into(),
            fetched,
            extra: Map::new(),
        }
    }

    /// Checks its text fields like any other entry field.
    pub(crate) fn validate(&self) -> Result<()> {
        check_nonempty("source kind", &self.kind)?;
        check_field("source from", &self.from)
    }
}

/// What the container used before devc-vault was installed, for chaining.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Chain {
    /// The previous docker `credsStore` helper name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_creds_store: Option<String>,
    /// The previous git `credential.helper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_helper: Option<String>,
    /// Fields written by newer versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The whole decrypted payload.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Payload {
    /// Docker registry credentials.
    #[serde(default)]
    pub docker: Vec<DockerEntry>,
    /// Git credentials.
    #[serde(default)]
    pub git: Vec<GitEntry>,
    /// Helpers to chain to.
    #[serde(default)]
    pub chain: Chain,
    /// Last write, unix seconds.
    #[serde(default)]
    pub updated: u64,
    /// Fields written by newer versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Deserializes a struct whose unknown fields go to `extra`, by hand:
/// `#[serde(flatten)]` would buffer every object (the whole payload, at the
/// top level) into an intermediate tree first, tripling the cost of opening
/// a large vault. Duplicate keys are refused.
macro_rules! keep_unknown_fields {
    ($ty:ident { required: [$($req:ident),*], optional: [$($opt:ident),*] }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<$ty, A::Error> {
                        $(let mut $req = None;)*
                        $(let mut $opt = None;)*
                        let mut extra = Map::new();
                        while let Some(FieldName(k)) = m.next_key::<FieldName<'de>>()? {
                            match k.as_ref() {
                                $(stringify!($req) => {
                                    if $req.is_some() {
                                        return Err(de::Error::duplicate_field(stringify!($req)));
                                    }
                                    $req = Some(m.next_value()?);
                                })*
                                $(stringify!($opt) => {
                                    if $opt.is_some() {
                                        return Err(de::Error::duplicate_field(stringify!($opt)));
                                    }
                                    $opt = Some(m.next_value()?);
                                })*
                                _ => {
                                    let v: Value = m.next_value()?;
                                    if extra.insert(k.into_owned(), v).is_some() {
                                        return Err(de::Error::custom("duplicate field"));
                                    }
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $req.ok_or_else(|| de::Error::missing_field(stringify!($req)))?,)*
                            $($opt: $opt.unwrap_or_default(),)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

/// An object key, borrowed from the input when it has no escapes: one
/// allocation per key of every entry would dominate opening a large vault
/// (serde's own `Cow<str>` always allocates).
struct FieldName<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

keep_unknown_fields!(DockerEntry {
    required: [server_url, username, secret],
    optional: [expires, source, created, updated]
});
keep_unknown_fields!(GitEntry {
    required: [protocol, host, username, password],
    optional: [
        path,
        password_expiry_utc,
        oauth_refresh_token,
        source,
        created,
        updated
    ]
});
keep_unknown_fields!(Source {
    required: [kind],
    optional: [from, fetched]
});
keep_unknown_fields!(Payload {
    required: [],
    optional: [docker, git, chain, updated]
});

/// Checks one field's length.
pub(crate) fn check_len(_name: &str, value: &str) -> Result<()> {
    if value.len() > MAX_SECRET_LEN {
        return Err(Error::Oversized {
            what: "entry field",
            size: value.len() as u64,
            cap: MAX_SECRET_LEN as u64,
        });
    }
    Ok(())
}

/// Checks one text field: bounded, and free of NUL, CR and LF (which git's
/// protocol cannot carry, and no name or address contains).
pub fn check_field(name: &str, value: &str) -> Result<()> {
    check_len(name, value)?;
    // Bytes, not chars: this runs on every field of every entry at open.
    if value.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
        return Err(Error::InvalidEntry {
            reason: format!("{name} contains a NUL, CR or LF character"),
        });
    }
    Ok(())
}

pub(crate) fn check_nonempty(name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidEntry {
            reason: format!("{name} is empty"),
        });
    }
    check_field(name, value)
}

impl Payload {
    /// Parses decrypted JSON and checks every entry.
    pub fn from_json(bytes: &[u8]) -> Result<Payload> {
        let p: Payload = serde_json::from_slice(bytes).map_err(|e| Error::MalformedPayload {
            // serde_json's messages name positions and types, not values.
            reason: format!("invalid JSON ({})", e.classify_name()),
        })?;
        for d in &p.docker {
            d.validate().map_err(payload_error)?;
        }
        for g in &p.git {
            g.validate().map_err(payload_error)?;
        }
        Ok(p)
    }

    /// Serializes to JSON in a buffer that is wiped on drop, sized exactly
    /// before it is written: a growing `Vec` would leave unwiped copies of
    /// the plaintext behind in the memory it frees.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut count = Counter(0);
        serde_json::to_writer(&mut count, self).expect("payload types always serialize");
        let mut out = Zeroizing::new(Vec::with_capacity(count.0));
        serde_json::to_writer(&mut *out, self).expect("payload types always serialize");
        debug_assert_eq!(out.len(), count.0);
        out
    }
}

/// A writer that only counts bytes.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn payload_error(e: Error) -> Error {
    match e {
        Error::Oversized { .. } => e,
        other => Error::MalformedPayload {
            reason: other.to_string(),
        },
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/` (payload_json): without serde_json's
    /// `float_roundtrip`, the number below was read as 1.0844674407370955e20,
    /// written so, and read back as 1.0844674407370957e20: every
    /// read-modify-write changed a newer version's field.
    #[test]
    fn unknown_numbers_survive_read_modify_write() {
        let input = br#"{"future":[0,-1,1.5,0e3,108446744073709551615,-0.0,2.2250738585072011e-308,1.7976931348623157e308,0.30000000000000004]}"#;
        let p = Payload::from_json(input).expect("parses");
        let json = p.to_json();
        let again = Payload::from_json(&json).expect("parses again");
        assert_eq!(again, p);
        assert_eq!(again.to_json(), json);
    }
}
