//! The agent client: one connection, request/response frames, and the calls
//! its users need. Every connection checks who serves the socket (and the
//! socket's directory) before a request is sent: see [`crate::endpoint`].

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devc_vault::{AccessKeys, MasterKey, SealedVault, Slot, VaultId, hex};

use crate::endpoint::{self, EndpointError, Trust};
use crate::environment;
use crate::protocol::{
    self, ErrorCode, Request, RequestFrame, Response, Role, StatusInfo, VERSION, wire_master,
    wire_slots,
};

/// How long a client waits for the agent before giving up. A request takes
/// microseconds; this only bounds a wedged or malicious peer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why talking to an agent failed.
#[derive(Debug)]
pub enum AgentError {
    /// Nothing listens at the socket (missing, or a stale file).
    NotRunning {
        /// The socket.
        path: PathBuf,
    },
    /// The endpoint or its directory failed the checks; nothing was sent.
    Untrusted(EndpointError),
    /// Connecting or talking failed.
    Io {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The agent's answer could not be understood.
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The agent answered with an error.
    Refused {
        /// The socket.
        path: PathBuf,
        /// Its error class.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
}

impl AgentError {
    /// The agent's error code, if it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AgentError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::NotRunning { path } => write!(f, "no agent at {}", path.display()),
            AgentError::Untrusted(e) => write!(f, "{e}"),
            AgentError::Io { path, source } => write!(f, "agent at {}: {source}", path.display()),
            AgentError::Protocol { path, reason } => {
                write!(f, "agent at {}: {reason}", path.display())
            }
            AgentError::Refused { path, message, .. } => {
                write!(f, "agent at {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for AgentError {}

/// A connection to an agent, an owner endpoint or a cache.
#[derive(Debug)]
pub struct AgentClient {
    path: PathBuf,
    stream: UnixStream,
}

impl AgentClient {
    /// Connects to the socket at `path` and checks its endpoint as `trust`
    /// says, before anything is sent.
    pub fn connect(path: &Path, trust: Trust) -> Result<AgentClient, AgentError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => AgentError::NotRunning {
                path: path.to_path_buf(),
            },
            _ => AgentError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        endpoint::verify(&stream, path, trust).map_err(AgentError::Untrusted)?;
        let io_err = |source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        };
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
        Ok(AgentClient {
            path: path.to_path_buf(),
            stream,
        })
    }

    /// Connects to the owner endpoint of the agent whose container-facing
    /// socket is `agent_socket` (the agent must run as this user, here).
    pub fn connect_owner(agent_socket: &Path) -> Result<AgentClient, AgentError> {
        AgentClient::connect(&environment::owner_socket(agent_socket), Trust::Private)
    }

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and reads the answer; error answers become `Refused`.
    pub fn request(&mut self, req: Request) -> Result<Response, AgentError> {
        let io_err = |source| AgentError::Io {
            path: self.path.clone(),
            source,
        };
        let written = protocol::write_frame(&mut self.stream, &RequestFrame { v: VERSION, req });
        let body = match protocol::read_frame(&mut self.stream) {
            // An agent that refuses a peer answers at once and hangs up, so
            // the write can fail while its answer is already waiting.
            Ok(Some(b)) if written.is_err() => b,
            _ if written.is_err() => {
                return Err(io_err(
                    written
                        .err()
                        .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()),
                ));
            }
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(AgentError::Protocol {
                    path: self.path.clone(),
                    reason: "the agent closed the connection without answering".into(),
                });
            }
            Err(protocol::FrameError::Io(e)) => return Err(io_err(e)),
            Err(e) => {
                return Err(AgentError::Protocol {
                    path: self.path.clone(),
                    reason: e.to_string(),
                });
            }
        };
        match protocol::parse_response(&body) {
            Ok(Response::Error { code, message }) => Err(AgentError::Refused {
                path: self.path.clone(),
                code,
                message,
            }),
            Ok(r) => Ok(r),
            Err(reason) => Err(AgentError::Protocol {
                path: self.path.clone(),
                reason,
            }),
        }
    }

    fn unexpected(&self, r: &Response) -> AgentError {
        AgentError::Protocol {
            path: self.path.clone(),
            reason: format!("unexpected answer {}", response_name(r)),
        }
    }

    fn expect_keys(&mut self, req: Request) -> Result<AccessKeys, AgentError> {
        match self.request(req)? {
            Response::Keys { keys, .. } => Ok(AccessKeys::from_bytes(&keys.0)),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Which endpoint this is, and whether it is locked.
    pub fn ping(&mut self) -> Result<(Role, bool), AgentError> {
        match self.request(Request::Ping)? {
            Response::Pong { role, locked } => Ok((role, locked)),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The keys of this version of the vault (its salt), sending its
    /// key-file and agent slots.
    pub fn open(&mut self, sealed: &SealedVault) -> Result<AccessKeys, AgentError> {
        self.open_with(&sealed.id, sealed.salt(), &sealed.slots)
    }

    /// The keys of the version of `vault` written with `salt`, found through
    /// `slots` (e.g. one new slot, to check it before it is written).
    pub fn open_with(
        &mut self,
        vault: &VaultId,
        salt: &[u8; devc_vault::SALT_LEN],
        slots: &[Slot],
    ) -> Result<AccessKeys, AgentError> {
        self.expect_keys(Request::Open {
            vault: vault.to_string(),
            salt: hex::encode(salt),
            slots: wire_slots(slots),
        })
    }

    /// The keys for a new version of `vault`, under a salt the agent draws.
    pub fn seal(&mut self, vault: &VaultId, slots: &[Slot]) -> Result<AccessKeys, AgentError> {
        self.expect_keys(Request::Seal {
            vault: vault.to_string(),
            slots: wire_slots(slots),
        })
    }

    /// Owner only: asks the agent to make an agent slot for `vault` holding `master`.
    pub fn wrap(
        &mut self,
        vault: &VaultId,
        key_id: Option<String>,
        master: &MasterKey,
    ) -> Result<Slot, AgentError> {
        match self.request(Request::Wrap {
            vault: vault.to_string(),
            key_id,
            master: wire_master(master),
        })? {
            Response::Slot { slot } => Slot::parse_line(&slot).map_err(|_| AgentError::Protocol {
                path: self.path.clone(),
                reason: "the agent answered a malformed slot".into(),
            }),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Cache only: hands it a vault's master key.
    pub fn add_master(&mut self, vault: &VaultId, master: &MasterKey) -> Result<(), AgentError> {
        self.expect_ok(Request::AddMaster {
            vault: vault.to_string(),
            master: wire_master(master),
        })
    }

    /// Owner only: locks the agent (a cache forgets and exits).
    pub fn lock(&mut self) -> Result<(), AgentError> {
        self.expect_ok(Request::Lock)
    }

    /// Owner only: unlocks the agent (it reads its key secrets again).
    pub fn unlock(&mut self) -> Result<(), AgentError> {
        self.expect_ok(Request::Unlock)
    }

    /// Owner only: the agent's state.
    pub fn status(&mut self) -> Result<StatusInfo, AgentError> {
        match self.request(Request::Status)? {
            Response::Status(s) => Ok(*s),
            other => Err(self.unexpected(&other)),
        }
    }

    fn expect_ok(&mut self, req: Request) -> Result<(), AgentError> {
        match self.request(req)? {
            Response::Ok => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }
}

fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Pong { .. } => "pong",
        Response::Keys { .. } => "keys",
        Response::Slot { .. } => "slot",
        Response::Ok => "ok",
        Response::Status(_) => "status",
        Response::Error { .. } => "error",
    }
}

/// An agent (or cache) as the key service of a vault it opened: each write
/// asks it for the keys of a new version.
#[derive(Debug)]
pub struct AgentService {
    /// The socket that answered.
    pub socket: PathBuf,
    /// How it was checked.
    pub trust: Trust,
}

impl devc_vault::KeyService for AgentService {
    fn write_keys(&self, vault: &VaultId, slots: &[Slot]) -> devc_vault::Result<AccessKeys> {
        AgentClient::connect(&self.socket, self.trust)
            .and_then(|mut c| c.seal(vault, slots))
            .map_err(|e| devc_vault::Error::KeyService {
                reason: e.to_string(),
            })
    }
}
