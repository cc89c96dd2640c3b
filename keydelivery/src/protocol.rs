//! The agent's wire protocol, all of it (the rbw model): one request, one
//! response, each a frame of a 4-byte big-endian length and a JSON object
//! `{"v":1,"req":{...}}` / `{"v":1,"resp":{...}}`. docs/AGENT.md describes it
//! for humans.
//!
//! Secrets (master keys) travel as hex in [`WireKey`], which decodes straight
//! into a zeroizing array; frames holding them live in zeroizing buffers.

use std::fmt;
use std::io::{self, Read, Write};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use devc_vault::{MasterKey, Slot, SlotKind, hex};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Largest frame body accepted either way. 32 slots of ~200 bytes fit many
/// times over; a bigger length prefix is refused before any allocation.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Largest number of slots in one unwrap request (the vault's own cap).
pub const MAX_SLOTS: usize = devc_vault::MAX_SLOTS;

/// A 32-byte secret on the wire, as 64 lowercase hex digits.
#[derive(Clone)]
pub struct WireKey(pub Zeroizing<[u8; 32]>);

impl fmt::Debug for WireKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl WireKey {
    /// Copies a master key for sending.
    pub fn from_master(k: &MasterKey) -> WireKey {
        WireKey(Zeroizing::new(*k.expose()))
    }
    /// The master key it carries.
    pub fn to_master(&self) -> MasterKey {
        MasterKey::from_bytes(*self.0)
    }
}

impl Serialize for WireKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = Zeroizing::new([0u8; 64]);
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        // Hex digits are ASCII, so this cannot fail; an empty string would
        // be refused by the peer rather than panic here.
        s.serialize_str(std::str::from_utf8(&buf[..]).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for WireKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 lowercase hex digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WireKey, E> {
                hex::decode::<32>(v.as_bytes())
                    .map(|k| WireKey(Zeroizing::new(k)))
                    .ok_or_else(|| E::custom("expected 64 lowercase hex digits"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A keyslot on the wire: only key-file and agent slots go to an agent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireSlot {
    /// `keyfile` or `agent`.
    pub kind: String,
    /// The slot id (16 hex digits).
    pub id: String,
    /// The slot salt (64 hex digits).
    pub salt: String,
    /// The wrap nonce (24 hex digits).
    pub nonce: String,
    /// The wrapped master key (96 hex digits).
    pub wrapped: String,
}

impl WireSlot {
    /// The wire form of a key-file or agent slot; `None` for passphrase slots.
    pub fn from_slot(s: &Slot) -> Option<WireSlot> {
        matches!(s.kind, SlotKind::KeyFile | SlotKind::Agent).then(|| WireSlot {
            kind: s.kind.name().to_owned(),
            id: s.id.to_string(),
            salt: hex::encode(&s.salt),
            nonce: hex::encode(&s.nonce),
            wrapped: hex::encode(&s.wrapped),
        })
    }

    /// Parses it back strictly; `None` if any field is malformed.
    pub fn to_slot(&self) -> Option<Slot> {
        if !matches!(self.kind.as_str(), "keyfile" | "agent") {
            return None;
        }
        let fields = [&self.kind, &self.id, &self.salt, &self.nonce, &self.wrapped];
        if fields.iter().any(|f| f.contains(' ')) {
            return None;
        }
        Slot::parse_line(&format!(
            "slot {} {} {} {} {}",
            self.kind, self.id, self.salt, self.nonce, self.wrapped
        ))
        .ok()
    }
}

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Unwrap the vault's master key from one of these slots (or answer a
    /// master key the agent holds for this vault id).
    Unwrap {
        /// The vault id (32 hex digits); it is the slots' associated data.
        vault: String,
        /// The vault's key-file and agent slots.
        slots: Vec<WireSlot>,
    },
    /// Make an agent slot for this vault: wrap `master` under a held secret.
    Wrap {
        /// The vault id.
        vault: String,
        /// Which held key (its id); optional when the agent holds one.
        key_id: Option<String>,
        /// The master key to wrap.
        master: WireKey,
    },
    /// Hold this master key (the passphrase cache); only cache agents accept it.
    AddMaster {
        /// The vault id.
        vault: String,
        /// Its master key.
        master: WireKey,
    },
    /// Forget every held key until `unlock`.
    Lock,
    /// Re-read the key files the agent was started with.
    Unlock,
    /// Describe what is held (never a secret).
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
    /// The request is understood but not allowed here.
    Refused,
    /// Too many connections at once.
    Busy,
}

/// One held key, described (never the key itself).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// `keyfile` (a secret from a key file) or `master` (a vault's master key).
    pub kind: String,
    /// The key id (key-file secrets) or the vault id (master keys).
    pub id: String,
    /// The key file it was read from, if any.
    pub path: Option<String>,
    /// Seconds until the idle TTL expires it, if there is one.
    pub idle_left_secs: Option<u64>,
    /// Seconds until the max lifetime expires it, if there is one.
    pub max_left_secs: Option<u64>,
}

/// The agent's state, for `devc-vault status`.
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
}

/// What the agent answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The unwrapped master key.
    Master {
        /// The key.
        key: WireKey,
        /// Which slot (or held vault key) gave it.
        via: String,
    },
    /// A new agent slot.
    Slot {
        /// The slot.
        slot: WireSlot,
    },
    /// Done.
    Ok,
    /// The state.
    Status(StatusInfo),
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
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLarge(n));
    }
    let mut buf = Zeroizing::new(vec![0u8; n]);
    r.read_exact(&mut buf).map_err(FrameError::Io)?;
    Ok(Some(buf))
}

/// Serializes `msg` and writes it as one frame.
pub fn write_frame(w: &mut impl Write, msg: &impl Serialize) -> io::Result<()> {
    // Room for the largest message up front, so serializing a secret does
    // not leave copies behind in reallocated (unzeroized) buffers.
    let mut buf = Zeroizing::new(Vec::with_capacity(4 + 8 * 1024));
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
    w.write_all(&buf)?;
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
        format!("protocol version {v} is not supported; this agent speaks version {VERSION}"),
    )
}

/// Parses a response frame.
pub fn parse_response(body: &[u8]) -> Result<Response, String> {
    match serde_json::from_slice::<ResponseFrame>(body) {
        Ok(f) if f.v == VERSION => Ok(f.resp),
        Ok(f) => Err(format!(
            "agent speaks protocol version {}, this client {VERSION}",
            f.v
        )),
        Err(e) => Err(format!("malformed agent response: {e}")),
    }
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
                master: WireKey::from_master(&k),
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
    fn debug_redacts_keys() {
        let k = WireKey(Zeroizing::new([0xab; 32]));
        assert_eq!(format!("{k:?}"), "[redacted]");
    }

    #[test]
    fn bad_requests_get_classified_errors() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"", ErrorCode::Malformed),
            (b"{", ErrorCode::Malformed),
            (b"[]", ErrorCode::Malformed),
            (br#"{"v":1,"req":"nope"}"#, ErrorCode::Malformed),
            (
                br#"{"v":1,"req":{"unwrap":{"vault":"x"}}}"#,
                ErrorCode::Malformed,
            ),
            (br#"{"v":2,"req":"lock"}"#, ErrorCode::Version),
            (br#"{"v":9,"req":{"future":{}}}"#, ErrorCode::Version),
            (
                br#"{"v":1,"req":{"add_master":{"vault":"00","master":"zz"}}}"#,
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
    fn wire_slot_round_trip_and_strictness() {
        let vault = devc_vault::VaultId([1; 16]);
        let slot = Slot::for_secret(
            SlotKind::KeyFile,
            &vault,
            &MasterKey::generate(),
            &devc_vault::KeySecret::generate(),
        );
        let w = WireSlot::from_slot(&slot).expect("keyfile slot");
        assert_eq!(w.to_slot().as_ref(), Some(&slot));
        let mut bad = w.clone();
        bad.wrapped.pop();
        assert!(bad.to_slot().is_none());
        let mut bad = w;
        bad.kind = "passphrase".into();
        assert!(bad.to_slot().is_none());
    }
}
