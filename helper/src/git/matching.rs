//! Which stored entries a request refers to, following git's own helpers
//! (`credential_match` in git's `credential.c`): protocol, host, path and
//! username are each compared only when the request gives them, exactly
//! and case-sensitively, and an empty value is a value.

use devc_vault::GitEntry;

use super::protocol::Request;

fn field_matches(want: Option<&str>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(w) => have == Some(w),
    }
}

/// True when `entry` fits every attribute the request gives; with
/// `match_password`, a given password must be equal too (so `erase` never
/// removes a credential other than the one that failed).
pub fn matches(entry: &GitEntry, req: &Request, match_password: bool) -> bool {
    field_matches(req.protocol.as_deref(), Some(&entry.protocol))
        && field_matches(req.host.as_deref(), Some(&entry.host))
        && field_matches(req.path.as_deref(), entry.path.as_deref())
        && field_matches(req.username.as_deref(), Some(&entry.username))
        && (!match_password
            || field_matches(
                req.password.as_ref().map(|p| p.expose()),
                Some(entry.password.expose()),
            ))
}

/// A request names a scope only with both protocol and host. Without them
/// every entry would match, and git never sends such a request for the
/// http(s) credentials this helper keeps, so `get` and `erase` refuse it.
pub fn is_scoped(req: &Request) -> bool {
    req.protocol.as_deref().is_some_and(|p| !p.is_empty())
        && req.host.as_deref().is_some_and(|h| !h.is_empty())
}

/// True when the entry's password has expired at `now` (git's rule: an
/// expiry strictly in the past).
pub fn is_expired(entry: &GitEntry, now: u64) -> bool {
    entry.password_expiry_utc.is_some_and(|t| t < now)
}

/// The entry `get` answers with: among matching, unexpired entries, the
/// most recently stored (as `credential-store`, which puts the newest
/// credential first).
pub fn select<'a>(entries: &'a [GitEntry], req: &Request, now: u64) -> Option<&'a GitEntry> {
    if !is_scoped(req) {
        return None;
    }
    entries
        .iter()
        .filter(|e| matches(e, req, false) && !is_expired(e, now))
        // max_by_key keeps the last of equal keys: the later entry wins a tie.
        .max_by_key(|e| e.updated)
}

/// True when two entries describe the same credential slot (protocol, host,
/// path and username all equal, with "no path" distinct from any path):
/// `store` replaces such an entry instead of adding a second one.
pub fn same_slot(a: &GitEntry, b: &GitEntry) -> bool {
    a.protocol == b.protocol && a.host == b.host && a.path == b.path && a.username == b.username
}

#[cfg(test)]
mod tests {
    use devc_vault::Secret;

    use super::*;

    fn entry(host: &str, path: Option<&str>, user: &str, pass: &str, updated: u64) -> GitEntry {
        GitEntry {
            protocol: "https".into(),
            host: host.into(),
            path: path.map(str::to_owned),
            username: user.into(),
            password: Secret::from(pass),
            password_expiry_utc: None,
            oauth_refresh_token: None,
            created: updated,
            updated,
            extra: Default::default(),
        }
    }

    fn req(
        protocol: Option<&str>,
        host: Option<&str>,
        path: Option<&str>,
        user: Option<&str>,
    ) -> Request {
        Request {
            protocol: protocol.map(str::to_owned),
            host: host.map(str::to_owned),
            path: path.map(str::to_owned),
            username: user.map(str::to_owned),
            ..Request::default()
        }
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
        r.password = Some(Secret::from("other"));
        assert!(!matches(&e, &r, true));
        assert!(matches(&e, &r, false));
        r.password = Some(Secret::from("pw"));
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
