//! git's credential-helper stdin: `devc_helper::git::protocol::parse_request`.
//!
//! Oracles: kept values are UTF-8 without NUL (a `text` value never holds
//! a line break: lines end at LF); a request that parses, written back as
//! `key=value` lines, parses to the same request (the attributes a helper
//! keeps survive its own wire format).
#![no_main]

use devc_helper::git::protocol::{Request, parse_request};
use libfuzzer_sys::fuzz_target;

fn render(r: &Request) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut put = |k: &str, v: &str| {
        out.extend_from_slice(format!("{k}={v}\n").as_bytes());
    };
    let fields = [
        ("protocol", r.protocol.as_deref()),
        ("host", r.host.as_deref()),
        ("path", r.path.as_deref()),
        ("username", r.username.as_deref()),
        ("password", r.password.as_ref().map(|s| s.expose())),
        (
            "oauth_refresh_token",
            r.oauth_refresh_token.as_ref().map(|s| s.expose()),
        ),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            assert!(!v.contains(['\0', '\n']), "{k} kept a NUL or LF");
            // A value ending in CR would lose it on the way back (git
            // drops one trailing CR per line), as it does in git.
            if v.ends_with('\r') {
                return None;
            }
            put(k, v);
        }
    }
    if let Some(t) = r.password_expiry_utc {
        assert_ne!(t, 0, "an expiry of 0 means none");
        put("password_expiry_utc", &t.to_string());
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_request(data) else {
        return;
    };
    if let Some(wire) = render(&req) {
        let back = parse_request(&wire).expect("a rendered request parses");
        assert_eq!(back, req, "a request does not survive its own wire format");
    }
});
