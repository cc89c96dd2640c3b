//! `devc-vault agent`: holds key-file secrets (or vault master keys, as the
//! passphrase cache) and answers unwrap requests over a unix socket. The
//! long-term secrets never leave it; only a vault's master key does, to a
//! peer the kernel vouches for (SO_PEERCRED).

pub mod harden;
pub mod sock;
pub mod state;

use std::fmt;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use devc_vault::{MasterKey, VaultId};

use crate::protocol::{self, ErrorCode, Request, Response, ResponseFrame, VERSION};
use sock::SocketIdent;
use state::{Policy, State};

/// Connections served at once; more get a `busy` answer. Bounds threads.
pub const MAX_CONNECTIONS: usize = 512;
/// A connection idle this long is closed, so a stuck peer cannot pin a thread.
pub const CONNECTION_IDLE: Duration = Duration::from_secs(10);
/// A cache agent that got no key this long after start exits.
pub const CACHE_START_GRACE: Duration = Duration::from_secs(30);

/// How to run an agent.
#[derive(Debug, Default)]
pub struct AgentOptions {
    /// The socket path.
    pub socket: PathBuf,
    /// Key files to hold (re-read on unlock, SIGHUP and unwrap failure).
    pub key_files: Vec<PathBuf>,
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
    /// The socket directory is unsafe or unusable.
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
    /// A key file could not be loaded.
    KeyFile(devc_vault::Error),
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
            AgentStartError::KeyFile(e) => write!(f, "{e}"),
            AgentStartError::Harden(e) => write!(f, "cannot disable core dumps and tracing: {e}"),
            AgentStartError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            AgentStartError::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for AgentStartError {}

/// State shared by the connection, timer and signal threads.
struct Server {
    state: Mutex<State>,
    socket: PathBuf,
    ident: SocketIdent,
    own_uid: u32,
    allow_uids: Vec<u32>,
    connections: AtomicUsize,
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

    /// Removes our socket, forgets every key and exits.
    fn shutdown(&self, why: &str) -> ! {
        sock::remove_if_ours(&self.socket, self.ident);
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
    harden::harden().map_err(AgentStartError::Harden)?;
    if opts.detach {
        // Fails only if we already lead a session or process group, which
        // a helper-spawned child does not; either way, carry on.
        let _ = rustix::process::setsid();
    }
    let own_uid = crate::environment::uid();
    let mut owners = vec![own_uid];
    owners.extend(&opts.policy.allow_uids);
    // With other uids allowed, the socket file itself must let them
    // connect; the 0700 directory and SO_PEERCRED stay the gates.
    let mode = if opts.policy.allow_uids.is_empty() {
        0o600
    } else {
        0o666
    };
    let allow_uids = opts.policy.allow_uids.clone();
    let state =
        State::new(opts.policy, opts.key_files, opts.masters).map_err(AgentStartError::KeyFile)?;
    let (listener, ident) = sock::bind(&opts.socket, &owners, mode)?;
    let server = Arc::new(Server {
        state: Mutex::new(state),
        socket: opts.socket,
        ident,
        own_uid,
        allow_uids,
        connections: AtomicUsize::new(0),
        log: opts.log,
        started: Instant::now(),
    });
    spawn_signal_thread(&server)?;
    spawn_timer_thread(&server);
    server.log(format!(
        "listening on {} (pid {})",
        server.socket.display(),
        std::process::id()
    ));
    serve(&server, &listener)
}

fn spawn_signal_thread(server: &Arc<Server>) -> Result<(), AgentStartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(AgentStartError::Signals)?;
    let server = Arc::clone(server);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    let log = server.state().reload();
                    server.log("SIGHUP: key files re-read");
                    log.iter().for_each(|l| server.log(l));
                } else {
                    server.shutdown(if sig == SIGINT { "SIGINT" } else { "SIGTERM" });
                }
            }
        })
        .map_err(AgentStartError::Signals)?;
    Ok(())
}

fn spawn_timer_thread(server: &Arc<Server>) {
    let server = Arc::clone(server);
    // If this thread cannot start, TTLs are still enforced on each request.
    let _ = thread::Builder::new().name("timer".into()).spawn(move || {
        loop {
            thread::sleep(Duration::from_millis(250));
            let (empty, cache, ever) = {
                let mut st = server.state();
                for l in st.expire(Instant::now()) {
                    server.log(l);
                }
                (st.is_empty(), st.policy().cache, st.ever_held)
            };
            // A cache that holds nothing has nothing to offer until the
            // next passphrase prompt, which starts a new one.
            if cache && empty && (ever || server.started.elapsed() > CACHE_START_GRACE) {
                server.shutdown("cache empty");
            }
        }
    });
}

fn serve(
    server: &Arc<Server>,
    listener: &UnixListener,
) -> Result<std::convert::Infallible, AgentStartError> {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                server.log(format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let mut stream = stream;
        match sock::peer(&stream) {
            Ok((uid, _)) if uid == server.own_uid || server.allow_uids.contains(&uid) => {}
            Ok((uid, pid)) => {
                server.log(format!("refused connection from uid {uid} (pid {pid}): not this user and not --allow-uid"));
                reply(
                    &mut stream,
                    Response::error(
                        ErrorCode::Refused,
                        format!("uid {uid} is not allowed by this agent"),
                    ),
                );
                continue;
            }
            Err(e) => {
                server.log(format!(
                    "refused connection: cannot read peer credentials: {e}"
                ));
                continue;
            }
        }
        if server.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            server.connections.fetch_sub(1, Ordering::AcqRel);
            reply(
                &mut stream,
                Response::error(ErrorCode::Busy, "too many connections; try again"),
            );
            continue;
        }
        let s = Arc::clone(server);
        let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
            handle_connection(&s, stream);
            s.connections.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            server.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn reply(stream: &mut UnixStream, resp: Response) -> bool {
    let _ = stream.set_write_timeout(Some(CONNECTION_IDLE));
    protocol::write_frame(stream, &ResponseFrame { v: VERSION, resp }).is_ok()
}

fn handle_connection(server: &Server, mut stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(CONNECTION_IDLE));
    loop {
        let body = match protocol::read_frame(&mut stream) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(protocol::FrameError::TooLarge(n)) => {
                // The rest of the stream cannot be re-synchronized: answer, close.
                server.log(format!(
                    "refused a {n}-byte message (cap {})",
                    protocol::MAX_MESSAGE_LEN
                ));
                reply(
                    &mut stream,
                    Response::error(
                        ErrorCode::TooLarge,
                        format!(
                            "message of {n} bytes exceeds the {}-byte cap",
                            protocol::MAX_MESSAGE_LEN
                        ),
                    ),
                );
                return;
            }
            Err(protocol::FrameError::Io(_)) => return,
        };
        let (resp, then_exit) = match protocol::parse_request(&body) {
            Ok(req) => handle(server, req),
            Err(resp) => {
                server.log("answered a malformed request with an error");
                (resp, false)
            }
        };
        let ok = reply(&mut stream, resp);
        if then_exit {
            server.shutdown("cache locked");
        }
        if !ok {
            return;
        }
    }
}

fn parse_vault(s: &str) -> Result<VaultId, Response> {
    VaultId::parse(s).ok_or_else(|| Response::error(ErrorCode::Malformed, "malformed vault id"))
}

/// Answers one request; the flag asks the caller to exit after replying.
fn handle(server: &Server, req: Request) -> (Response, bool) {
    let now = Instant::now();
    match req {
        Request::Unwrap { vault, slots } => {
            let vault = match parse_vault(&vault) {
                Ok(v) => v,
                Err(r) => return (r, false),
            };
            if slots.len() > protocol::MAX_SLOTS {
                return (
                    Response::error(ErrorCode::Malformed, "too many slots"),
                    false,
                );
            }
            let Some(slots) = slots
                .iter()
                .map(protocol::WireSlot::to_slot)
                .collect::<Option<Vec<_>>>()
            else {
                return (
                    Response::error(ErrorCode::Malformed, "malformed slot"),
                    false,
                );
            };
            let mut log = Vec::new();
            let resp = {
                let mut st = server.state();
                st.expire(now).into_iter().for_each(|l| log.push(l));
                st.unwrap(&vault, &slots, now, &mut log)
            };
            log.iter().for_each(|l| server.log(l));
            (resp, false)
        }
        Request::Wrap {
            vault,
            key_id,
            master,
        } => match parse_vault(&vault) {
            Ok(v) => {
                let mut st = server.state();
                st.expire(now);
                (
                    st.wrap(&v, key_id.as_deref(), &master.to_master(), now),
                    false,
                )
            }
            Err(r) => (r, false),
        },
        Request::AddMaster { vault, master } => match parse_vault(&vault) {
            Ok(v) => {
                let resp = server.state().add_master(v, master.to_master(), now);
                if matches!(resp, Response::Ok) {
                    server.log(format!("holding the key of vault {v}"));
                }
                (resp, false)
            }
            Err(r) => (r, false),
        },
        Request::Lock => {
            let cache = {
                let mut st = server.state();
                st.lock();
                st.policy().cache
            };
            server.log("locked");
            (Response::Ok, cache)
        }
        Request::Unlock => {
            let resp = server.state().unlock();
            if matches!(resp, Response::Ok) {
                server.log("unlocked: key files re-read");
            }
            (resp, false)
        }
        Request::Status => {
            let mut st = server.state();
            st.expire(now);
            (Response::Status(st.status(now)), false)
        }
    }
}
