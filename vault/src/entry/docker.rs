//! A docker registry credential, and the vault's rules for it: which stored
//! entry answers a request for a registry address, and when two entries name
//! the same registry (so that a store replaces instead of adding).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Source, check_len, check_nonempty};
use crate::error::Result;
use crate::registry::{self, Match};
use crate::secret::Secret;

/// A Docker registry credential.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DockerEntry {
    /// The server URL as the client gave it (e.g. `https://index.docker.io/v1/`).
    pub server_url: String,
    /// The user name, or `<token>` when `secret` is an identity token.
    pub username: String,
    /// The password, token or identity token.
    pub secret: Secret,
    /// When the secret stops working, unix seconds, when known (a JWT's
    /// `exp`, or the most a host source's tokens live); the helper does not
    /// hand out an entry at or after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Where the host got it; `None` for credentials stored in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// When first stored, unix seconds.
    #[serde(default)]
    pub created: u64,
    /// When last replaced, unix seconds.
    #[serde(default)]
    pub updated: u64,
    /// Fields written by newer versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DockerEntry {
    /// A new entry; the vault sets its times when it is stored.
    pub fn new(server_url: impl Into<String>, username: impl Into<String>, secret: Secret) -> Self {
        DockerEntry {
            server_url: server_url.into(),
            username: username.into(),
            secret,
            expires: None,
            source: None,
            created: 0,
            updated: 0,
            extra: Map::new(),
        }
    }

    /// The same entry, marked as coming from `source` on the host.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// The same entry, with the time its secret stops working (unix seconds).
    pub fn with_expiry(mut self, expires: Option<u64>) -> Self {
        self.expires = expires;
        self
    }

    /// True when its known expiry has come at `now` (a token is no longer
    /// accepted at its `exp`).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }

    /// Checks the entry before it is stored. The secret is any string
    /// (JSON carries any, and `docker login --password-stdin` passes a
    /// service-account key with its newlines); only its length is capped.
    pub fn validate(&self) -> Result<()> {
        check_nonempty("server URL", &self.server_url)?;
        check_nonempty("username", &self.username)?;
        if let Some(source) = &self.source {
            source.validate()?;
        }
        check_len("secret", self.secret.expose())
    }

    /// How well this entry answers a request for `query` (a server URL as a
    /// client sends it); `None` when it is another registry.
    pub fn answers(&self, query: &str) -> Option<Match> {
        registry::matches(query, &self.server_url)
    }

    /// True when a store of `other` replaces this entry: the same registry,
    /// written with the same scheme (or both without one).
    pub fn same_registry(&self, other: &DockerEntry) -> bool {
        registry::same_entry(&self.server_url, &other.server_url)
    }

    /// True when storing `other` over this entry changes nothing: the same
    /// credential, and, when `other` comes from the host (has a source),
    /// the same expiry and source. A store from inside the container of
    /// the credential a host entry already holds keeps the host entry.
    pub(crate) fn same_credential(&self, other: &DockerEntry) -> bool {
        self.username == other.username
            && self.secret == other.secret
            && (other.source.is_none()
                || (self.expires == other.expires && self.source == other.source))
    }
}
