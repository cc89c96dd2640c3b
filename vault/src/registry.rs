//! Registry addresses: which stored docker entry answers a request, and
//! which two entries are the same.
//!
//! Like docker/cli's `ConvertToHostname`, a scheme, user info, path, query and
//! fragment are stripped and the registry is named by `host[:port]`; unlike it,
//! `//host` and `host?query` forms are understood too (as
//! docker-credential-helpers' `registryurl.Parse` does). Docker Hub's four
//! spellings name one registry. A different port is a different registry, and
//! an explicit `http://` never matches an explicit `https://` (or back): a
//! credential stored for TLS is not handed out for plain HTTP.

/// An explicit URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
}

/// A parsed registry address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The scheme, when one was written.
    pub scheme: Option<Scheme>,
    /// The host, lower-cased, IPv6 without brackets; `docker.io` for Docker Hub.
    pub host: String,
    /// The port, when one was written.
    pub port: Option<u16>,
}

/// Docker Hub's host names; with no port, each names Docker Hub.
pub const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Docker Hub's legacy address, the one the docker CLI stores and asks for.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

impl Address {
    /// Parses an address such as `host`, `host:5000`, `https://host/v1/`,
    /// `//host:2376`, `host:2376?foo=bar` or `https://[::1]:8080/path`.
    /// `None` for anything else (another scheme, no host, a bad port); such
    /// strings only ever match themselves exactly.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        let (scheme, rest) = match s.find("://") {
            Some(i) => {
                let scheme = match s[..i].to_ascii_lowercase().as_str() {
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    _ => return None,
                };
                (Some(scheme), &s[i + 3..])
            }
            None => (None, s.strip_prefix("//").unwrap_or(s)),
        };
        // A backslash ends the authority as a slash does: WHATWG URL
        // parsers treat it so for http(s), and a client that does would
        // send `https://evil.example\@registry.example/` to evil.example.
        let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let mut host = host.to_ascii_lowercase();
        let mut scheme = scheme;
        if port.is_none() && DOCKER_HUB_HOSTS.contains(&host.as_str()) {
            // Docker Hub is one registry, served only over TLS.
            host = DOCKER_HUB_HOSTS[0].to_owned();
            scheme = Some(Scheme::Https);
        }
        Some(Address { scheme, host, port })
    }

    /// True for Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.port.is_none() && self.host == DOCKER_HUB_HOSTS[0]
    }

    /// The registry's name, `host[:port]` (IPv6 in brackets when a port follows),
    /// as clients key `credHelpers` by it.
    pub fn registry(&self) -> String {
        match self.port {
            Some(p) if self.host.contains(':') => format!("[{}]:{p}", self.host),
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    fn same_registry(&self, other: &Address) -> bool {
        self.host == other.host && self.port == other.port
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if after.is_empty() {
            return Some((host, None));
        }
        return Some((host, parse_port(after.strip_prefix(':')?)?));
    }
    match authority.rsplit_once(':') {
        // An IPv6 address without brackets cannot carry a port.
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, parse_port(port)?)),
        None => Some((authority, None)),
    }
}

/// `Some(None)` for an empty port (`host:` is `host`), `None` for a bad one.
fn parse_port(p: &str) -> Option<Option<u16>> {
    if p.is_empty() {
        return Some(None);
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().map(Some)
}

/// How well a stored address answers a request; higher is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    /// Same registry; one side names no scheme.
    Registry,
    /// Same registry, written with the same scheme (or both without).
    SameScheme,
    /// The very same string.
    Exact,
}

/// Whether (and how well) the entry stored as `stored` answers a request for `query`.
pub fn matches(query: &str, stored: &str) -> Option<Match> {
    let query = query.trim();
    if query == stored {
        return Some(Match::Exact);
    }
    let (q, s) = (Address::parse(query)?, Address::parse(stored)?);
    if !q.same_registry(&s) {
        return None;
    }
    match (q.scheme, s.scheme) {
        (a, b) if a == b => Some(Match::SameScheme),
        (None, _) | (_, None) => Some(Match::Registry),
        _ => None,
    }
}

/// True when two stored addresses name one entry (a `store` of one replaces the other).
pub fn same_entry(a: &str, b: &str) -> bool {
    matches(a, b).is_some_and(|m| m >= Match::SameScheme)
}

/// The index of the entry that best answers `query`, among `(server_url, updated)`
/// pairs: the best [`Match`], then the most recently updated.
pub fn best_match<'a>(
    query: &str,
    stored: impl IntoIterator<Item = (&'a str, u64)>,
) -> Option<usize> {
    stored
        .into_iter()
        .enumerate()
        .filter_map(|(i, (url, updated))| matches(query, url).map(|m| (i, m, updated)))
        // On a full tie the later entry (the newer store) wins: `max_by` keeps the last.
        .max_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)))
        .map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(scheme: Option<Scheme>, host: &str, port: Option<u16>) -> Option<Address> {
        Some(Address {
            scheme,
            host: host.into(),
            port,
        })
    }

    #[test]
    fn parses_the_url_forms_of_docker_credential_helpers() {
        use Scheme::*;
        let cases = [
            ("foobar.docker.io", addr(None, "foobar.docker.io", None)),
            (
                "foobar.docker.io:2376",
                addr(None, "foobar.docker.io", Some(2376)),
            ),
            (
                "//foobar.docker.io:2376",
                addr(None, "foobar.docker.io", Some(2376)),
            ),
            (
                "https://foobar.docker.io:2376",
                addr(Some(Https), "foobar.docker.io", Some(2376)),
            ),
            (
                "https://foobar.docker.io:2376/v1/",
                addr(Some(Https), "foobar.docker.io", Some(2376)),
            ),
            (
                "http://foobar.docker.io:2376/v1",
                addr(Some(Http), "foobar.docker.io", Some(2376)),
            ),
            (
                "foobar.docker.io:2376?foo=bar",
                addr(None, "foobar.docker.io", Some(2376)),
            ),
            (
                "https://foobar.docker.io:2376/path?foo=bar#frag",
                addr(Some(Https), "foobar.docker.io", Some(2376)),
            ),
            (
                "https://[::1]:8080/path",
                addr(Some(Https), "::1", Some(8080)),
            ),
            ("[::1]:8080", addr(None, "::1", Some(8080))),
            ("https://[::1]", addr(Some(Https), "::1", None)),
            (
                "HTTPS://User:pw@Example.COM:443/x",
                addr(Some(Https), "example.com", Some(443)),
            ),
            ("host:", addr(None, "host", None)),
            ("  host:5000  ", addr(None, "host", Some(5000))),
        ];
        for (s, want) in cases {
            assert_eq!(Address::parse(s), want, "{s}");
        }
        for bad in [
            "",
            "ftp://host",
            "https://",
            "https:///path",
            "host:abc",
            "host:99999",
            "::1:80",
            "[::1",
            "[::1]x",
            "a b",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn docker_hub_has_four_spellings() {
        let spellings = [
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
        ];
        for a in spellings {
            for b in spellings {
                assert!(matches(a, b).is_some(), "{a} vs {b}");
                assert!(same_entry(a, b), "{a} vs {b}");
            }
            assert!(Address::parse(a).expect("parses").is_docker_hub());
        }
        // A port makes it some other registry.
        assert_eq!(matches("docker.io:5000", "docker.io"), None);
        assert_eq!(matches("hub.docker.com", "docker.io"), None);
    }

    #[test]
    fn a_backslash_ends_the_host_as_a_slash_does() {
        for s in [
            "https://evil.example\\@registry.example/",
            "evil.example\\@registry.example",
            "//evil.example\\@registry.example:5000",
        ] {
            assert_eq!(
                Address::parse(s).map(|a| a.host),
                Some("evil.example".into()),
                "{s}"
            );
            assert_eq!(matches(s, "registry.example"), None, "{s}");
            assert_eq!(matches(s, "registry.example:5000"), None, "{s}");
        }
    }

    #[test]
    fn ports_and_schemes_are_strict() {
        assert_eq!(matches("host:5000", "host:5001"), None);
        assert_eq!(matches("host", "host:443"), None);
        assert_eq!(matches("http://host", "https://host"), None);
        assert_eq!(matches("https://host", "http://host/"), None);
        // docker-py#2402: stored with a scheme, asked for without.
        assert_eq!(matches("host", "https://host"), Some(Match::Registry));
        assert_eq!(matches("https://host/v2/", "host"), Some(Match::Registry));
        assert_eq!(
            matches("https://host/v1/", "https://host"),
            Some(Match::SameScheme)
        );
        assert_eq!(matches("Host:5000", "host:5000/"), Some(Match::SameScheme));
        assert_eq!(matches(" host ", "host"), Some(Match::Exact));
        // Opaque strings only match themselves.
        assert_eq!(matches("ftp://x", "ftp://x"), Some(Match::Exact));
        assert_eq!(matches("ftp://x", "x"), None);
    }

    #[test]
    fn best_match_prefers_exact_then_scheme_then_recent() {
        let stored = [("https://host", 5), ("host", 1), ("http://host", 9)];
        assert_eq!(best_match("host", stored), Some(1));
        assert_eq!(best_match("https://host/v1/", stored), Some(0));
        assert_eq!(best_match("http://host/", stored), Some(2));
        let stored = [("https://host", 5), ("https://host/v2/", 7)];
        assert_eq!(best_match("host", stored), Some(1));
        assert_eq!(best_match("other", stored), None);
    }

    /// Arbitrary strings (from an alphabet of the characters the parser
    /// cares about, plus multi-byte ones) never panic and match themselves.
    #[test]
    fn arbitrary_addresses_never_panic() {
        const ALPHABET: &[&str] = &[
            "h",
            "1",
            ":",
            "/",
            "//",
            "://",
            "[",
            "]",
            "?",
            "#",
            "@",
            ".",
            " ",
            "\t",
            "é",
            "😀",
            "http",
            "https",
            "::1",
            "docker.io",
            "65535",
            "65536",
            "-",
            "%",
        ];
        for chars in
            devc_vault_tests::random_input::inputs(0x2545_f491_4f6c_dd1d, 20_000, 8, ALPHABET)
        {
            let s: String = chars.concat();
            let parsed = Address::parse(&s);
            if let Some(a) = &parsed {
                let _ = (a.registry(), a.is_docker_hub());
            }
            assert_eq!(matches(&s, s.trim()), Some(Match::Exact), "{s:?}");
            let _ = (matches(&s, "h:1"), same_entry("https://h", &s));
        }
    }
}
