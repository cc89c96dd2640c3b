//! A git credential, and the vault's rules for it, following git's own
//! helpers (`credential_match` in git's `credential.c`): a query compares
//! protocol, host, path and username only when it gives them, exactly and
//! case-sensitively, and an empty value is a value. Two entries are the same
//! slot when protocol, host, path and username are all equal.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Source, check_field, check_nonempty};
use crate::error::Result;
use crate::secret::Secret;

/// A git credential, with git's attributes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GitEntry {
    /// `https`, `http`, ...
    pub protocol: String,
    /// Host name, with `:port` when one was given.
    pub host: String,
    /// Repository path, when `credential.useHttpPath` is set (empty is not absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The user name (may be empty).
    pub username: String,
    /// The password or token.
    pub password: Secret,
    /// Expiry of the password, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_expiry_utc: Option<u64>,
    /// An OAuth refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_refresh_token: Option<Secret>,
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

/// What a request asks for: each attribute is compared only when given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitQuery<'a> {
    /// `protocol=`.
    pub protocol: Option<&'a str>,
    /// `host=`.
    pub host: Option<&'a str>,
    /// `path=`.
    pub path: Option<&'a str>,
    /// `username=`.
    pub username: Option<&'a str>,
    /// `password=`: compared only by [`GitQuery::matches_with_password`].
    pub password: Option<&'a str>,
}

fn field_matches(want: Option<&str>, have: Option<&str>) -> bool {
    want.is_none_or(|w| have == Some(w))
}

impl GitQuery<'_> {
    /// A query names a scope only with both protocol and host. Without them
    /// every entry would match, and git never sends such a request for the
    /// http(s) credentials a vault keeps, so lookups and removals refuse it.
    pub fn is_scoped(&self) -> bool {
        self.protocol.is_some_and(|p| !p.is_empty()) && self.host.is_some_and(|h| !h.is_empty())
    }

    /// True when `entry` fits every attribute the query gives (not the password).
    pub fn matches(&self, entry: &GitEntry) -> bool {
        field_matches(self.protocol, Some(&entry.protocol))
            && field_matches(self.host, Some(&entry.host))
            && field_matches(self.path, entry.path.as_deref())
            && field_matches(self.username, Some(&entry.username))
    }

    /// [`GitQuery::matches`], and a given password must be equal too (so an
    /// erase never removes a credential other than the one that failed).
    pub fn matches_with_password(&self, entry: &GitEntry) -> bool {
        self.matches(entry) && field_matches(self.password, Some(entry.password.expose()))
    }
}

impl GitEntry {
    /// A new entry with no path, expiry or refresh token; the vault sets its times.
    pub fn new(
        protocol: impl Into<String>,
        host: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        GitEntry {
            protocol: protocol.into(),
            host: host.into(),
            path: None,
            username: username.into(),
            password,
            password_expiry_utc: None,
            oauth_refresh_token: None,
            source: None,
            created: 0,
            updated: 0,
            extra: Map::new(),
        }
    }

    /// The same entry, for one repository path (`credential.useHttpPath`).
    pub fn with_path(mut self, path: Option<String>) -> Self {
        self.path = path;
        self
    }

    /// The same entry, with the password's expiry (unix seconds).
    pub fn with_expiry(mut self, password_expiry_utc: Option<u64>) -> Self {
        self.password_expiry_utc = password_expiry_utc;
        self
    }

    /// The same entry, with an OAuth refresh token.
    pub fn with_refresh_token(mut self, token: Option<Secret>) -> Self {
        self.oauth_refresh_token = token;
        self
    }

    /// The same entry, marked as coming from `source` on the host.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Checks the entry before it is stored.
    pub fn validate(&self) -> Result<()> {
        check_nonempty("protocol", &self.protocol)?;
        check_nonempty("host", &self.host)?;
        if let Some(p) = &self.path {
            check_field("path", p)?;
        }
        check_field("username", &self.username)?;
        check_field("password", self.password.expose())?;
        if let Some(t) = &self.oauth_refresh_token {
            check_field("oauth_refresh_token", t.expose())?;
        }
        if let Some(source) = &self.source {
            source.validate()?;
        }
        Ok(())
    }

    /// True when the two entries are the same credential slot (protocol,
    /// host, path and username all equal, "no path" distinct from any path):
    /// a store replaces such an entry instead of adding a second one.
    pub fn same_slot(&self, other: &GitEntry) -> bool {
        self.protocol == other.protocol
            && self.host == other.host
            && self.path == other.path
            && self.username == other.username
    }

    /// True when the password has expired at `now` (git's rule: an expiry
    /// strictly in the past).
    pub fn is_expired(&self, now: u64) -> bool {
        self.password_expiry_utc.is_some_and(|t| t < now)
    }

    /// True when storing `other` over this entry changes nothing: the same
    /// credential, and, when `other` comes from the host, the same source.
    /// git's `store` after every fetch (no source) of the credential a host
    /// entry holds writes nothing and keeps the host entry.
    pub(crate) fn same_credential(&self, other: &GitEntry) -> bool {
        self.password == other.password
            && self.password_expiry_utc == other.password_expiry_utc
            && self.oauth_refresh_token == other.oauth_refresh_token
            && (other.source.is_none() || self.source == other.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, path: Option<&str>, user: &str, pass: &str, updated: u64) -> GitEntry {
        let mut e = GitEntry::new("https", host, user, Secret::from(pass))
            .with_path(path.map(str::to_owned));
        e.created = updated;
        e.updated = updated;
        e
    }

    fn req<'a>(
        protocol: Option<&'a str>,
        host: Option<&'a str>,
        path: Option<&'a str>,
        user: Option<&'a str>,
    ) -> GitQuery<'a> {
        GitQuery {
            protocol,
            host,
            path,
            username: user,
            password: None,
        }
    }

    fn matches(e: &GitEntry, q: &GitQuery<'_>, with_password: bool) -> bool {
        if with_password {
            q.matches_with_password(e)
        } else {
            q.matches(e)
        }
    }

    /// `Vault::find_git`'s choice, over a plain list.
    fn select<'a>(entries: &'a [GitEntry], q: &GitQuery<'_>, now: u64) -> Option<&'a GitEntry> {
        let mut v = crate::Vault::create();
        v.payload_mut().git = entries.to_vec();
        let found = v.find_git(q, now)?.clone();
        entries.iter().find(|e| **e == found)
    }

    fn same_slot(a: &GitEntry, b: &GitEntry) -> bool {
        a.same_slot(b)
    }

    #[test]
    fn compares_only_given_fields() {
        let e = entry("example.com", Some("repo.git"), "alice", "pw", 1);
        assert!(matches(
            &e,
            &req(Some("https"), Some("example.com"), None, None),
            false
        ));
        assert!(matches(
            &e,
            &req(
                Some("https"),
                Some("example.com"),
                Some("repo.git"),
                Some("alice")
            ),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("http"), Some("example.com"), None, None),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com:443"), None, None),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("Example.com"), None, None),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com"), Some("other.git"), None),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com"), None, Some("bob")),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com"), None, Some("")),
            false
        ));
    }

    #[test]
    fn a_given_path_needs_a_stored_path() {
        let e = entry("example.com", None, "alice", "pw", 1);
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com"), Some("repo.git"), None),
            false
        ));
        assert!(!matches(
            &e,
            &req(Some("https"), Some("example.com"), Some(""), None),
            false
        ));
        let empty = entry("example.com", Some(""), "alice", "pw", 1);
        assert!(matches(
            &empty,
            &req(Some("https"), Some("example.com"), Some(""), None),
            false
        ));
    }

    #[test]
    fn password_is_compared_only_when_asked_and_given() {
        let e = entry("example.com", None, "alice", "pw", 1);
        let mut r = req(Some("https"), Some("example.com"), None, Some("alice"));
        assert!(matches(&e, &r, true));
        r.password = Some("other");
        assert!(!matches(&e, &r, true));
        assert!(matches(&e, &r, false));
        r.password = Some("pw");
        assert!(matches(&e, &r, true));
    }

    #[test]
    fn select_needs_protocol_and_host() {
        let entries = [entry("example.com", None, "alice", "pw", 1)];
        assert!(select(&entries, &req(None, None, None, Some("alice")), 10).is_none());
        assert!(select(&entries, &req(Some("https"), None, None, None), 10).is_none());
        assert!(select(&entries, &req(None, Some("example.com"), None, None), 10).is_none());
        assert!(select(&entries, &req(Some("https"), Some(""), None, None), 10).is_none());
        assert!(
            select(
                &entries,
                &req(Some("https"), Some("example.com"), None, None),
                10
            )
            .is_some()
        );
    }

    #[test]
    fn select_prefers_newest_and_skips_expired() {
        let mut old = entry("example.com", None, "alice", "a", 5);
        let new = entry("example.com", None, "bob", "b", 7);
        let r = req(Some("https"), Some("example.com"), None, None);
        let entries = [old.clone(), new.clone()];
        assert_eq!(
            select(&entries, &r, 100).map(|e| e.username.as_str()),
            Some("bob")
        );
        let mut expired = new.clone();
        expired.password_expiry_utc = Some(99);
        let entries = [old.clone(), expired.clone()];
        assert_eq!(
            select(&entries, &r, 100).map(|e| e.username.as_str()),
            Some("alice")
        );
        // Expiring exactly now is not yet expired (git compares with `<`).
        assert_eq!(
            select(&entries, &r, 99).map(|e| e.username.as_str()),
            Some("bob")
        );
        old.password_expiry_utc = Some(1);
        assert!(select(&[old, expired], &r, 100).is_none());
    }

    #[test]
    fn same_slot_is_exact() {
        let a = entry("example.com", None, "alice", "a", 1);
        assert!(same_slot(
            &a,
            &entry("example.com", None, "alice", "other", 2)
        ));
        assert!(!same_slot(
            &a,
            &entry("example.com", Some(""), "alice", "a", 1)
        ));
        assert!(!same_slot(&a, &entry("example.com", None, "", "a", 1)));
        assert!(!same_slot(
            &a,
            &entry("example.com:1", None, "alice", "a", 1)
        ));
    }
}
