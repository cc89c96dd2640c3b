//! The helper's verbs served from the vault: what each prints, on which
//! stream, with which exit code. The binary only passes argv and stdin in
//! and writes the [`Reply`] out.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use devc_keydelivery::{Config, ConfigError, UnlockError, environment};
use devc_vault::{DockerEntry, Store, Vault, clock};
use zeroize::Zeroizing;

use super::client::{self, Answer};
use super::protocol::{self, BIN_NAME, Credentials, NOT_FOUND, Verb};
use crate::io;

/// What the helper writes and how it exits.
pub struct Reply {
    /// Protocol output (may hold a secret, so it is wiped on drop).
    pub stdout: Zeroizing<Vec<u8>>,
    /// At most one diagnostic line for the user's terminal.
    pub stderr: Option<String>,
    /// The exit code: 0 or 1.
    pub code: u8,
}

impl std::fmt::Debug for Reply {
    // stdout may hold a secret: show its size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("stdout", &format_args!("[{} bytes]", self.stdout.len()))
            .field("stderr", &self.stderr)
            .field("code", &self.code)
            .finish()
    }
}

impl Reply {
    fn ok(stdout: Zeroizing<Vec<u8>>) -> Reply {
        Reply {
            stdout,
            stderr: None,
            code: 0,
        }
    }

    /// Errors go to stdout, where the docker CLI reads them, with exit 1.
    pub fn fail(message: &str) -> Reply {
        let line = io::one_line(message);
        Reply {
            stdout: Zeroizing::new(format!("{line}\n").into_bytes()),
            stderr: None,
            code: 1,
        }
    }

    fn not_found() -> Reply {
        Reply::fail(NOT_FOUND)
    }

    fn note(mut self, why: impl AsRef<str>) -> Reply {
        self.stderr = Some(io::one_line(why.as_ref()));
        self
    }

    /// Writes the reply: the stderr line, then stdout on the raw descriptor.
    pub fn emit(&self) -> std::io::Result<()> {
        if let Some(line) = &self.stderr {
            io::diagnostic(&mut std::io::stderr(), BIN_NAME, line);
        }
        io::Stdout.write_all(&self.stdout)
    }
}

/// Where the helper finds its vault and keys.
#[derive(Debug)]
pub struct Helper {
    /// The vault file.
    pub vault: PathBuf,
    /// Key-source configuration.
    pub keys: Config,
    /// Deadline for a chained helper.
    pub chain_timeout: Duration,
    /// This executable, so chaining never calls it.
    pub self_exe: Option<PathBuf>,
}

/// Why a verb could not complete.
#[derive(Debug)]
enum VerbError {
    /// The vault could not be opened or written.
    Vault(UnlockError),
    /// No entry matched.
    NotFound,
}

impl From<UnlockError> for VerbError {
    fn from(e: UnlockError) -> Self {
        VerbError::Vault(e)
    }
}

impl From<devc_vault::Error> for VerbError {
    fn from(e: devc_vault::Error) -> Self {
        VerbError::Vault(e.into())
    }
}

impl std::fmt::Display for VerbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerbError::Vault(UnlockError::Vault(devc_vault::Error::Io { op, path, source }))
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                write!(
                    f,
                    "the vault is read-only here (cannot {op} {}: {source}); mount its directory read-write to use docker login/logout",
                    path.display()
                )
            }
            VerbError::Vault(e) => write!(f, "{e}"),
            VerbError::NotFound => f.write_str(NOT_FOUND),
        }
    }
}

impl Helper {
    /// The helper as the environment configures it (`DEVC_VAULT`, `DOCKER_CONFIG`,
    /// `DEVC_VAULT_KEY_FILE`, `DEVC_VAULT_KEY_ORDER`, the config file, ...).
    pub fn from_env() -> Result<Helper, ConfigError> {
        Ok(Helper {
            vault: environment::vault_path(),
            keys: Config::load()?,
            chain_timeout: client::DEFAULT_TIMEOUT,
            self_exe: std::env::current_exe().ok(),
        })
    }

    /// Runs the verb in `args` (argv without the program name) with `stdin`.
    pub fn run(&self, args: &[OsString], stdin: &mut dyn Read) -> Reply {
        let verb = match parse_verb(args) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        let input = match verb {
            Verb::Version => {
                return Reply::ok(Zeroizing::new(protocol::version_line().into_bytes()));
            }
            Verb::Help => return Reply::ok(Zeroizing::new(protocol::help().into_bytes())),
            // `list` never reads stdin: docker-py passes none, and the CLI passes junk.
            Verb::List => return self.list(),
            Verb::Get | Verb::Store | Verb::Erase => match io::read_input(stdin) {
                Ok(input) => input,
                Err(e) => return Reply::fail(&e.to_string()),
            },
        };
        match verb {
            Verb::Get => self.get(&input),
            Verb::Store => self.store(&input),
            _ => self.erase(&input),
        }
    }

    fn store_handle(&self) -> Store {
        self.keys.store(&self.vault)
    }

    fn unlock(&self, sealed: &devc_vault::SealedVault) -> Result<Vault, UnlockError> {
        devc_keydelivery::unlock(sealed, &self.keys)
    }

    fn get(&self, input: &[u8]) -> Reply {
        let url = match protocol::parse_server_url(input) {
            Ok(u) => u,
            Err(e) => return Reply::fail(&e.to_string()),
        };
        let expired;
        let previous = match devc_keydelivery::open(&self.store_handle(), &self.keys) {
            Ok(vault) => {
                let now = devc_vault::now();
                if let Some(e) = vault.find_docker_at(&url, now) {
                    return Reply::ok(protocol::encode_credentials(&Credentials {
                        server_url: url,
                        username: e.username.clone(),
                        secret: e.secret.clone(),
                    }));
                }
                // An entry known to be dead is not handed out: the client
                // would only get a 401 without knowing why.
                expired = vault
                    .find_docker(&url)
                    .filter(|e| e.is_expired(now))
                    .map(|e| expired_note(&url, e, now));
                vault.payload().chain.docker_creds_store.clone()
                // The vault (and every secret in it) is dropped here, before any chained helper runs.
            }
            // No vault or no key: answer not-found so public images still pull.
            Err(e) if e.is_miss() => {
                return Reply::not_found().note(format!("{e}; answering not found"));
            }
            Err(e) => return Reply::fail(&e.to_string()),
        };
        let not_found = |other: Option<String>| match expired.as_ref().or(other.as_ref()) {
            Some(why) => Reply::not_found().note(why),
            None => Reply::not_found(),
        };
        let Some(previous) = previous else {
            return not_found(None);
        };
        match client::get(
            &previous,
            &url,
            self.chain_timeout,
            self.self_exe.as_deref(),
        ) {
            Answer::Found(c) => Reply::ok(protocol::encode_credentials(&c)),
            Answer::NotFound => not_found(None),
            Answer::Failed(why) => not_found(Some(why)),
        }
    }

    fn list(&self) -> Reply {
        let vault = match devc_keydelivery::open(&self.store_handle(), &self.keys) {
            Ok(v) => v,
            // docker build lists before it gets: an empty list keeps it working.
            Err(e) if e.is_miss() => {
                return Reply::ok(Zeroizing::new(protocol::encode_list(&BTreeMap::new())))
                    .note(format!("{e}; listing nothing"));
            }
            Err(e) => return Reply::fail(&e.to_string()),
        };
        let map: BTreeMap<String, String> = vault
            .docker()
            .iter()
            .map(|e| (e.server_url.clone(), e.username.clone()))
            .collect();
        Reply::ok(Zeroizing::new(protocol::encode_list(&map)))
    }

    fn store(&self, input: &[u8]) -> Reply {
        let creds = match protocol::parse_store(input) {
            Ok(c) => c,
            Err(e) => return Reply::fail(&e.to_string()),
        };
        let entry = DockerEntry::new(creds.server_url, creds.username, creds.secret);
        let result = self.store_handle().update(
            |sealed| self.unlock(sealed).map_err(VerbError::from),
            |vault| vault.upsert_docker(entry).map_err(VerbError::from),
        );
        match result {
            Ok(_) => Reply::ok(Zeroizing::new(Vec::new())),
            Err(e) => Reply::fail(&format!("cannot store credentials: {e}")),
        }
    }

    /// Removes every entry that a `get` of the same address could return, so
    /// that after `docker logout HOST` (which erases `HOST`, `http://HOST` and
    /// `https://HOST`) no read of that registry succeeds.
    fn erase(&self, input: &[u8]) -> Reply {
        let url = match protocol::parse_server_url(input) {
            Ok(u) => u,
            Err(e) => return Reply::fail(&e.to_string()),
        };
        let result = self.store_handle().update(
            |sealed| self.unlock(sealed).map_err(VerbError::from),
            |vault| match vault.remove_docker(&url) {
                0 => Err(VerbError::NotFound),
                n => Ok(n),
            },
        );
        match result {
            Ok(_) => Reply::ok(Zeroizing::new(Vec::new())),
            Err(VerbError::NotFound) => Reply::not_found(),
            Err(e) => Reply::fail(&format!("cannot erase credentials: {e}")),
        }
    }
}

/// The stderr line for an expired entry: the registry, when it expired,
/// where the host got it, and the host command that refreshes it.
fn expired_note(url: &str, e: &DockerEntry, now: u64) -> String {
    let at = e.expires.unwrap_or(now);
    let from = match &e.source {
        Some(s) if s.kind == "docker-helper" => {
            format!(" (from the host's docker-credential-{})", s.from)
        }
        Some(s) => format!(" (from the host's {} {})", s.kind, s.from),
        None => String::new(),
    };
    format!(
        "the credentials for {url}{from} expired at {} ({} ago); refresh them on the host with `devc-vault seal --refresh` (or keep `devc-vault agent --refresh-every 15m` running); answering not found",
        clock::utc(at),
        clock::span(now.saturating_sub(at)),
    )
}

/// The verb, or the reply to bad arguments (usage, unknown verb).
fn parse_verb(args: &[OsString]) -> Result<Verb, Reply> {
    let [verb] = args else {
        return Err(Reply::fail(&protocol::usage()));
    };
    let verb_text = verb.to_string_lossy();
    Verb::parse(&verb_text).ok_or_else(|| Reply::fail(&protocol::unknown_verb(&verb_text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devc_keydelivery::{PromptPolicy, SourceKind};
    use devc_vault::{KeySecret, SlotKind, keyfile};
    use std::ffi::OsString;

    fn file_only(key_file: PathBuf) -> Config {
        let mut c = Config::defaults();
        c.order = vec![SourceKind::File];
        c.key_file = key_file;
        c.prompt = PromptPolicy::Never;
        c
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        helper: Helper,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_path = dir.path().join("key");
        let vault_path = dir.path().join(".credentials.enc");
        let secret = KeySecret::generate();
        keyfile::create(&key_path, &secret).expect("key file");
        let mut v = Vault::create();
        v.add_secret_slot(SlotKind::KeyFile, &secret).expect("slot");
        Store::new(&vault_path).create(&v).expect("create vault");
        let helper = Helper {
            vault: vault_path,
            keys: file_only(key_path),
            chain_timeout: Duration::from_secs(3),
            self_exe: None,
        };
        Fixture { _dir: dir, helper }
    }

    fn call(h: &Helper, verb: &str, input: &str) -> (String, Option<String>, u8) {
        let r = h.run(&[OsString::from(verb)], &mut input.as_bytes());
        (
            String::from_utf8(r.stdout.to_vec()).expect("utf8"),
            r.stderr,
            r.code,
        )
    }

    fn store(h: &Helper, url: &str, user: &str, secret: &str) {
        let json =
            serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string();
        assert_eq!(
            call(h, "store", &json),
            (String::new(), None, 0),
            "store {url}"
        );
    }

    fn get_ok(h: &Helper, url: &str) -> serde_json::Value {
        let (out, err, code) = call(h, "get", url);
        assert_eq!((code, err), (0, None), "get {url}: {out}");
        serde_json::from_str(&out).expect("json")
    }

    const NF: &str = "credentials not found in native keychain\n";

    #[test]
    fn conformance_round_trip_erase_list() {
        let f = fixture();
        let h = &f.helper;
        assert_eq!(call(h, "list", ""), ("{}\n".into(), None, 0));
        store(h, "https://index.docker.io/v1/", "foo", "bar");
        store(h, "host:5000", "u1", "s1");
        store(h, "host:5001", "u2", "s2");
        let v = get_ok(h, "https://index.docker.io/v1/");
        assert_eq!(
            v,
            serde_json::json!({"ServerURL": "https://index.docker.io/v1/", "Username": "foo", "Secret": "bar"})
        );
        assert_eq!(get_ok(h, "host:5000")["Secret"], "s1");
        assert_eq!(get_ok(h, "host:5001")["Secret"], "s2");
        assert_eq!(
            call(h, "list", "ignored").0,
            "{\"host:5000\":\"u1\",\"host:5001\":\"u2\",\"https://index.docker.io/v1/\":\"foo\"}\n"
        );
        // Replacing keeps one entry per registry.
        store(h, "host:5000", "u1b", "s1b");
        assert_eq!(get_ok(h, "host:5000")["Username"], "u1b");
        for url in ["https://index.docker.io/v1/", "host:5000", "host:5001"] {
            assert_eq!(call(h, "erase", url), (String::new(), None, 0));
            assert_eq!(call(h, "get", url), (NF.into(), None, 1));
            assert_eq!(call(h, "erase", url), (NF.into(), None, 1));
        }
        assert_eq!(call(h, "list", ""), ("{}\n".into(), None, 0));
    }

    #[test]
    fn conformance_errors() {
        let f = fixture();
        let h = &f.helper;
        let e = |m: &str| (format!("{m}\n"), None, 1u8);
        assert_eq!(
            call(h, "store", r#"{"Username":"u","Secret":"s"}"#),
            e("no credentials server URL")
        );
        assert_eq!(
            call(h, "store", r#"{"ServerURL":"h","Secret":"s"}"#),
            e("no credentials username")
        );
        assert_eq!(call(h, "get", ""), e("no credentials server URL"));
        assert_eq!(call(h, "erase", "\n"), e("no credentials server URL"));
        assert_eq!(call(h, "get", "nothing.example"), (NF.into(), None, 1));
        assert_eq!(call(h, "nope", ""), e("Unknown credential action `nope`"));
        let (help, _, code) = call(h, "--help", "");
        assert!(
            code == 0 && help.starts_with("Usage: docker-credential-devc-encrypted"),
            "{help}"
        );
        let r = h.run(&[], &mut &b""[..]);
        assert_eq!(
            (&r.stdout[..], r.code),
            (
                &b"Usage: docker-credential-devc-encrypted <store|get|erase|list|version>\n"[..],
                1
            )
        );
        let r = h.run(&["get".into(), "x".into()], &mut &b"h"[..]);
        assert_eq!(r.code, 1);
        // A name with a line break is refused; a secret may hold anything.
        let (out, _, code) = call(
            h,
            "store",
            "{\"ServerURL\":\"h\",\"Username\":\"u\\nv\",\"Secret\":\"s\"}",
        );
        assert_eq!(code, 1);
        assert!(
            out.starts_with("cannot store credentials: invalid entry"),
            "{out}"
        );
        store(
            h,
            "multi.example",
            "_json_key",
            "{\n \"k\": \"v\"\n}\t\u{0}",
        );
        assert_eq!(
            get_ok(h, "multi.example")["Secret"],
            "{\n \"k\": \"v\"\n}\t\u{0}"
        );
        // Trailing bytes after the JSON value are refused.
        let (out, _, code) = call(
            h,
            "store",
            "{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"s\"} junk",
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("after the JSON"), "{out}");
        // Oversized input is refused before it is parsed.
        let big = " ".repeat(crate::io::MAX_INPUT + 1);
        assert_eq!(call(h, "get", &big).2, 1);
    }

    #[test]
    fn url_forms_and_token_user() {
        let f = fixture();
        let h = &f.helper;
        store(h, "https://foobar.example:2376/v1/", "u", "s");
        for q in [
            "foobar.example:2376",
            "https://foobar.example:2376/v1/",
            "//foobar.example:2376",
            "foobar.example:2376?foo=bar",
            "https://foobar.example:2376",
        ] {
            let v = get_ok(h, q);
            assert_eq!(
                (v["ServerURL"].as_str(), v["Secret"].as_str()),
                (Some(q), Some("s")),
                "{q}"
            );
        }
        assert_eq!(call(h, "get", "foobar.example").2, 1);
        assert_eq!(call(h, "get", "http://foobar.example:2376").2, 1);
        store(h, "https://[::1]:8080/path", "<token>", "idtoken");
        let (out, _, _) = call(h, "get", "[::1]:8080");
        assert_eq!(
            out,
            "{\"ServerURL\":\"[::1]:8080\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"idtoken\"}\n"
        );
        // docker-py#2402.
        store(h, "https://plain.example", "u", "p");
        assert_eq!(get_ok(h, "plain.example")["Secret"], "p");
        // Docker Hub's four spellings.
        store(h, "docker.io", "hub", "hubpw");
        for q in [
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(get_ok(h, q)["Secret"], "hubpw", "{q}");
        }
        store(h, "https://index.docker.io/v1/", "hub2", "hubpw2");
        assert_eq!(
            call(h, "list", "").0.matches("docker.io").count(),
            1,
            "one Hub entry"
        );
        assert_eq!(get_ok(h, "registry-1.docker.io")["Username"], "hub2");
    }

    #[test]
    fn no_key_get_is_not_found_with_one_line() {
        let f = fixture();
        store(&f.helper, "host:1", "u", "s");
        let h = Helper {
            keys: file_only(PathBuf::from("/nonexistent/key")),
            vault: f.helper.vault.clone(),
            chain_timeout: Duration::from_secs(1),
            self_exe: None,
        };
        let (out, err, code) = call(&h, "get", "host:1");
        assert_eq!((out.as_str(), code), (NF, 1));
        let err = err.expect("a stderr line");
        assert!(
            !err.contains('\n') && err.contains("file: /nonexistent/key not found"),
            "{err}"
        );
        let (out, err, code) = call(&h, "list", "");
        assert_eq!((out.as_str(), code), ("{}\n", 0));
        assert!(err.is_some());
        let (out, _, code) = call(
            &h,
            "store",
            r#"{"ServerURL":"h","Username":"u","Secret":"s"}"#,
        );
        assert_eq!(code, 1);
        assert!(
            out.starts_with("cannot store credentials: no key for the vault"),
            "{out}"
        );
        let (out, _, code) = call(&h, "erase", "host:1");
        assert_eq!(code, 1);
        assert!(out.starts_with("cannot erase credentials: no key"), "{out}");
    }

    #[test]
    fn an_expired_entry_is_not_handed_out_and_says_why() {
        let f = fixture();
        let h = &f.helper;
        let now = devc_vault::now();
        let store = Store::new(&h.vault);
        let seal = |expires: u64| {
            store
                .update(
                    |s| devc_keydelivery::unlock(s, &h.keys),
                    |v| {
                        v.upsert_docker(
                            DockerEntry::new("reg.example", "u", "tok".into())
                                .with_expiry(Some(expires))
                                .with_source(devc_vault::Source::new(
                                    "docker-helper",
                                    "ecr-login",
                                    now - 100,
                                )),
                        )
                        .map_err(UnlockError::from)
                    },
                )
                .expect("seal");
        };
        seal(now + 3600);
        assert_eq!(get_ok(h, "reg.example")["Secret"], "tok");
        seal(now - 5);
        let (out, err, code) = call(h, "get", "reg.example");
        assert_eq!((out.as_str(), code), (NF, 1));
        let err = err.expect("one stderr line");
        for part in [
            "reg.example",
            "docker-credential-ecr-login",
            "expired at ",
            " UTC",
            "devc-vault seal --refresh",
        ] {
            assert!(err.contains(part), "{part:?} missing: {err}");
        }
        assert!(!err.contains('\n') && !err.contains("tok\""), "{err}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let f = fixture();
        store(&f.helper, "h", "u", "hunter2-secret");
        let r = f.helper.run(&[OsString::from("get")], &mut &b"h"[..]);
        assert_eq!(r.code, 0);
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("104, 117"),
            "{shown}"
        );
    }

    #[test]
    fn missing_vault() {
        let f = fixture();
        let h = Helper {
            vault: f.helper.vault.with_file_name("absent.enc"),
            keys: f.helper.keys.clone(),
            chain_timeout: Duration::from_secs(1),
            self_exe: None,
        };
        let (out, err, code) = call(&h, "get", "h");
        assert_eq!((out.as_str(), code), (NF, 1));
        assert!(err.expect("line").contains("no vault at"));
        let (out, _, code) = call(
            &h,
            "store",
            r#"{"ServerURL":"h","Username":"u","Secret":"s"}"#,
        );
        assert_eq!(code, 1);
        assert!(out.contains("no vault at"), "{out}");
    }
}
