//! `git-credential-devc-encrypted`: git's credential-helper protocol over a
//! devc-vault vault.
//!
//! Configured as `credential.helper = devc-encrypted`; git runs
//! `git credential-devc-encrypted get|store|erase` with the request on stdin.
//!
//! Supported attributes: `protocol`, `host` (with port), `path`,
//! `username`, `password`, `password_expiry_utc`, `oauth_refresh_token`.
//! Not supported, deliberately: git 2.46's `capability[]` extensions
//! (`authtype`, `credential`, `ephemeral`, `state[]`, `continue`). The
//! helper never announces `capability[]`, so git neither expects those
//! attributes back nor relies on them; a `store` carrying only a
//! `credential` (no username and password) is ignored. `wwwauth[]`, `url`,
//! `quit` and any unknown attribute are ignored on input and never echoed.
//! The `cert` protocol (client-certificate passphrases, keyed by path with
//! no host) is not served: `get` and `erase` need both protocol and host.

pub mod ops;
pub mod protocol;
