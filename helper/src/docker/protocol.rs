//! The wire format of Docker credential helpers (docker/docker-credential-helpers
//! `credentials` package): verbs, stdin forms, the exact reply texts, and a JSON
//! encoding byte-identical to Go's `encoding/json` encoder.
//!
//! Secrets are only ever held in [`Secret`] or in zeroizing buffers.

use std::collections::BTreeMap;
use std::fmt;

use devc_vault::Secret;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use zeroize::Zeroizing;

/// The helper's name as `credsStore` / `credHelpers` spell it.
pub const HELPER_NAME: &str = "devc-encrypted";
/// The executable's name (`docker-credential-` + [`HELPER_NAME`]).
pub const BIN_NAME: &str = "docker-credential-devc-encrypted";
/// Not found: the docker CLI matches this text exactly and treats the registry as anonymous.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// A request without a server URL.
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
/// A `store` request without a user name.
pub const MISSING_USERNAME: &str = "no credentials username";
/// The user name that marks `Secret` as an identity token.
pub const TOKEN_USERNAME: &str = "<token>";

/// One of the helper's verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Stdin: one JSON object; saves it.
    Store,
    /// Stdin: a server URL; prints its credentials.
    Get,
    /// Stdin: a server URL; removes its credentials.
    Erase,
    /// No stdin; prints `{"<server URL>": "<user name>", ...}`.
    List,
    /// Prints the helper's version.
    Version,
    /// Prints what the helper is and how to use it (`--help`, `-h`).
    Help,
}

impl Verb {
    /// Parses a verb exactly as the reference helpers spell it (case-sensitive).
    pub fn parse(s: &str) -> Option<Verb> {
        match s {
            "store" => Some(Verb::Store),
            "get" => Some(Verb::Get),
            "erase" => Some(Verb::Erase),
            "list" => Some(Verb::List),
            // The flag spellings are for people; clients only use the verbs.
            "version" | "--version" | "-v" => Some(Verb::Version),
            "--help" | "-h" => Some(Verb::Help),
            _ => None,
        }
    }
}

/// The usage line printed (on stdout, exit 1) unless exactly one argument is given.
pub fn usage() -> String {
    format!("Usage: {BIN_NAME} <store|get|erase|list|version>")
}

/// The `--help` text (stdout, exit 0).
pub fn help() -> String {
    format!(
        "{}\n\nA Docker credential helper backed by an encrypted devc-vault vault.\n\
         Clients call it with one verb and the request on stdin:\n\
         \x20 get      server URL in, {{\"ServerURL\",\"Username\",\"Secret\"}} out\n\
         \x20 store    {{\"ServerURL\",\"Username\",\"Secret\"}} in\n\
         \x20 erase    server URL in\n\
         \x20 list     {{server URL: username}} out\n\
         \x20 version  the helper's version\n\n\
         Configure it with `devc-vault install` (credsStore \"devc-encrypted\" and credHelpers).\n\
         Vault: $DEVC_VAULT, else $DOCKER_CONFIG/.credentials.enc. Key: $DEVC_VAULT_KEY_FILE\n\
         (default /run/secrets/devc-vault-key), the agent, or a passphrase; see DEVC_VAULT_KEY_ORDER.\n",
        usage()
    )
}

/// The reply to an unknown verb (on stdout, exit 1).
pub fn unknown_verb(verb: &str) -> String {
    // Printed verbatim by the reference helpers; strip control characters so
    // a hostile argument cannot forge extra output lines.
    let clean: String = verb.chars().filter(|c| !c.is_control()).collect();
    format!("Unknown credential action `{clean}`")
}

/// The `version` reply, in the reference helpers' `NAME (PACKAGE) VERSION`
/// form, followed by the formats it reads and writes.
pub fn version_line() -> String {
    format!(
        "{BIN_NAME} (devc-vault) {}\n",
        devc_keydelivery::version::describe(env!("CARGO_PKG_VERSION"))
    )
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum InputError {
    /// The input is not UTF-8.
    NotUtf8,
    /// The `store` input is not a JSON credentials object (why, never the value).
    Json(String),
    /// The request has no server URL.
    MissingServerUrl,
    /// The `store` request has no user name.
    MissingUsername,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::NotUtf8 => f.write_str("input is not valid UTF-8"),
            InputError::Json(why) => write!(f, "invalid credentials JSON: {why}"),
            InputError::MissingServerUrl => f.write_str(MISSING_SERVER_URL),
            InputError::MissingUsername => f.write_str(MISSING_USERNAME),
        }
    }
}

impl std::error::Error for InputError {}

/// Parses a `get` / `erase` request: lines joined without their line breaks
/// (as Go's `bufio.Scanner` does), then surrounding whitespace trimmed.
pub fn parse_server_url(input: &[u8]) -> Result<String, InputError> {
    let text = std::str::from_utf8(input).map_err(|_| InputError::NotUtf8)?;
    let joined: String = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let url = joined.trim();
    if url.is_empty() {
        return Err(InputError::MissingServerUrl);
    }
    Ok(url.to_owned())
}

/// A credential as the protocol carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    /// `ServerURL`.
    pub server_url: String,
    /// `Username` (`<token>` for an identity token).
    pub username: String,
    /// `Secret`.
    pub secret: Secret,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            server_url: String::new(),
            username: String::new(),
            secret: Secret::new(String::new()),
        }
    }
}

/// Parses a `store` request: one JSON object (nothing but whitespace may
/// follow it), keys matched case-insensitively as Go's `encoding/json`
/// does; `null` fields count as empty. Then checks that the server URL and
/// user name are present.
pub fn parse_store(input: &[u8]) -> Result<Credentials, InputError> {
    let creds = parse_credentials(input)?;
    // What a client stores is one JSON value; anything after it is not
    // ignored (unlike an answer from another helper, read as Go reads it).
    let mut stream = serde_json::Deserializer::from_slice(input).into_iter::<IgnoredAny>();
    let _ = stream.next();
    if input[stream.byte_offset()..]
        .iter()
        .any(|b| !b.is_ascii_whitespace())
    {
        return Err(InputError::Json(
            "unexpected bytes after the JSON object".into(),
        ));
    }
    if creds.server_url.is_empty() {
        return Err(InputError::MissingServerUrl);
    }
    if creds.username.is_empty() {
        return Err(InputError::MissingUsername);
    }
    Ok(creds)
}

/// Parses the first JSON value of `input` as credentials, without checking
/// which fields are empty (a `get` answer may omit `ServerURL`).
pub fn parse_credentials(input: &[u8]) -> Result<Credentials, InputError> {
    let mut stream = serde_json::Deserializer::from_slice(input).into_iter::<CredentialsDe>();
    match stream.next() {
        Some(Ok(c)) => Ok(c.0),
        Some(Err(e)) => Err(InputError::Json(describe_json_error(&e))),
        None => Err(InputError::Json("no JSON object on stdin".into())),
    }
}

/// Describes a JSON error by class and position only: serde's messages can
/// quote the offending value, which may be the secret.
fn describe_json_error(e: &serde_json::Error) -> String {
    let class = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "a field has the wrong type",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!("{class} at line {} column {}", e.line(), e.column())
}

/// Serde adapter: fills [`Credentials`] straight from the JSON, the secret
/// going directly into a [`Secret`].
struct CredentialsDe(Credentials);

impl<'de> serde::Deserialize<'de> for CredentialsDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CredentialsVisitor)
    }
}

struct CredentialsVisitor;

impl<'de> Visitor<'de> for CredentialsVisitor {
    type Value = CredentialsDe;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with ServerURL, Username and Secret")
    }

    // Go decodes `null` into a struct as "leave everything empty".
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CredentialsDe(Credentials::default()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut c = Credentials::default();
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("ServerURL") {
                c.server_url = map.next_value::<Option<String>>()?.unwrap_or_default();
            } else if key.eq_ignore_ascii_case("Username") {
                c.username = map.next_value::<Option<String>>()?.unwrap_or_default();
            } else if key.eq_ignore_ascii_case("Secret") {
                c.secret = map
                    .next_value::<Option<Secret>>()?
                    .unwrap_or_else(|| Secret::new(String::new()));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(CredentialsDe(c))
    }
}

/// The `get` reply: `{"ServerURL":…,"Username":…,"Secret":…}` and a newline,
/// in a buffer that is wiped on drop.
pub fn encode_credentials(c: &Credentials) -> Zeroizing<Vec<u8>> {
    // Sized exactly, so the buffer never reallocates and leaves a copy behind.
    let len = r#"{"ServerURL":,"Username":,"Secret":}"#.len()
        + 1
        + json_string_len(&c.server_url)
        + json_string_len(&c.username)
        + json_string_len(c.secret.expose());
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(b"{\"ServerURL\":");
    push_json_string(&mut out, &c.server_url);
    out.extend_from_slice(b",\"Username\":");
    push_json_string(&mut out, &c.username);
    out.extend_from_slice(b",\"Secret\":");
    push_json_string(&mut out, c.secret.expose());
    out.extend_from_slice(b"}\n");
    out
}

/// The `list` reply: a JSON object of server URL → user name, keys sorted (as
/// Go encodes a map), and a newline; `{}` when empty.
pub fn encode_list(entries: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::from(&b"{"[..]);
    for (i, (url, user)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(&mut out, url);
        out.push(b':');
        push_json_string(&mut out, user);
    }
    out.extend_from_slice(b"}\n");
    out
}

/// The length of `s` as [`push_json_string`] writes it, quotes included.
pub fn json_string_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// Appends `s` as a JSON string escaped exactly as Go's `json.Encoder` does by
/// default (HTML-safe: `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`), so our
/// bytes match the reference helpers' (`<token>` is `\u003ctoken\u003e`).
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let b = c as u32 as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(url: &str, user: &str, secret: &str) -> Credentials {
        Credentials {
            server_url: url.into(),
            username: user.into(),
            secret: Secret::from(secret),
        }
    }

    #[test]
    fn verbs_are_case_sensitive() {
        assert_eq!(Verb::parse("get"), Some(Verb::Get));
        assert_eq!(Verb::parse("version"), Some(Verb::Version));
        assert_eq!(Verb::parse("GET"), None);
        assert_eq!(Verb::parse(""), None);
        assert_eq!(unknown_verb("foo"), "Unknown credential action `foo`");
        assert_eq!(unknown_verb("a\nb"), "Unknown credential action `ab`");
        assert_eq!(
            usage(),
            "Usage: docker-credential-devc-encrypted <store|get|erase|list|version>"
        );
    }

    #[test]
    fn server_url_is_joined_and_trimmed() {
        assert_eq!(parse_server_url(b"host:5000").as_deref(), Ok("host:5000"));
        assert_eq!(
            parse_server_url(b"  host:5000\r\n").as_deref(),
            Ok("host:5000")
        );
        assert_eq!(parse_server_url(b"ho\nst").as_deref(), Ok("host"));
        assert_eq!(parse_server_url(b""), Err(InputError::MissingServerUrl));
        assert_eq!(
            parse_server_url(b" \n\t\n"),
            Err(InputError::MissingServerUrl)
        );
        assert_eq!(parse_server_url(&[0xff, 0xfe]), Err(InputError::NotUtf8));
    }

    #[test]
    fn store_input_like_go() {
        let c = parse_store(br#"{"ServerURL":"https://h/v1/","Username":"u","Secret":"p"}"#)
            .expect("ok");
        assert_eq!(c, creds("https://h/v1/", "u", "p"));
        // Case-insensitive keys, unknown keys ignored, newline-split input,
        // trailing whitespace allowed but nothing else.
        let c = parse_store(
            b"{\"serverurl\":\"h\",\n\"USERNAME\":\"u\",\"x\":[1,{}],\"secret\":null}\n \t",
        )
        .expect("ok");
        assert_eq!(c, creds("h", "u", ""));
        for trailing in [
            &b"{\"ServerURL\":\"h\",\"Username\":\"u\"} garbage"[..],
            b"{\"ServerURL\":\"h\",\"Username\":\"u\"}{}",
        ] {
            assert!(matches!(parse_store(trailing), Err(InputError::Json(_))));
        }
        // Escapes decode into the secret.
        let c =
            parse_store(br#"{"ServerURL":"h","Username":"u","Secret":"a\"b\u00e9"}"#).expect("ok");
        assert_eq!(c.secret.expose(), "a\"b\u{e9}");
    }

    #[test]
    fn store_input_errors() {
        assert_eq!(
            parse_store(br#"{"Username":"u","Secret":"p"}"#),
            Err(InputError::MissingServerUrl)
        );
        assert_eq!(
            parse_store(br#"{"ServerURL":"","Username":"u"}"#),
            Err(InputError::MissingServerUrl)
        );
        assert_eq!(
            parse_store(br#"{"ServerURL":"h","Secret":"p"}"#),
            Err(InputError::MissingUsername)
        );
        assert_eq!(parse_store(b"null"), Err(InputError::MissingServerUrl));
        for bad in [
            &b""[..],
            b"{",
            b"[1]",
            b"\"x\"",
            b"{\"ServerURL\":1}",
            b"\xff",
        ] {
            assert!(
                matches!(parse_store(bad), Err(InputError::Json(_))),
                "{bad:?}"
            );
        }
        // A wrongly typed secret is not quoted back.
        let e = parse_store(br#"{"ServerURL":"h","Username":"u","Secret":123456789}"#)
            .expect_err("type");
        assert!(!e.to_string().contains("123456789"), "{e}");
        assert!(e.to_string().contains("wrong type"), "{e}");
    }

    /// Arbitrary bytes never panic either parser, and whatever parses
    /// re-encodes to JSON that decodes to the same values.
    #[test]
    fn arbitrary_input_never_panics() {
        const PIECES: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b"null",
            b"1",
            b"ServerURL",
            b"Username",
            b"Secret",
            b"\\",
            b"\\u00",
            b"\\ud800",
            b"\n",
            b"\r",
            b" ",
            b"\xff",
            b"\xc3\xa9",
            b"<token>",
        ];
        for pieces in
            devc_vault_tests::random_input::inputs(0x9e37_79b9_7f4a_7c15, 20_000, 12, PIECES)
        {
            let input = pieces.concat();
            let _ = parse_server_url(&input);
            if let Ok(c) = parse_credentials(&input) {
                let out = encode_credentials(&c);
                let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
                assert_eq!(v["Secret"].as_str(), Some(c.secret.expose()));
            }
        }
    }

    #[test]
    fn get_reply_matches_go_bytes() {
        let out = encode_credentials(&creds("h:1", "<token>", "a&b\"c\\d\u{1}\u{2028}é"));
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            "{\"ServerURL\":\"h:1\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"a\\u0026b\\\"c\\\\d\\u0001\\u2028é\"}\n"
        );
        // And it is JSON that decodes back to the same values.
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["Username"], "<token>");
        assert_eq!(v["Secret"], "a&b\"c\\d\u{1}\u{2028}é");
    }

    #[test]
    fn get_reply_is_sized_exactly() {
        for secret in ["", "plain", "<&>\u{2028}\u{1}\"\\é😀", &"x".repeat(70_000)] {
            let c = creds("https://h:1/v1/", "<token>", secret);
            let out = encode_credentials(&c);
            assert_eq!(out.len(), out.capacity(), "{secret:?}");
        }
    }

    #[test]
    fn list_reply() {
        assert_eq!(encode_list(&BTreeMap::new()), b"{}\n");
        let mut m = BTreeMap::new();
        m.insert("b:2".to_owned(), "u2".to_owned());
        m.insert("a:1".to_owned(), "<token>".to_owned());
        assert_eq!(
            String::from_utf8(encode_list(&m)).expect("utf8"),
            "{\"a:1\":\"\\u003ctoken\\u003e\",\"b:2\":\"u2\"}\n"
        );
    }

    #[test]
    fn version_names_the_helper() {
        assert!(version_line().starts_with("docker-credential-devc-encrypted (devc-vault) "));
        assert!(version_line().ends_with('\n'));
    }
}
