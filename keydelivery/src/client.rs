//! The agent client: one connection, request/response frames.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devc_vault::{MasterKey, SealedVault, Slot, VaultId};

use crate::protocol::{
    self, ErrorCode, Request, RequestFrame, Response, StatusInfo, VERSION, WireKey, WireSlot,
};

/// How long a client waits for the agent before giving up. An unwrap takes
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

/// A connection to an agent.
#[derive(Debug)]
pub struct AgentClient {
    path: PathBuf,
    stream: UnixStream,
}

impl AgentClient {
    /// Connects to the agent at `path`.
    pub fn connect(path: &Path) -> Result<AgentClient, AgentError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => AgentError::NotRunning {
                path: path.to_path_buf(),
            },
            _ => AgentError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
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

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The uid of the process serving the socket, from the kernel (SO_PEERCRED).
    pub fn peer_uid(&self) -> Result<u32, AgentError> {
        crate::agent::sock::peer(&self.stream)
            .map(|(uid, _)| uid)
            .map_err(|source| AgentError::Io {
                path: self.path.clone(),
                source,
            })
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

    /// Asks for the vault's master key, sending its key-file and agent slots.
    pub fn unwrap(&mut self, sealed: &SealedVault) -> Result<MasterKey, AgentError> {
        self.unwrap_slots(&sealed.id, &sealed.slots)
    }

    /// Asks for `vault`'s master key from `slots` (e.g. to check a slot the
    /// agent just made before it is written).
    pub fn unwrap_slots(
        &mut self,
        vault: &VaultId,
        slots: &[Slot],
    ) -> Result<MasterKey, AgentError> {
        let slots = slots.iter().filter_map(WireSlot::from_slot).collect();
        match self.request(Request::Unwrap {
            vault: vault.to_string(),
            slots,
        })? {
            Response::Master { key, .. } => Ok(key.to_master()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Asks the agent to make an agent slot for `vault` holding `master`.
    pub fn wrap(
        &mut self,
        vault: &VaultId,
        key_id: Option<String>,
        master: &MasterKey,
    ) -> Result<Slot, AgentError> {
        match self.request(Request::Wrap {
            vault: vault.to_string(),
            key_id,
            master: WireKey::from_master(master),
        })? {
            Response::Slot { slot } => slot.to_slot().ok_or_else(|| AgentError::Protocol {
                path: self.path.clone(),
                reason: "the agent answered a malformed slot".into(),
            }),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Hands a master key to a cache agent.
    pub fn add_master(&mut self, vault: &VaultId, master: &MasterKey) -> Result<(), AgentError> {
        self.expect_ok(Request::AddMaster {
            vault: vault.to_string(),
            master: WireKey::from_master(master),
        })
    }

    /// Locks the agent.
    pub fn lock(&mut self) -> Result<(), AgentError> {
        self.expect_ok(Request::Lock)
    }

    /// Unlocks the agent (it re-reads its key files).
    pub fn unlock(&mut self) -> Result<(), AgentError> {
        self.expect_ok(Request::Unlock)
    }

    /// The agent's state.
    pub fn status(&mut self) -> Result<StatusInfo, AgentError> {
        match self.request(Request::Status)? {
            Response::Status(s) => Ok(s),
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
        Response::Master { .. } => "master",
        Response::Slot { .. } => "slot",
        Response::Ok => "ok",
        Response::Status(_) => "status",
        Response::Error { .. } => "error",
    }
}
