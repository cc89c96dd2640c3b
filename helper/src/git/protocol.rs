//! git's credential-helper wire format (`git help credential`, "INPUT/OUTPUT
//! FORMAT"): `key=value` lines, split at the first `=`, ending at a blank
//! line or end of input.
//!
//! Only the attributes a storing helper needs are kept; everything else
//! (`wwwauth[]`, `capability[]`, `state[]`, `url`, ...) is skipped, as git
//! itself skips keys it does not know. The raw input lives in a buffer that
//! is wiped on drop, and secrets move straight into [`Secret`]s.

use std::fmt;
use std::io::{self, Read, Write};

use devc_vault::Secret;
use zeroize::Zeroizing;

use crate::io::MAX_INPUT;
use devc_vault::{ReadCappedError, read_capped};

/// The operation git asked for (the helper's last argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Look a credential up and print it.
    Get,
    /// Remember the credential described on stdin.
    Store,
    /// Forget the credentials matching stdin.
    Erase,
    /// Anything else: git says helpers must ignore unknown operations.
    Unknown,
}

impl Operation {
    /// Maps an argument to an operation; unknown names give [`Operation::Unknown`].
    pub fn parse(arg: &str) -> Operation {
        match arg {
            "get" => Operation::Get,
            "store" => Operation::Store,
            "erase" => Operation::Erase,
            _ => Operation::Unknown,
        }
    }

    /// The operation's name as git spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Store => "store",
            Operation::Erase => "erase",
            Operation::Unknown => "unknown",
        }
    }
}

/// The attributes of one request, each `None` when git did not send it.
///
/// An empty value is kept as `Some("")`: git distinguishes "username is
/// empty" from "no username" (t0303, "can store empty username").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// `protocol=` (e.g. `https`).
    pub protocol: Option<String>,
    /// `host=`, with `:port` when the URL had one.
    pub host: Option<String>,
    /// `path=`, sent only with `credential.useHttpPath`.
    pub path: Option<String>,
    /// `username=`.
    pub username: Option<String>,
    /// `password=`.
    pub password: Option<Secret>,
    /// `password_expiry_utc=`, unix seconds; `0` or an unparsable value
    /// means "no expiry", as in git's own reader.
    pub password_expiry_utc: Option<u64>,
    /// `oauth_refresh_token=`.
    pub oauth_refresh_token: Option<Secret>,
}

impl Request {
    /// The request as a vault query: the attributes git gave, compared by
    /// the vault's (that is, git's) matching rules.
    pub fn query(&self) -> devc_vault::GitQuery<'_> {
        devc_vault::GitQuery {
            protocol: self.protocol.as_deref(),
            host: self.host.as_deref(),
            path: self.path.as_deref(),
            username: self.username.as_deref(),
            password: self.password.as_ref().map(Secret::expose),
        }
    }
}

/// Why a request could not be read. Messages name keys, never values.
#[derive(Debug)]
#[non_exhaustive]
pub enum ParseError {
    /// More than [`MAX_INPUT`] bytes before the terminating blank line.
    TooLarge,
    /// A line has no `=` (git's own reader rejects such input too).
    MissingEquals {
        /// 1-based line number.
        line: usize,
    },
    /// The value of an attribute we use is not UTF-8.
    NotUtf8 {
        /// The attribute.
        key: &'static str,
    },
    /// The value of an attribute we use contains a NUL character.
    ContainsNul {
        /// The attribute.
        key: &'static str,
    },
    /// Reading stdin failed.
    Io(io::Error),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge => write!(f, "input is larger than {MAX_INPUT} bytes"),
            ParseError::MissingEquals { line } => write!(f, "input line {line} has no '='"),
            ParseError::NotUtf8 { key } => write!(f, "the value of {key} is not UTF-8"),
            ParseError::ContainsNul { key } => {
                write!(f, "the value of {key} contains a NUL character")
            }
            ParseError::Io(e) => write!(f, "reading input: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads at most [`MAX_INPUT`] bytes (and one more, to tell a request that
/// reaches the cap from one cut short by it) from `input` and parses them.
pub fn read_request(input: impl Read) -> Result<Request, ParseError> {
    match read_capped(&mut input.take(MAX_INPUT as u64 + 1), MAX_INPUT + 1) {
        Ok(buf) => parse_request(&buf),
        Err(ReadCappedError::TooLarge) => Err(ParseError::TooLarge),
        Err(ReadCappedError::Io(e)) => Err(ParseError::Io(e)),
    }
}

/// Parses a request from bytes; input after the first blank line is ignored.
pub fn parse_request(bytes: &[u8]) -> Result<Request, ParseError> {
    let mut req = Request::default();
    let mut rest = bytes;
    let mut line_no = 0;
    loop {
        let (line, next, terminated) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        // Without its newline, a line that reaches the cap may have been cut
        // short by the bounded read; refuse rather than act on half a value.
        if !terminated && bytes.len() > MAX_INPUT {
            return Err(ParseError::TooLarge);
        }
        if !terminated && line.is_empty() {
            break;
        }
        line_no += 1;
        // git reads with strbuf_getline, which drops one trailing CR.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let eq = line
            .iter()
            .position(|&b| b == b'=')
            .ok_or(ParseError::MissingEquals { line: line_no })?;
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        match key {
            b"protocol" => req.protocol = Some(text("protocol", value)?),
            b"host" => req.host = Some(text("host", value)?),
            b"path" => req.path = Some(text("path", value)?),
            b"username" => req.username = Some(text("username", value)?),
            b"password" => req.password = Some(secret("password", value)?),
            b"oauth_refresh_token" => {
                req.oauth_refresh_token = Some(secret("oauth_refresh_token", value)?)
            }
            b"password_expiry_utc" => req.password_expiry_utc = parse_expiry(value),
            _ => {}
        }
        if !terminated {
            break;
        }
        rest = next;
    }
    Ok(req)
}

fn checked<'a>(key: &'static str, value: &'a [u8]) -> Result<&'a str, ParseError> {
    let s = std::str::from_utf8(value).map_err(|_| ParseError::NotUtf8 { key })?;
    if s.contains('\0') {
        return Err(ParseError::ContainsNul { key });
    }
    Ok(s)
}

fn text(key: &'static str, value: &[u8]) -> Result<String, ParseError> {
    checked(key, value).map(str::to_owned)
}

fn secret(key: &'static str, value: &[u8]) -> Result<Secret, ParseError> {
    checked(key, value).map(Secret::from)
}

/// git's rule: digits giving a non-zero timestamp; anything else is "never expires".
fn parse_expiry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value)
        .ok()?
        .parse()
        .ok()
        .filter(|&t| t != 0)
}

/// The attributes a `get` answers with. git already knows protocol, host
/// and path, so only what it lacks is sent back.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The stored user name (possibly empty).
    pub username: String,
    /// The stored password (possibly empty).
    pub password: Secret,
    /// When the password expires, unix seconds.
    pub password_expiry_utc: Option<u64>,
    /// The stored OAuth refresh token.
    pub oauth_refresh_token: Option<Secret>,
}

/// Why a response was not written.
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteError {
    /// A value contains NUL, CR or LF, which would let it inject attributes.
    Unrepresentable {
        /// The attribute.
        key: &'static str,
    },
    /// Writing stdout failed.
    Io(io::Error),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Unrepresentable { key } => {
                write!(f, "the stored {key} contains a NUL, CR or LF character")
            }
            WriteError::Io(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Writes `resp` to `out`, all or nothing: every value is checked before
/// the first byte is written, so a bad value never yields a partial answer.
pub fn write_response(out: &mut impl Write, resp: &Response) -> Result<(), WriteError> {
    let expiry = resp.password_expiry_utc.map(|t| t.to_string());
    let mut items: Vec<(&'static str, &str)> = vec![
        ("username", &resp.username),
        ("password", resp.password.expose()),
    ];
    if let Some(t) = &expiry {
        items.push(("password_expiry_utc", t));
    }
    if let Some(t) = &resp.oauth_refresh_token {
        items.push(("oauth_refresh_token", t.expose()));
    }
    // Sized up front so the buffer never reallocates (see `read_request`).
    let len = items.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut buf = Zeroizing::new(Vec::with_capacity(len));
    for (key, value) in items {
        if value.contains(['\0', '\r', '\n']) {
            return Err(WriteError::Unrepresentable { key });
        }
        buf.extend_from_slice(key.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
    }
    out.write_all(&buf).map_err(WriteError::Io)?;
    out.flush().map_err(WriteError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Request {
        parse_request(s.as_bytes()).expect("parses")
    }

    #[test]
    fn parses_known_attributes_and_splits_at_first_equals() {
        let r = parse(
            "protocol=https\nhost=example.com:8443\npath=a/b.git\nusername=u\npassword=p=q\n\
             password_expiry_utc=9999999999\noauth_refresh_token=tok\n\n",
        );
        assert_eq!(r.protocol.as_deref(), Some("https"));
        assert_eq!(r.host.as_deref(), Some("example.com:8443"));
        assert_eq!(r.path.as_deref(), Some("a/b.git"));
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("p=q"));
        assert_eq!(r.password_expiry_utc, Some(9_999_999_999));
        assert_eq!(
            r.oauth_refresh_token.as_ref().map(Secret::expose),
            Some("tok")
        );
    }

    #[test]
    fn empty_values_are_distinct_from_absent() {
        let r = parse("protocol=https\nhost=sso.tld\nusername=\npassword=\n");
        assert_eq!(r.username.as_deref(), Some(""));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some(""));
        assert_eq!(r.path, None);
        let r = parse("protocol=https\nhost=sso.tld\n");
        assert_eq!(r.username, None);
        assert_eq!(r.password, None);
    }

    #[test]
    fn stops_at_blank_line_or_eof_and_ignores_unknown_keys() {
        let r =
            parse("host=a\ncapability[]=authtype\nwwwauth[]=basic realm=x host=b\n\nhost=evil\n");
        assert_eq!(r.host.as_deref(), Some("a"));
        let r = parse("host=a\nusername=u");
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(parse(""), Request::default());
        assert_eq!(parse("\n"), Request::default());
    }

    #[test]
    fn later_values_replace_earlier_ones_and_crlf_is_accepted() {
        let r = parse("host=a\r\nhost=b\r\n\r\nhost=c\n");
        assert_eq!(r.host.as_deref(), Some("b"));
    }

    #[test]
    fn expiry_follows_gits_rules() {
        assert_eq!(parse("password_expiry_utc=0\n").password_expiry_utc, None);
        assert_eq!(parse("password_expiry_utc=12x\n").password_expiry_utc, None);
        assert_eq!(parse("password_expiry_utc=\n").password_expiry_utc, None);
        assert_eq!(parse("password_expiry_utc=-5\n").password_expiry_utc, None);
        assert_eq!(
            parse("password_expiry_utc=99999999999999999999999\n").password_expiry_utc,
            None
        );
        assert_eq!(
            parse("password_expiry_utc=17\n").password_expiry_utc,
            Some(17)
        );
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(matches!(
            parse_request(b"host=a\nnonsense\n"),
            Err(ParseError::MissingEquals { line: 2 })
        ));
        assert!(matches!(
            parse_request(b"username=\xff\n"),
            Err(ParseError::NotUtf8 { key: "username" })
        ));
        assert!(matches!(
            parse_request(b"password=a\0b\n"),
            Err(ParseError::ContainsNul { key: "password" })
        ));
        // Non-UTF-8 in an attribute we ignore is harmless.
        assert!(parse_request(b"wwwauth[]=\xff\xfe\nhost=a\n").is_ok());
    }

    #[test]
    fn input_is_capped_before_parsing() {
        let mut big = b"host=a\nwwwauth[]=".to_vec();
        big.resize(MAX_INPUT + 10, b'x');
        assert!(matches!(read_request(&big[..]), Err(ParseError::TooLarge)));
        // A complete request followed by a blank line is read even if junk follows.
        let mut ok = b"host=a\n\n".to_vec();
        ok.resize(MAX_INPUT + 10, b'x');
        assert_eq!(
            read_request(&ok[..]).expect("ok").host.as_deref(),
            Some("a")
        );
        // A long but bounded value is fine.
        let mut long = b"protocol=https\nwwwauth[]=".to_vec();
        long.resize(MAX_INPUT - 1, b'y');
        long.push(b'\n');
        assert!(read_request(&long[..]).is_ok());
    }

    #[test]
    fn writes_only_safe_values() {
        let mut resp = Response {
            username: "u".into(),
            password: Secret::from("p"),
            password_expiry_utc: Some(42),
            oauth_refresh_token: Some(Secret::from("t")),
        };
        let mut out = Vec::new();
        write_response(&mut out, &resp).expect("writes");
        assert_eq!(
            out,
            b"username=u\npassword=p\npassword_expiry_utc=42\noauth_refresh_token=t\n"
        );
        for bad in ["a\nhost=evil", "a\rb", "a\0b"] {
            resp.password = Secret::from(bad);
            let mut out = Vec::new();
            assert!(matches!(
                write_response(&mut out, &resp),
                Err(WriteError::Unrepresentable { key: "password" })
            ));
            assert!(out.is_empty(), "nothing written for {bad:?}");
        }
    }

    /// A cheap stand-in for a fuzz target: pseudo-random inputs built from
    /// the bytes that matter (separators, CR, NUL, invalid UTF-8, known keys)
    /// must parse or fail cleanly, and whatever parses writes back safely.
    #[test]
    fn random_input_never_panics() {
        const PIECES: [&[u8]; 14] = [
            b"=",
            b"\n",
            b"\r",
            b"\0",
            b"\xff",
            b"a",
            b"protocol",
            b"host",
            b"username",
            b"password",
            b"password_expiry_utc",
            b"oauth_refresh_token",
            b"9",
            b"\r\n",
        ];
        for pieces in
            devc_vault_tests::random_input::inputs(0x9e37_79b9_7f4a_7c15, 20_000, 40, &PIECES)
        {
            let input = pieces.concat();
            if let Ok(req) = parse_request(&input) {
                let resp = Response {
                    username: req.username.unwrap_or_default(),
                    password: req.password.unwrap_or_else(|| Secret::from("")),
                    password_expiry_utc: req.password_expiry_utc,
                    oauth_refresh_token: req.oauth_refresh_token,
                };
                let mut out = Vec::new();
                if write_response(&mut out, &resp).is_ok() {
                    // Exactly one line per attribute: nothing was injected.
                    let lines = out.iter().filter(|&&b| b == b'\n').count();
                    let want = 2
                        + usize::from(resp.password_expiry_utc.is_some())
                        + usize::from(resp.oauth_refresh_token.is_some());
                    assert_eq!(lines, want);
                    assert!(!out.contains(&b'\r') && !out.contains(&0));
                }
            }
        }
    }

    #[test]
    fn operations() {
        assert_eq!(Operation::parse("get"), Operation::Get);
        assert_eq!(Operation::parse("store"), Operation::Store);
        assert_eq!(Operation::parse("erase"), Operation::Erase);
        assert_eq!(Operation::parse("list"), Operation::Unknown);
        assert_eq!(Operation::parse("GET"), Operation::Unknown);
    }
}
