//! git's credential helper, whole: `devc_helper::git::ops::run` (read the
//! request, unlock, match, write, answer) against a real vault and key
//! file in a temporary directory.
//!
//! One input is up to 8 requests separated by NUL bytes, each an
//! operation byte (`g`et, `s`tore, `e`rase, `u`nknown; any other byte
//! picks one) and its stdin. The vault is put back before every input.
//!
//! Oracles:
//! - exit 0 or 1, at most one diagnostic line, and `get` output is
//!   `key=value` lines that parse back as a request;
//! - after a `store` of a complete request that exits 0, the vault holds
//!   exactly that credential, and a `get` of the same request answers one
//!   for the same user (unless it has expired);
//! - after an `erase` without a password that exits 0, a `get` of the same
//!   request answers nothing; with a password, never that password.
#![no_main]

use std::sync::LazyLock;

use devc_helper::git::ops::{self, Context};
use devc_helper::git::protocol::{Operation, parse_request};
use devc_vault_fuzz::{TempVault, requests};
use libfuzzer_sys::fuzz_target;

/// The helper's clock: between the sample entries' expiry times and after
/// some, so expired entries are skipped.
const NOW: u64 = 1_900_000_000;

const OPS: &[(u8, Operation)] = &[
    (b'g', Operation::Get),
    (b's', Operation::Store),
    (b'e', Operation::Erase),
    (b'u', Operation::Unknown),
];

struct Fixture {
    // Kept for the directory's lifetime.
    vault: TempVault,
    ctx: Context,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let vault = TempVault::new("git_helper");
    let keys = vault.config();
    let ctx = Context {
        store: keys.store(&vault.vault),
        keys,
        now: NOW,
        // Diagnostics for every request, into a buffer: more of the code runs.
        debug: true,
    };
    Fixture { vault, ctx }
});

fn run(op: Operation, stdin: &[u8]) -> (u8, Vec<u8>) {
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    let code = ops::run(op, Ok(FIXTURE.ctx.clone()), stdin, &mut out, &mut diag);
    assert!(code <= 1, "exit code {code}");
    assert!(
        diag.iter().filter(|&&b| b == b'\n').count() <= 1,
        "more than one diagnostic line"
    );
    if op != Operation::Get {
        assert!(out.is_empty(), "{op:?} wrote to stdout");
    } else if !out.is_empty() {
        assert_eq!(code, 0);
        assert!(out.ends_with(b"\n"));
        parse_request(&out).expect("get output parses as key=value lines");
    }
    (code, out)
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.vault.reset();
    for (op, stdin) in requests(data, OPS, 8) {
        let (code, _) = run(op, stdin);
        if code != 0 {
            continue;
        }
        let Ok(req) = parse_request(stdin) else {
            continue;
        };
        let scoped = req.query().is_scoped();
        match op {
            Operation::Store => {
                let (Some(username), Some(password)) = (&req.username, &req.password) else {
                    continue;
                };
                if !scoped {
                    continue;
                }
                let ctx = &FIXTURE.ctx;
                let vault = devc_keydelivery::open(&ctx.store, &ctx.keys).expect("the vault opens");
                assert!(
                    vault
                        .git()
                        .iter()
                        .any(|e| Some(&e.protocol) == req.protocol.as_ref()
                            && Some(&e.host) == req.host.as_ref()
                            && e.path == req.path
                            && &e.username == username
                            && &e.password == password
                            && e.password_expiry_utc == req.password_expiry_utc
                            && e.oauth_refresh_token == req.oauth_refresh_token),
                    "store exited 0 but the vault lacks the credential"
                );
                if req.password_expiry_utc.is_some_and(|t| t < NOW) {
                    continue;
                }
                // The newest matching entry answers, which need not be this
                // one (an unchanged store writes nothing), but one does.
                let (_, got) = run(Operation::Get, stdin);
                let back = parse_request(&got).expect("parses");
                assert_eq!(back.username.as_ref(), Some(username), "get after store");
            }
            Operation::Erase if scoped => {
                let (_, got) = run(Operation::Get, stdin);
                match &req.password {
                    None => assert!(got.is_empty(), "an erased credential still answers"),
                    Some(p) => {
                        let back = parse_request(&got).expect("parses");
                        assert!(
                            back.password.as_ref() != Some(p),
                            "an erased password still answers"
                        );
                    }
                }
            }
            _ => {}
        }
    }
});
