//! `devc-vault agent`: holds key secrets (or vault master keys, as the
//! passphrase cache) and answers key requests over unix sockets. Nothing it
//! holds ever leaves it: a client gets the keys of one version of a vault
//! (`devc_vault::AccessKeys`), never a master key or a key file's secret.
//!
//! An agent listens on two sockets:
//! - the **container-facing** one (`--socket`), in a directory of its own
//!   that a container mounts: it answers only `ping`, `open` and `seal`,
//!   for this user and the `--allow-uid` uids;
//! - the **owner endpoint**, in the owner's private runtime directory (never
//!   mounted): `lock`, `unlock`, `wrap` and `status` too, for this user only.
//!
//! A passphrase cache has one socket, in the private runtime directory.

pub mod conn;
pub mod sock;
pub mod state;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use devc_vault::{MasterKey, VaultId};

use crate::environment;
use crate::protocol::{self, ErrorCode, Request, Response, Role};
use conn::{Handler, Listener};
use sock::SocketIdent;
use state::{Policy, SecretSource, State};

/// A cache agent that got no key this long after start exits.
pub const CACHE_START_GRACE: Duration = Duration::from_secs(30);

/// How to run an agent.
#[derive(Debug, Default)]
pub struct AgentOptions {
    /// The container-facing socket (an agent), or the cache's socket.
    pub socket: PathBuf,
    /// Key secrets to hold (re-read on unlock, SIGHUP and unwrap failure).
    pub sources: Vec<SecretSource>,
    /// Vault master keys to hold from the start (opened with a passphrase).
    pub masters: Vec<(VaultId, MasterKey)>,
    /// TTLs, allow-lists, cache mode.
    pub policy: Policy,
    /// Detach from the terminal's session (cache agents started by a helper).
    pub detach: bool,
    /// Write a log line per event to stderr.
    pub log: bool,
}

/// Why the agent could not start.
#[derive(Debug)]
pub enum AgentStartError {
    /// A socket directory is unsafe or unusable.
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// A live agent already answers on the socket.
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
    },
    /// The socket path exists and is not a socket.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A key secret could not be loaded.
    Key(String),
    /// Could not make the process undumpable or disable core dumps.
    Harden(io::Error),
    /// Signal handling could not be set up.
    Signals(io::Error),
    /// Another OS error.
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for AgentStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentStartError::SocketDir { path, reason } => {
                write!(f, "refusing socket directory {}: {reason}", path.display())
            }
            AgentStartError::AlreadyRunning { path } => {
                write!(f, "an agent is already running on {}", path.display())
            }
            AgentStartError::NotASocket { path } => {
                write!(
                    f,
                    "{} exists and is not a socket; remove it or choose another --socket",
                    path.display()
                )
            }
            AgentStartError::Key(e) => f.write_str(e),
            AgentStartError::Harden(e) => write!(f, "cannot disable core dumps and tracing: {e}"),
            AgentStartError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            AgentStartError::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for AgentStartError {}

/// State shared by the connection loop and the signal thread.
struct Server {
    state: Mutex<State>,
    /// The sockets removed at exit: the container-facing one, or the
    /// cache's. The owner endpoint's file is left behind on purpose: it
    /// tells the owner's clients on this host that the agent of this socket
    /// is not running, so they never turn to the container-facing socket,
    /// which a container that mounts its directory read-write could replace
    /// with a fake replaying keys it recorded. The next agent on the same
    /// socket replaces the stale file.
    sockets: Vec<(PathBuf, SocketIdent)>,
    facing: Option<PathBuf>,
    /// The owner endpoint (agents only).
    owner: Option<PathBuf>,
    log: bool,
    started: Instant,
}

impl Server {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-updated key
        // set (every change is a whole assignment), so recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, msg: impl AsRef<str>) {
        if self.log {
            eprintln!("devc-vault agent: {}", msg.as_ref());
        }
    }

    /// Removes the container-facing (or the cache's) socket, if still
    /// ours, forgets every key and exits; the owner endpoint's file stays
    /// (see `sockets`).
    fn shutdown(&self, why: &str) -> ! {
        for (path, ident) in &self.sockets {
            sock::remove_if_ours(path, *ident);
        }
        if let Ok(mut st) = self.state.try_lock() {
            st.lock();
        }
        self.log(format!("{why}; socket removed, exiting"));
        std::process::exit(0)
    }
}

/// Runs the agent until SIGTERM/SIGINT (or, for a cache, until it holds
/// nothing). Returns only on a start-up error.
pub fn run(opts: AgentOptions) -> Result<std::convert::Infallible, AgentStartError> {
    crate::harden::harden().map_err(AgentStartError::Harden)?;
    if opts.detach {
        // Fails only if we already lead a session or process group, which
        // a helper-spawned child does not; either way, carry on.
        let _ = rustix::process::setsid();
    }
    let own_uid = environment::uid();
    let cache = opts.policy.cache;
    let mut facing_uids = vec![own_uid];
    facing_uids.extend(&opts.policy.allow_uids);
    let others_enter = !opts.policy.allow_uids.is_empty();
    let state =
        State::new(opts.policy, opts.sources, opts.masters).map_err(AgentStartError::Key)?;

    // The private runtime directory holds the cache and the owner
    // endpoints: one another user created first is refused, never used (it
    // could swap the endpoints' directory at will).
    let private = environment::private_runtime_dir();
    crate::endpoint::ensure_private_dir(&private).map_err(|e| match e {
        crate::endpoint::EndpointError::Directory { dir, reason } => {
            AgentStartError::SocketDir { path: dir, reason }
        }
        other => AgentStartError::SocketDir {
            path: private.clone(),
            reason: other.to_string(),
        },
    })?;
    let mut listeners = Vec::new();
    let mut sockets = Vec::new();
    let mut owner_endpoint = None;
    if cache {
        let (l, ident) = sock::bind_private(&opts.socket)?;
        listeners.push(Listener {
            socket: l,
            role: Role::Cache,
            uids: vec![own_uid],
        });
        sockets.push((opts.socket.clone(), ident));
    } else {
        let dir = crate::endpoint::socket_dir(&opts.socket);
        let name = opts
            .socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sock::prepare_facing_dir(&dir, &name, others_enter)?;
        // With other uids allowed, the socket file itself must let them
        // connect; the directory and SO_PEERCRED stay the gates.
        let mode = if others_enter { 0o666 } else { 0o600 };
        let (l, ident) = sock::bind(&opts.socket, mode)?;
        listeners.push(Listener {
            socket: l,
            role: Role::Agent,
            uids: facing_uids,
        });
        sockets.push((opts.socket.clone(), ident));
        let owner = environment::owner_socket(&opts.socket);
        let (l, ident) = match sock::bind_private(&owner) {
            Ok(b) => b,
            Err(e) => {
                for (path, ident) in &sockets {
                    sock::remove_if_ours(path, *ident);
                }
                return Err(e);
            }
        };
        listeners.push(Listener {
            socket: l,
            role: Role::Owner,
            uids: vec![own_uid],
        });
        owner_endpoint = Some((owner, ident));
    }
    let server = Arc::new(Server {
        state: Mutex::new(state),
        facing: (!cache).then(|| opts.socket.clone()),
        sockets,
        owner: owner_endpoint.map(|(p, _)| p),
        log: opts.log,
        started: Instant::now(),
    });
    spawn_signal_thread(&server)?;
    server.log(format!(
        "listening on {} (pid {}); owner endpoint {}",
        opts.socket.display(),
        std::process::id(),
        server
            .owner
            .as_ref()
            .map_or_else(|| "none (cache)".to_owned(), |p| p.display().to_string()),
    ));
    let mut handler = AgentHandler {
        server: Arc::clone(&server),
        exit_after_reply: false,
    };
    conn::serve(&listeners, &mut handler);
    server.shutdown("cache empty")
}

fn spawn_signal_thread(server: &Arc<Server>) -> Result<(), AgentStartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // A `--passphrase` prompt re-armed the default actions; these are ours now.
    crate::prompt::release_signals();
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(AgentStartError::Signals)?;
    let server = Arc::clone(server);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    let log = server.state().reload();
                    server.log("SIGHUP: key secrets re-read");
                    log.iter().for_each(|l| server.log(l));
                } else {
                    server.shutdown(if sig == SIGINT { "SIGINT" } else { "SIGTERM" });
                }
            }
        })
        .map_err(AgentStartError::Signals)?;
    Ok(())
}

struct AgentHandler {
    server: Arc<Server>,
    exit_after_reply: bool,
}

impl Handler for AgentHandler {
    fn request(&mut self, role: Role, body: &[u8]) -> (Response, bool) {
        let (resp, exit) = match protocol::parse_request(body) {
            Ok(req) => handle(&self.server, role, req),
            Err(resp) => {
                self.server
                    .log("answered a malformed request with an error");
                (resp, false)
            }
        };
        self.exit_after_reply |= exit;
        (resp, exit)
    }

    fn tick(&mut self) -> bool {
        let (empty, cache, ever) = {
            let mut st = self.server.state();
            for l in st.expire(Instant::now()) {
                self.server.log(l);
            }
            (st.is_empty(), st.policy().cache, st.ever_held)
        };
        // A cache that holds nothing has nothing to offer until the next
        // passphrase prompt, which starts a new one.
        !(cache && empty && (ever || self.server.started.elapsed() > CACHE_START_GRACE))
    }

    fn finish(&mut self) {
        if self.exit_after_reply {
            self.server.shutdown("cache locked");
        }
    }

    fn log(&self, line: &str) {
        self.server.log(line);
    }
}

fn parse_vault(s: &str) -> Result<VaultId, Response> {
    VaultId::parse(s).ok_or_else(|| Response::error(ErrorCode::Malformed, "malformed vault id"))
}

fn parse_slots(slots: &[String]) -> Result<Vec<devc_vault::Slot>, Response> {
    if slots.len() > protocol::MAX_SLOTS {
        return Err(Response::error(ErrorCode::Malformed, "too many slots"));
    }
    protocol::parse_slots(slots)
        .ok_or_else(|| Response::error(ErrorCode::Malformed, "malformed slot"))
}

fn refused(role: Role, what: &str) -> Response {
    Response::error(
        ErrorCode::Refused,
        match role {
            Role::Agent => format!(
                "{what} is not served on the container-facing socket; its owner runs it on the host"
            ),
            _ => format!("{what} is not served here"),
        },
    )
}

/// Answers one request from a peer of `role`; the flag asks to exit after replying.
fn handle(server: &Server, role: Role, req: Request) -> (Response, bool) {
    let now = Instant::now();
    let owner = matches!(role, Role::Owner | Role::Cache);
    match req {
        Request::Ping => {
            let mut st = server.state();
            st.expire(now);
            (
                Response::Pong {
                    role,
                    locked: st.is_locked(),
                },
                false,
            )
        }
        Request::Open { vault, salt, slots } => {
            let (vault, slots) =
                match parse_vault(&vault).and_then(|v| Ok((v, parse_slots(&slots)?))) {
                    Ok(p) => p,
                    Err(r) => return (r, false),
                };
            let Some(salt) = protocol::parse_salt(&salt) else {
                return (
                    Response::error(ErrorCode::Malformed, "malformed salt"),
                    false,
                );
            };
            (keys(server, &vault, Some(salt), &slots, now), false)
        }
        Request::Seal { vault, slots } => {
            let (vault, slots) =
                match parse_vault(&vault).and_then(|v| Ok((v, parse_slots(&slots)?))) {
                    Ok(p) => p,
                    Err(r) => return (r, false),
                };
            (keys(server, &vault, None, &slots, now), false)
        }
        Request::Wrap { .. } if role != Role::Owner => (refused(role, "wrap"), false),
        Request::Wrap {
            vault,
            key_id,
            master,
        } => match parse_vault(&vault) {
            Ok(v) => {
                let mut st = server.state();
                st.expire(now);
                (
                    st.wrap(
                        &v,
                        key_id.as_deref(),
                        &MasterKey::from_bytes(*master.0),
                        now,
                    ),
                    false,
                )
            }
            Err(r) => (r, false),
        },
        Request::AddMaster { .. } if role != Role::Cache => (refused(role, "add_master"), false),
        Request::AddMaster { vault, master } => match parse_vault(&vault) {
            Ok(v) => {
                let resp = server
                    .state()
                    .add_master(v, MasterKey::from_bytes(*master.0), now);
                if matches!(resp, Response::Ok) {
                    server.log(format!("holding the key of vault {v}"));
                }
                (resp, false)
            }
            Err(r) => (r, false),
        },
        Request::Lock if !owner => (refused(role, "lock"), false),
        Request::Lock => {
            server.state().lock();
            server.log("locked");
            (Response::Ok, role == Role::Cache)
        }
        Request::Unlock if role != Role::Owner => (refused(role, "unlock"), false),
        Request::Unlock => {
            let resp = server.state().unlock();
            if matches!(resp, Response::Ok) {
                server.log("unlocked: key secrets re-read");
            }
            (resp, false)
        }
        Request::Status if !owner => (refused(role, "status"), false),
        Request::Status => {
            let mut st = server.state();
            st.expire(now);
            let socket = server.facing.as_ref().map(|p| p.display().to_string());
            (Response::Status(Box::new(st.status(now, socket))), false)
        }
    }
}

fn keys(
    server: &Server,
    vault: &VaultId,
    salt: Option<[u8; devc_vault::SALT_LEN]>,
    slots: &[devc_vault::Slot],
    now: Instant,
) -> Response {
    let mut log = Vec::new();
    let resp = {
        let mut st = server.state();
        log.extend(st.expire(now));
        st.keys(vault, salt, slots, now, &mut log)
    };
    log.iter().for_each(|l| server.log(l));
    resp
}
