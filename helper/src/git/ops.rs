//! The helper's operations on the vault, and [`run`], which the binary
//! calls with its argument, stdin, stdout and stderr.
//!
//! Quiet by design: git's test suite compares stderr byte for byte and git
//! asks the next helper (or the user) when `get` prints nothing, so the
//! expected misses (no vault, no key) print nothing unless `DEVC_VAULT_DEBUG`
//! is set. Real failures (a damaged vault, a failed write) print one line.

use std::fmt;
use std::io::{Read, Write};

use devc_keydelivery::{Config, PromptPolicy, UnlockError, environment};
use devc_vault::{GitEntry, Store, Upsert, Vault};

use super::protocol::{self, Operation, ParseError, Request, Response, WriteError};
use crate::io;

/// The program name used in diagnostics.
pub const PROGRAM: &str = "git-credential-devc-encrypted";

/// Everything an operation needs besides its request.
#[derive(Clone, Debug)]
pub struct Context {
    /// The vault file.
    pub store: Store,
    /// Where keys come from.
    pub keys: Config,
    /// The current time, unix seconds (for expiry).
    pub now: u64,
    /// Print a line for expected misses too.
    pub debug: bool,
}

impl Context {
    /// The context from the process environment: vault path and key
    /// sources as every devc-vault binary resolves them, `DEVC_VAULT_DEBUG`,
    /// and git's `GIT_TERMINAL_PROMPT` (when git may not prompt, neither
    /// may a passphrase source).
    pub fn from_env() -> Result<Context, UnlockError> {
        let mut keys = Config::load()?;
        if !prompt_allowed(std::env::var("GIT_TERMINAL_PROMPT").ok().as_deref()) {
            keys.prompt = PromptPolicy::Never;
        }
        Ok(Context {
            store: keys.store(environment::vault_path()),
            keys,
            now: devc_vault::now(),
            debug: environment::debug(),
        })
    }
}

/// Whether a passphrase prompt is allowed given `GIT_TERMINAL_PROMPT`:
/// git's own prompts honour it, and a helper must not prompt where git would not.
pub fn prompt_allowed(git_terminal_prompt: Option<&str>) -> bool {
    !git_terminal_prompt.is_some_and(environment::is_false)
}

/// Why an operation did not complete. Messages never contain secrets.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpError {
    /// stdin was not a valid request.
    Input(ParseError),
    /// The answer could not be written.
    Output(WriteError),
    /// The vault could not be opened or written.
    Vault(UnlockError),
}

impl OpError {
    /// Expected misses (no vault, no key), reported only in debug mode.
    pub fn is_quiet(&self) -> bool {
        matches!(self, OpError::Vault(e) if e.is_miss())
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Input(e) => write!(f, "invalid request: {e}"),
            OpError::Output(e) => write!(f, "{e}"),
            OpError::Vault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<devc_vault::Error> for OpError {
    fn from(e: devc_vault::Error) -> Self {
        OpError::Vault(e.into())
    }
}

impl From<UnlockError> for OpError {
    fn from(e: UnlockError) -> Self {
        OpError::Vault(e)
    }
}

fn unlock(ctx: &Context, sealed: &devc_vault::SealedVault) -> Result<Vault, OpError> {
    Ok(devc_keydelivery::unlock(sealed, &ctx.keys)?)
}

/// `get`: the newest unexpired entry matching the request, if any.
pub fn get(ctx: &Context, req: &Request) -> Result<Option<Response>, OpError> {
    if !req.query().is_scoped() {
        return Ok(None);
    }
    let vault = devc_keydelivery::open(&ctx.store, &ctx.keys)?;
    Ok(vault.find_git(&req.query(), ctx.now).map(|e| Response {
        username: e.username.clone(),
        password: e.password.clone(),
        password_expiry_utc: e.password_expiry_utc,
        oauth_refresh_token: e.oauth_refresh_token.clone(),
    }))
}

/// What `store` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// What the vault did with the credential (`Unchanged`: nothing was written).
    Upsert(Upsert),
    /// The request lacked what an entry needs; nothing was written.
    Ignored(&'static str),
}

/// `store`: adds the credential, replacing the entry with the same
/// protocol, host, path and username.
pub fn store(ctx: &Context, req: &Request) -> Result<Stored, OpError> {
    let (Some(protocol), Some(host)) = (&req.protocol, &req.host) else {
        return Ok(Stored::Ignored("no protocol or host"));
    };
    if protocol.is_empty() || host.is_empty() {
        return Ok(Stored::Ignored("empty protocol or host"));
    }
    // git 2.46+ may approve a bare `credential=` (authtype capability) with no
    // username or password; this helper does not announce that capability.
    let (Some(username), Some(password)) = (&req.username, &req.password) else {
        return Ok(Stored::Ignored("no username or password"));
    };
    let entry = GitEntry::new(protocol, host, username, password.clone())
        .with_path(req.path.clone())
        .with_expiry(req.password_expiry_utc)
        .with_refresh_token(req.oauth_refresh_token.clone());
    let done = ctx.store.update(
        |s| unlock(ctx, s),
        |v| Ok::<_, OpError>(v.upsert_git(entry)?),
    )?;
    Ok(Stored::Upsert(done))
}

/// `erase`: removes every entry matching the request, including its
/// password when one is given. Returns how many were removed.
pub fn erase(ctx: &Context, req: &Request) -> Result<usize, OpError> {
    if !req.query().is_scoped() {
        return Ok(0);
    }
    ctx.store
        .update(|s| unlock(ctx, s), |v| Ok(v.remove_git(&req.query())))
}

/// Runs one helper invocation: reads the request from `input`, answers
/// `get` on `out`, and reports on `diag` (see the module doc for when).
/// Returns the process exit status.
pub fn run(
    op: Operation,
    ctx: Result<Context, UnlockError>,
    input: impl Read,
    out: &mut impl Write,
    diag: &mut dyn Write,
) -> u8 {
    if op == Operation::Unknown {
        // git: "If a helper receives any other operation, it should silently
        // ignore the request."
        return 0;
    }
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(e) => {
            io::diagnostic(diag, PROGRAM, &format!("{}: {e}", op.name()));
            return 1;
        }
    };
    let result = protocol::read_request(input)
        .map_err(OpError::Input)
        .and_then(|req| perform(op, &ctx, &req, out));
    match result {
        Ok(note) => {
            if ctx.debug {
                io::diagnostic(diag, PROGRAM, &format!("{}: {note}", op.name()));
            }
            0
        }
        Err(e) => {
            if !e.is_quiet() || ctx.debug {
                io::diagnostic(diag, PROGRAM, &format!("{}: {e}", op.name()));
            }
            // A miss is a normal answer; git goes on to its next helper either way.
            if e.is_quiet() { 0 } else { 1 }
        }
    }
}

/// Performs `op` and says, for debug output, what happened.
fn perform(
    op: Operation,
    ctx: &Context,
    req: &Request,
    out: &mut impl Write,
) -> Result<String, OpError> {
    let target = describe(req);
    Ok(match op {
        Operation::Get => match get(ctx, req)? {
            Some(resp) => {
                protocol::write_response(out, &resp).map_err(OpError::Output)?;
                format!("found a credential for {target}")
            }
            None => format!("no stored credential for {target}"),
        },
        Operation::Store => match store(ctx, req)? {
            Stored::Upsert(Upsert::Added) => format!("stored a credential for {target}"),
            Stored::Upsert(Upsert::Replaced) => format!("replaced the credential for {target}"),
            Stored::Upsert(Upsert::Unchanged) => {
                format!("the credential for {target} is already stored")
            }
            Stored::Ignored(why) => format!("nothing stored ({why})"),
        },
        Operation::Erase => format!("erased {} credential(s) for {target}", erase(ctx, req)?),
        Operation::Unknown => String::new(),
    })
}

/// `protocol://[user@]host[/path]` for diagnostics: never a password.
fn describe(req: &Request) -> String {
    let mut s = format!("{}://", req.protocol.as_deref().unwrap_or("?"));
    if let Some(u) = &req.username {
        s.push_str(u);
        s.push('@');
    }
    s.push_str(req.host.as_deref().unwrap_or("?"));
    if let Some(p) = &req.path {
        s.push('/');
        s.push_str(p);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use devc_keydelivery::SourceKind;
    use devc_vault::{KeySecret, SlotKind, keyfile};

    use super::*;

    /// A vault with one key-file slot in a temp dir, and a context that opens it.
    fn setup(dir: &Path) -> Context {
        let secret = KeySecret::generate();
        let key_file = dir.join("key");
        keyfile::create(&key_file, &secret).expect("key file");
        let mut vault = Vault::create();
        vault
            .add_secret_slot(SlotKind::KeyFile, &secret)
            .expect("slot");
        let store = Store::new(dir.join("vault").join(".credentials.enc"));
        store.create(&vault).expect("vault");
        let mut keys = Config::defaults();
        keys.order = vec![SourceKind::File];
        keys.key_file = key_file;
        keys.prompt = PromptPolicy::Never;
        Context {
            store,
            keys,
            now: 1_000,
            debug: false,
        }
    }

    fn call(ctx: &Context, op: &str, input: &str) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(
            Operation::parse(op),
            Ok(ctx.clone()),
            input.as_bytes(),
            &mut out,
            &mut err,
        );
        (
            code,
            String::from_utf8(out).expect("utf8"),
            String::from_utf8(err).expect("utf8"),
        )
    }

    fn ok(ctx: &Context, op: &str, input: &str) -> String {
        let (code, out, err) = call(ctx, op, input);
        assert_eq!((code, err.as_str()), (0, ""), "{op} {input:?}");
        out
    }

    #[test]
    fn store_get_erase_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        assert_eq!(ok(&ctx, "get", "protocol=https\nhost=example.com\n"), "");
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=example.com\nusername=alice\npassword=pw1\n",
        );
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=example.com\nusername=bob\npassword=pw2\n",
        );
        assert_eq!(
            ok(
                &ctx,
                "get",
                "protocol=https\nhost=example.com\nusername=alice\n"
            ),
            "username=alice\npassword=pw1\n"
        );
        // Replace, not duplicate.
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=example.com\nusername=alice\npassword=pw3\n",
        );
        let vault = ctx.store.read().expect("read");
        let vault = unlock(&ctx, &vault).expect("unlock");
        assert_eq!(vault.git().len(), 2);
        assert_eq!(
            ok(
                &ctx,
                "get",
                "protocol=https\nhost=example.com\nusername=alice\n"
            ),
            "username=alice\npassword=pw3\n"
        );
        // A wrong password does not erase; the right one does.
        ok(
            &ctx,
            "erase",
            "protocol=https\nhost=example.com\nusername=alice\npassword=nope\n",
        );
        assert_ne!(
            ok(
                &ctx,
                "get",
                "protocol=https\nhost=example.com\nusername=alice\n"
            ),
            ""
        );
        ok(
            &ctx,
            "erase",
            "protocol=https\nhost=example.com\nusername=alice\npassword=pw3\n",
        );
        assert_eq!(
            ok(
                &ctx,
                "get",
                "protocol=https\nhost=example.com\nusername=alice\n"
            ),
            ""
        );
        // Host-wide erase takes the rest.
        ok(&ctx, "erase", "protocol=https\nhost=example.com\n");
        assert_eq!(ok(&ctx, "get", "protocol=https\nhost=example.com\n"), "");
    }

    #[test]
    fn expiry_and_refresh_token_are_kept_and_expired_entries_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = setup(dir.path());
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=p\npassword_expiry_utc=2000\noauth_refresh_token=r\n",
        );
        let q = "protocol=https\nhost=h\n";
        assert_eq!(
            ok(&ctx, "get", q),
            "username=u\npassword=p\npassword_expiry_utc=2000\noauth_refresh_token=r\n"
        );
        ctx.now = 2_001;
        assert_eq!(ok(&ctx, "get", q), "");
    }

    #[test]
    fn unchanged_store_and_empty_erase_do_not_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        let req = "protocol=https\nhost=h\nusername=u\npassword=p\n";
        ok(&ctx, "store", req);
        let before = std::fs::read(ctx.store.path()).expect("read");
        let r = protocol::parse_request(req.as_bytes()).expect("parse");
        assert_eq!(
            store(&ctx, &r).expect("store"),
            Stored::Upsert(Upsert::Unchanged)
        );
        let other = protocol::parse_request(b"protocol=https\nhost=other\n").expect("parse");
        assert_eq!(erase(&ctx, &other).expect("erase"), 0);
        // Every seal uses a fresh salt, so equal bytes mean no write happened.
        assert_eq!(std::fs::read(ctx.store.path()).expect("read"), before);
    }

    #[test]
    fn incomplete_or_unscoped_requests_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=p\n",
        );
        for req in [
            "protocol=https\nhost=h\nusername=u\n",
            "protocol=https\nhost=h\npassword=p\n",
            "host=h\nusername=u\npassword=p\n",
            "protocol=https\nhost=\nusername=u\npassword=p\n",
        ] {
            let r = protocol::parse_request(req.as_bytes()).expect("parse");
            assert!(
                matches!(store(&ctx, &r).expect("store"), Stored::Ignored(_)),
                "{req}"
            );
        }
        // An erase without protocol and host must not wipe the vault.
        ok(&ctx, "erase", "username=u\n");
        ok(&ctx, "erase", "");
        assert_ne!(ok(&ctx, "get", "protocol=https\nhost=h\n"), "");
        assert_eq!(ok(&ctx, "get", "username=u\n"), "");
    }

    #[test]
    fn misses_are_silent_unless_debugging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = setup(dir.path());
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=p\n",
        );
        // No key: get prints nothing and exits 0, on stdout and stderr.
        ctx.keys.key_file = dir.path().join("missing-key");
        assert_eq!(ok(&ctx, "get", "protocol=https\nhost=h\n"), "");
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=q\n",
        );
        ok(&ctx, "erase", "protocol=https\nhost=h\n");
        ctx.debug = true;
        let (code, out, err) = call(&ctx, "get", "protocol=https\nhost=h\n");
        assert_eq!((code, out.as_str()), (0, ""));
        assert!(
            err.starts_with(&format!("{PROGRAM}: get: no key for the vault")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        // No vault at all.
        ctx.debug = false;
        ctx.store = Store::new(dir.path().join("nowhere").join(".credentials.enc"));
        assert_eq!(ok(&ctx, "get", "protocol=https\nhost=h\n"), "");
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=q\n",
        );
        assert!(
            !dir.path().join("nowhere").exists(),
            "no lock file or directory is created"
        );
    }

    #[test]
    fn damage_and_bad_input_are_reported_without_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        ok(
            &ctx,
            "store",
            "protocol=https\nhost=h\nusername=u\npassword=hunter2\n",
        );
        let (code, out, err) = call(&ctx, "get", "protocol=https\nhost=h\nno-equals-sign\n");
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("line 3"), "{err}");
        let mut bytes = std::fs::read(ctx.store.path()).expect("read");
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        std::fs::write(ctx.store.path(), &bytes).expect("write");
        let (code, out, err) = call(&ctx, "get", "protocol=https\nhost=h\n");
        assert_eq!(
            (code, out.as_str(), err.lines().count()),
            (1, "", 1),
            "{err}"
        );
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn unknown_operations_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        assert_eq!(ok(&ctx, "list", "protocol=https\nhost=h\n"), "");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(
            Operation::Unknown,
            Err(UnlockError::NoVault("/nowhere".into())),
            &b""[..],
            &mut out,
            &mut err,
        );
        assert_eq!((code, out.len(), err.len()), (0, 0, 0));
    }

    #[test]
    fn values_git_cannot_carry_are_refused_on_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = setup(dir.path());
        let r = Request {
            protocol: Some("https".into()),
            host: Some("h".into()),
            username: Some("u".into()),
            password: Some(devc_vault::Secret::from("a\rb")),
            ..Request::default()
        };
        assert!(matches!(store(&ctx, &r), Err(OpError::Vault(_))));
        assert_eq!(ok(&ctx, "get", "protocol=https\nhost=h\n"), "");
    }

    #[test]
    fn prompt_policy_follows_git_terminal_prompt() {
        assert!(prompt_allowed(None));
        assert!(prompt_allowed(Some("1")));
        for v in ["0", "false", "FALSE", "no", "off"] {
            assert!(!prompt_allowed(Some(v)), "{v}");
        }
    }
}
