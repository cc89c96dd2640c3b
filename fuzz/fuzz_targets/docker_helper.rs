//! The docker credential helper's whole verb path,
//! `devc_helper::docker::Helper::run(&[verb], &mut stdin)`, against a real
//! vault and key file in a temporary directory: read, unlock, match,
//! write (lock, seal, rename), reply.
//!
//! One input is up to 8 requests separated by NUL bytes, each a verb byte
//! (`g`et, `s`tore, `e`rase, `l`ist; any other byte picks one) and its
//! stdin. The vault is put back before every input.
//!
//! Oracles:
//! - every reply ends in one newline (or is empty) with exit 0 or 1;
//! - `get` answers JSON with the asked URL, `list` a JSON object;
//! - after a `store` that succeeded, a `get` of its server URL (when it
//!   needs no trimming) answers exactly the stored user name and secret;
//! - after an `erase` that succeeded, a `get` of the same input finds nothing.
#![no_main]

use std::ffi::OsString;
use std::sync::LazyLock;
use std::time::Duration;

use devc_helper::docker::protocol::{parse_server_url, parse_store};
use devc_helper::docker::{Helper, Reply};
use devc_vault_fuzz::{TempVault, requests};
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Copy, Debug)]
enum Verb {
    Get,
    Store,
    Erase,
    List,
}

const VERBS: &[(u8, Verb)] = &[
    (b'g', Verb::Get),
    (b's', Verb::Store),
    (b'e', Verb::Erase),
    (b'l', Verb::List),
];

struct Fixture {
    vault: TempVault,
    helper: Helper,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let vault = TempVault::new("docker_helper");
    let helper = Helper {
        vault: vault.vault.clone(),
        keys: vault.config(),
        chain_timeout: Duration::from_secs(1),
        // The vault has no chained helper, so nothing is ever run.
        self_exe: None,
    };
    Fixture { vault, helper }
});

fn run(verb: &str, stdin: &[u8]) -> Reply {
    let r = FIXTURE.helper.run(&[OsString::from(verb)], &mut { stdin });
    assert!(r.code <= 1, "exit code {}", r.code);
    assert!(
        r.stdout.is_empty()
            || (r.stdout.ends_with(b"\n") && r.stdout.iter().filter(|&&b| b == b'\n').count() == 1),
        "{verb}: the reply is not one line"
    );
    if let Some(e) = &r.stderr {
        assert!(
            !e.contains('\n'),
            "{verb}: a diagnostic of more than one line"
        );
    }
    r
}

/// Runs `get` with `stdin`; the answer's fields, or `None` for not found.
fn get(stdin: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let r = run("get", stdin);
    if r.code != 0 {
        return None;
    }
    let url = parse_server_url(stdin).expect("get answered, so the URL parsed");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("get answers JSON");
    let m = v.as_object().expect("get answers an object").clone();
    assert_eq!(
        m["ServerURL"].as_str(),
        Some(url.as_str()),
        "get echoes the URL"
    );
    assert!(m["Username"].is_string() && m["Secret"].is_string());
    Some(m)
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.vault.reset();
    for (verb, stdin) in requests(data, VERBS, 8) {
        match verb {
            Verb::Get => {
                get(stdin);
            }
            Verb::List => {
                let r = run("list", stdin);
                assert_eq!(r.code, 0, "list fails only without a vault");
                let v: serde_json::Value =
                    serde_json::from_slice(&r.stdout).expect("list answers JSON");
                assert!(
                    v.as_object()
                        .is_some_and(|m| m.values().all(|u| u.is_string()))
                );
            }
            Verb::Store => {
                let r = run("store", stdin);
                if r.code != 0 {
                    continue;
                }
                let c = parse_store(stdin).expect("store succeeded, so the request parsed");
                assert!(r.stdout.is_empty());
                if c.server_url.trim() != c.server_url {
                    // Clients send URLs without surrounding blanks; `get`
                    // trims its input, as the reference helpers do.
                    continue;
                }
                let m = get(c.server_url.as_bytes()).expect("what was stored is found");
                assert_eq!(m["Username"].as_str(), Some(c.username.as_str()));
                assert_eq!(m["Secret"].as_str(), Some(c.secret.expose()));
            }
            Verb::Erase => {
                let r = run("erase", stdin);
                if r.code == 0 {
                    assert!(get(stdin).is_none(), "an erased registry still answers");
                }
            }
        }
    }
});
