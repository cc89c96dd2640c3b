//! The agent's wire protocol, all of it (the rbw model): one request, one
//! response, each a frame of a 4-byte big-endian length and a JSON object
//! `{"v":2,"req":{...}}` / `{"v":2,"resp":{...}}`. docs/AGENT.md describes it
//! for humans.
//!
//! Version 2: no vault master key ever travels from an agent or a cache.
//! They answer [`Request::Open`] with the keys of the one version of the
//! file whose salt the client sends, and [`Request::Seal`] with the keys of
//! a fresh salt they draw (see `devc_vault::AccessKeys`). A master key
//! travels only *to* an agent or cache, over its owner's private endpoint
//! ([`Request::Wrap`], [`Request::AddMaster`]).
//!
//! Key material travels as lowercase hex in [`WireSecret`], which decodes
//! straight into a zeroizing array; frames holding it live in zeroizing
//! buffers.

use std::fmt;
use std::io::{self, Read, Write};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use devc_vault::{ACCESS_KEYS_LEN, AccessKeys, MasterKey, SALT_LEN, Slot, SlotKind, hex};

/// The protocol version this build speaks.
pub const VERSION: u32 = 2;
/// Largest frame body accepted either way. 32 slot lines of ~200 bytes fit
/// many times over; a bigger length prefix is refused before any allocation.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Largest number of slots in one request (the vault's own cap).
pub const MAX_SLOTS: usize = devc_vault::MAX_SLOTS;

/// `N` secret bytes on the wire, as `2N` lowercase hex digits.
#[derive(Clone)]
pub struct WireSecret<const N: usize>(pub Zeroizing<[u8; N]>);

impl<const N: usize> fmt::Debug for WireSecret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<const N: usize> Serialize for WireSecret<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = Zeroizing::new(vec![0u8; 2 * N]);
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        // Hex digits are ASCII, so this cannot fail; an empty string would
        // be refused by the peer rather than panic here.
        s.serialize_str(std::str::from_utf8(&buf[..]).unwrap_or_default())
    }
}

impl<'de, const N: usize> Deserialize<'de> for WireSecret<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = WireSecret<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} lowercase hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WireSecret<N>, E> {
                hex::decode::<N>(v.as_bytes())
                    .map(|k| WireSecret(Zeroizing::new(k)))
                    .ok_or_else(|| E::custom("expected lowercase hex digits of the right length"))
            }
        }
        d.deserialize_str(V::<N>)
    }
}

/// A vault master key on the wire (only ever sent *to* an owner endpoint).
pub type WireMaster = WireSecret<32>;
/// The keys of one version of a vault on the wire.
pub type WireKeys = WireSecret<ACCESS_KEYS_LEN>;

/// A master key for sending.
pub fn wire_master(k: &MasterKey) -> WireMaster {
    WireSecret(Zeroizing::new(*k.expose()))
}

/// Access keys for sending.
pub fn wire_keys(k: &AccessKeys) -> WireKeys {
    WireSecret(Zeroizing::new(*k.to_bytes()))
}

/// The key-file and agent slots of a vault as header lines (the only ones
/// an agent can open); passphrase slots are never sent.
pub fn wire_slots(slots: &[Slot]) -> Vec<String> {
    slots
        .iter()
        .filter(|s| matches!(s.kind, SlotKind::KeyFile | SlotKind::Agent))
        .map(Slot::to_line)
        .collect()
}

/// Parses slot lines strictly; `None` if any is malformed or not a
/// key-file or agent slot.
pub fn parse_slots(lines: &[String]) -> Option<Vec<Slot>> {
    lines
        .iter()
        .map(|l| {
            Slot::parse_line(l)
                .ok()
                .filter(|s| matches!(s.kind, SlotKind::KeyFile | SlotKind::Agent))
        })
        .collect()
}

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Which endpoint is this, and is it locked (never a vault id).
    Ping,
    /// The keys of the version of `vault` written with `salt`.
    Open {
        /// The vault id (32 hex digits); it is the slots' associated data.
        vault: String,
        /// The salt of the file's version (64 hex digits).
        salt: String,
        /// The vault's key-file and agent slots, as header lines.
        slots: Vec<String>,
    },
    /// The keys for a new version of `vault`, under a salt the agent draws.
    Seal {
        /// The vault id.
        vault: String,
        /// The vault's key-file and agent slots, as header lines.
        slots: Vec<String>,
    },
    /// Owner only: make an agent slot for this vault, wrapping `master`
    /// under a held secret.
    Wrap {
        /// The vault id.
        vault: String,
        /// Which held key (its id); optional when the agent holds one.
        key_id: Option<String>,
        /// The master key to wrap.
        master: WireMaster,
    },
    /// Owner only, cache only: hold this vault's master key.
    AddMaster {
        /// The vault id.
        vault: String,
        /// Its master key.
        master: WireMaster,
    },
    /// Owner only: forget every held key until `unlock`.
    Lock,
    /// Owner only: re-read the key files (or key command) the agent holds.
    Unlock,
    /// Owner only: describe what is held (never a secret).
    Status,
}

/// A request with its protocol version.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    /// The protocol version.
    pub v: u32,
    /// The request.
    pub req: Request,
}

/// Why a request failed, as a stable code.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The agent is locked, or its keys expired; `devc-vault unlock`.
    Locked,
    /// No held key opens any of the slots.
    NoKey,
    /// The vault id is not on the agent's `--allow-vault` list.
    VaultNotAllowed,
    /// The request could not be parsed.
    Malformed,
    /// The frame exceeds [`MAX_MESSAGE_LEN`].
    TooLarge,
    /// The client speaks another protocol version.
    Version,
    /// The request is understood but not served here (e.g. `lock` on the
    /// container-facing socket), or the peer is not allowed.
    Refused,
    /// Too many connections at once.
    Busy,
}

/// Which endpoint answered a [`Request::Ping`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An agent's container-facing socket: key requests only.
    Agent,
    /// An agent's owner endpoint, in its owner's private runtime directory.
    Owner,
    /// A passphrase cache (its one socket is private to its owner).
    Cache,
}

/// One held key, described (never the key itself).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// `keyfile` (a key file's secret), `command` (a key command's) or
    /// `master` (a vault's master key).
    pub kind: String,
    /// The key id (key secrets) or the vault id (master keys).
    pub id: String,
    /// The key file it was read from, or the command, if any.
    pub path: Option<String>,
    /// Seconds until the idle TTL expires it, if there is one.
    pub idle_left_secs: Option<u64>,
    /// Seconds until the max lifetime expires it, if there is one.
    pub max_left_secs: Option<u64>,
}

/// The agent's state, for `devc-vault status` (owner endpoint only).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusInfo {
    /// Protocol version.
    pub version: u32,
    /// The agent's process id.
    pub pid: u32,
    /// Whether it is a passphrase cache agent.
    pub cache: bool,
    /// Locked (or expired) and holding nothing.
    pub locked: bool,
    /// Why it is locked: `lock`, `idle`, `max`, or empty.
    pub locked_reason: String,
    /// What it holds.
    pub keys: Vec<KeyInfo>,
    /// The `--allow-vault` list (empty: any vault).
    pub allowed_vaults: Vec<String>,
    /// The `--allow-uid` list (besides its own uid).
    pub allowed_uids: Vec<u32>,
    /// The container-facing socket (agents only).
    pub socket: Option<String>,
}

/// What the agent answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The answer to a ping.
    Pong {
        /// Which endpoint this is.
        role: Role,
        /// Whether it holds nothing (locked or expired).
        locked: bool,
    },
    /// The keys of one version of a vault.
    Keys {
        /// Salt, payload key, header MAC key, commitment.
        keys: Box<WireKeys>,
        /// Which slot (or held vault key) gave them.
        via: String,
    },
    /// A new agent slot, as a header line.
    Slot {
        /// The slot.
        slot: String,
    },
    /// Done.
    Ok,
    /// The state.
    Status(Box<StatusInfo>),
    /// A failure.
    Error {
        /// The class.
        code: ErrorCode,
        /// A one-line explanation (never a secret).
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
        }
    }

    /// The keys of one version.
    pub fn keys(keys: &AccessKeys, via: String) -> Response {
        Response::Keys {
            keys: Box::new(wire_keys(keys)),
            via,
        }
    }
}

/// A response with its protocol version.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFrame {
    /// The protocol version.
    pub v: u32,
    /// The response.
    pub resp: Response,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_MESSAGE_LEN`].
    TooLarge(usize),
    /// The connection failed or closed mid-frame.
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(
                f,
                "message of {n} bytes exceeds the {MAX_MESSAGE_LEN}-byte cap"
            ),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The body length announced by a frame's 4-byte prefix, checked against
/// the cap before anything is allocated.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLarge(n));
    }
    Ok(n)
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Zeroizing<Vec<u8>>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let n = frame_len(len)?;
    let mut buf = Zeroizing::new(vec![0u8; n]);
    r.read_exact(&mut buf).map_err(FrameError::Io)?;
    Ok(Some(buf))
}

/// Serializes `msg` as one frame (length prefix included), in a buffer
/// sized for the largest message up front, so serializing a secret leaves
/// no copies behind in reallocated (unzeroized) buffers.
pub fn encode_frame(msg: &impl Serialize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(4 + MAX_MESSAGE_LEN));
    buf.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *buf, msg).map_err(io::Error::other)?;
    let n = buf.len() - 4;
    if n > MAX_MESSAGE_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message exceeds the size cap",
        ));
    }
    buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
    Ok(buf)
}

/// Serializes `msg` and writes it as one frame.
pub fn write_frame(w: &mut impl Write, msg: &impl Serialize) -> io::Result<()> {
    w.write_all(&encode_frame(msg)?)?;
    w.flush()
}

/// Parses a request frame. On failure, the error response to send: a
/// version mismatch is told apart from a malformed request.
pub fn parse_request(body: &[u8]) -> Result<Request, Response> {
    #[derive(Deserialize)]
    struct Probe {
        v: Option<u32>,
    }
    match serde_json::from_slice::<RequestFrame>(body) {
        Ok(f) if f.v == VERSION => Ok(f.req),
        Ok(f) => Err(version_error(f.v)),
        Err(e) => match serde_json::from_slice::<Probe>(body) {
            Ok(Probe { v: Some(v) }) if v != VERSION => Err(version_error(v)),
            // serde's message names fields and types, never values.
            _ => Err(Response::error(
                ErrorCode::Malformed,
                format!("malformed request: {e}"),
            )),
        },
    }
}

fn version_error(v: u32) -> Response {
    Response::error(
        ErrorCode::Version,
        format!(
            "protocol version {v} is not supported; this agent speaks version {VERSION}: use devc-vault binaries of the same release on the host and in the container"
        ),
    )
}

/// Parses a response frame.
pub fn parse_response(body: &[u8]) -> Result<Response, String> {
    #[derive(Deserialize)]
    struct Probe {
        v: Option<u32>,
    }
    match serde_json::from_slice::<ResponseFrame>(body) {
        Ok(f) if f.v == VERSION => Ok(f.resp),
        Ok(ResponseFrame { v, .. }) => Err(version_mismatch(v)),
        Err(e) => match serde_json::from_slice::<Probe>(body) {
            Ok(Probe { v: Some(v) }) if v != VERSION => Err(version_mismatch(v)),
            _ => Err(format!("malformed agent response: {e}")),
        },
    }
}

fn version_mismatch(v: u32) -> String {
    format!(
        "the agent speaks protocol version {v}, this client {VERSION}: use devc-vault binaries of the same release on the host and in the container"
    )
}

/// Parses a 64-hex-digit salt.
pub fn parse_salt(s: &str) -> Option<[u8; SALT_LEN]> {
    hex::decode::<SALT_LEN>(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let k = MasterKey::from_bytes([7; 32]);
        let frame = RequestFrame {
            v: VERSION,
            req: Request::AddMaster {
                vault: "00".repeat(16),
                master: wire_master(&k),
            },
        };
        let mut out = Vec::new();
        write_frame(&mut out, &frame).expect("write");
        let body = read_frame(&mut out.as_slice())
            .expect("read")
            .expect("frame");
        match parse_request(&body) {
            Ok(Request::AddMaster { master, .. }) => assert_eq!(*master.0, [7; 32]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn keys_round_trip() {
        let keys = AccessKeys::fresh(&MasterKey::generate());
        let frame = ResponseFrame {
            v: VERSION,
            resp: Response::keys(&keys, "x".into()),
        };
        let body = encode_frame(&frame).expect("encode");
        match parse_response(&body[4..]) {
            Ok(Response::Keys { keys: back, .. }) => {
                assert_eq!(AccessKeys::from_bytes(&back.0).salt(), keys.salt())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn debug_redacts_keys() {
        let k = WireSecret(Zeroizing::new([0xab; 32]));
        assert_eq!(format!("{k:?}"), "[redacted]");
    }

    #[test]
    fn bad_requests_get_classified_errors() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"", ErrorCode::Malformed),
            (b"{", ErrorCode::Malformed),
            (b"[]", ErrorCode::Malformed),
            (br#"{"v":2,"req":"nope"}"#, ErrorCode::Malformed),
            (
                br#"{"v":2,"req":{"open":{"vault":"x"}}}"#,
                ErrorCode::Malformed,
            ),
            (br#"{"v":1,"req":"lock"}"#, ErrorCode::Version),
            (
                br#"{"v":1,"req":{"unwrap":{"vault":"x","slots":[]}}}"#,
                ErrorCode::Version,
            ),
            (br#"{"v":9,"req":{"future":{}}}"#, ErrorCode::Version),
            (
                br#"{"v":2,"req":{"add_master":{"vault":"00","master":"zz"}}}"#,
                ErrorCode::Malformed,
            ),
            (&[0xff, 0xfe, 0x00], ErrorCode::Malformed),
        ];
        for (body, want) in cases {
            match parse_request(body) {
                Err(Response::Error { code, .. }) => {
                    assert_eq!(code, *want, "{:?}", String::from_utf8_lossy(body))
                }
                other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(body)),
            }
        }
        let old = br#"{"v":1,"resp":{"master":{"key":"00","via":"x"}}}"#;
        let e = parse_response(old).expect_err("old agent");
        assert!(e.contains("protocol version 1"), "{e}");
    }

    #[test]
    fn oversized_and_truncated_frames() {
        let mut big = ((MAX_MESSAGE_LEN + 1) as u32).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        assert!(matches!(
            read_frame(&mut big.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        let short = [0u8, 0, 0, 10, b'{'];
        assert!(matches!(
            read_frame(&mut short.as_slice()),
            Err(FrameError::Io(_))
        ));
        let half = [0u8, 0];
        assert!(matches!(
            read_frame(&mut half.as_slice()),
            Err(FrameError::Io(_))
        ));
        assert!(matches!(read_frame(&mut [].as_slice()), Ok(None)));
    }

    #[test]
    fn slots_travel_as_header_lines_and_passphrase_slots_never() {
        let vault = devc_vault::VaultId([1; 16]);
        let vmk = MasterKey::generate();
        let slot = Slot::for_secret(
            SlotKind::KeyFile,
            &vault,
            &vmk,
            &devc_vault::KeySecret::generate(),
        );
        let pass = Slot::for_passphrase(
            &vault,
            &vmk,
            &devc_vault::Passphrase::new("p".into()),
            devc_vault::Argon2Cost {
                m_kib: 8,
                t: 1,
                p: 1,
            },
        )
        .expect("slot");
        let lines = wire_slots(&[slot.clone(), pass.clone()]);
        assert_eq!(lines.len(), 1);
        assert_eq!(parse_slots(&lines), Some(vec![slot]));
        assert_eq!(parse_slots(&[pass.to_line()]), None);
        assert_eq!(parse_slots(&["slot keyfile zz".into()]), None);
    }
}
