//! The agent's connections: one thread polls every listener and connection,
//! so a slow client costs a descriptor, not a thread. Every connection has
//! an absolute deadline; each peer uid may hold a bounded share of the
//! connection table, and when it is full the oldest connection that has not
//! sent a whole request gives way to the newcomer, so a flood of slow
//! clients can delay a real request by one poll round at most.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use zeroize::Zeroizing;

use crate::endpoint;
use crate::protocol::{self, ErrorCode, FrameError, Response, ResponseFrame, Role, VERSION};

/// Connections served at once (bounds descriptors).
pub const MAX_CONNECTIONS: usize = 512;
/// Connections one peer uid may hold at once.
pub const MAX_PER_UID: usize = 384;
/// How long a connection may live, from accept to close, whatever it does.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How often the loop wakes when nothing happens (TTL expiry, cache exit).
pub const TICK: Duration = Duration::from_millis(250);

/// A listening socket and the role of the connections it accepts.
pub struct Listener {
    /// The socket.
    pub socket: UnixListener,
    /// What its peers may ask.
    pub role: Role,
    /// The uids it serves.
    pub uids: Vec<u32>,
}

/// What the loop asks of its owner for each request and each tick.
pub trait Handler {
    /// Answers one request body from a peer of `role`; `true` asks the loop
    /// to call [`Handler::finish`] once the answer is written.
    fn request(&mut self, role: Role, body: &[u8]) -> (Response, bool);
    /// Called once per tick; `false` stops the loop.
    fn tick(&mut self) -> bool;
    /// Called after an answer that asked for it was written.
    fn finish(&mut self);
    /// A line for the log (never a secret).
    fn log(&self, line: &str);
}

struct Conn {
    stream: UnixStream,
    role: Role,
    uid: u32,
    opened: Instant,
    /// The length prefix and then the body of the request being read.
    inbuf: Zeroizing<Vec<u8>>,
    body_len: Option<usize>,
    /// The answer being written, and how much of it is out.
    out: Zeroizing<Vec<u8>>,
    sent: usize,
    /// Close once `out` is written (an error that ends the connection).
    close_after: bool,
    finish_after: bool,
}

impl Conn {
    /// Has sent no whole request yet (a candidate for eviction).
    fn idle(&self) -> bool {
        self.out.is_empty()
    }
}

/// Serves until the handler's `tick` says stop.
pub fn serve(listeners: &[Listener], handler: &mut dyn Handler) {
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_id = 0u64;
    let mut last_tick = Instant::now();
    loop {
        let mut ids = Vec::with_capacity(conns.len());
        let mut fds = Vec::with_capacity(listeners.len() + conns.len());
        for l in listeners {
            fds.push(PollFd::new(&l.socket, PollFlags::IN));
        }
        for (id, c) in &conns {
            let want = if c.out.is_empty() {
                PollFlags::IN
            } else {
                PollFlags::OUT
            };
            ids.push(*id);
            fds.push(PollFd::new(&c.stream, want));
        }
        let now = Instant::now();
        let next_deadline = conns
            .values()
            .map(|c| (c.opened + CONNECTION_DEADLINE).saturating_duration_since(now))
            .min()
            .unwrap_or(TICK)
            .min(TICK);
        let timeout = Timespec::try_from(next_deadline).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        });
        if let Err(e) = poll(&mut fds, Some(&timeout))
            && e != rustix::io::Errno::INTR
        {
            handler.log(&format!("poll failed: {e}"));
            std::thread::sleep(Duration::from_millis(50));
        }
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .enumerate()
            .map(|(i, f)| (i, f.revents()))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);

        for (i, revents) in ready {
            if i < listeners.len() {
                accept_all(&listeners[i], &mut conns, &mut next_id, handler);
                continue;
            }
            let id = ids[i - listeners.len()];
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            let keep = if revents.intersects(PollFlags::ERR | PollFlags::NVAL) {
                false
            } else if !c.out.is_empty() {
                write_some(c, handler)
            } else {
                read_some(c, handler)
            };
            if !keep {
                conns.remove(&id);
            }
        }

        let now = Instant::now();
        conns.retain(|_, c| now.duration_since(c.opened) < CONNECTION_DEADLINE);
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            if !handler.tick() {
                return;
            }
        }
    }
}

fn accept_all(
    l: &Listener,
    conns: &mut HashMap<u64, Conn>,
    next_id: &mut u64,
    handler: &mut dyn Handler,
) {
    loop {
        let stream = match l.socket.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: leave the rest in the backlog.
                handler.log(&format!("accept failed: {e}"));
                return;
            }
        };
        let (uid, pid) = match endpoint::peer(&stream) {
            Ok(p) => p,
            Err(e) => {
                handler.log(&format!(
                    "refused connection: cannot read peer credentials: {e}"
                ));
                continue;
            }
        };
        if !l.uids.contains(&uid) {
            handler.log(&format!(
                "refused connection from uid {uid} (pid {pid}) on the {:?} socket: not allowed",
                l.role
            ));
            answer_and_drop(
                stream,
                Response::error(
                    ErrorCode::Refused,
                    format!("uid {uid} is not allowed by this agent"),
                ),
            );
            continue;
        }
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        make_room(conns, uid, handler);
        *next_id += 1;
        conns.insert(
            *next_id,
            Conn {
                stream,
                role: l.role,
                uid,
                opened: Instant::now(),
                inbuf: Zeroizing::new(Vec::new()),
                body_len: None,
                out: Zeroizing::new(Vec::new()),
                sent: 0,
                close_after: false,
                finish_after: false,
            },
        );
    }
}

/// Evicts the oldest idle connection when the table (or this uid's share
/// of it) is full.
fn make_room(conns: &mut HashMap<u64, Conn>, uid: u32, handler: &dyn Handler) {
    let of_uid = conns.values().filter(|c| c.uid == uid).count();
    let pick = if of_uid >= MAX_PER_UID {
        oldest(conns, |c| c.uid == uid)
    } else if conns.len() >= MAX_CONNECTIONS {
        oldest(conns, |_| true)
    } else {
        None
    };
    if let Some(id) = pick {
        conns.remove(&id);
        if id % 64 == 0 {
            handler.log("connection table full: closing the oldest idle connections");
        }
    }
}

fn oldest(conns: &HashMap<u64, Conn>, filter: impl Fn(&Conn) -> bool) -> Option<u64> {
    conns
        .iter()
        .filter(|(_, c)| c.idle() && filter(c))
        .min_by_key(|(_, c)| c.opened)
        .map(|(id, _)| *id)
}

/// A refusal written at once, best effort (the socket buffer takes it).
fn answer_and_drop(mut stream: UnixStream, resp: Response) {
    let _ = stream.set_nonblocking(true);
    if let Ok(frame) = protocol::encode_frame(&ResponseFrame { v: VERSION, resp }) {
        let _ = stream.write_all(&frame);
    }
}

/// Reads what is there; answers a whole request. `false` closes.
fn read_some(c: &mut Conn, handler: &mut dyn Handler) -> bool {
    loop {
        let want = match c.body_len {
            None => 4 - c.inbuf.len(),
            Some(n) => 4 + n - c.inbuf.len(),
        };
        if want == 0 {
            break;
        }
        let mut chunk = Zeroizing::new([0u8; 4096]);
        let take = want.min(chunk.len());
        match c.stream.read(&mut chunk[..take]) {
            Ok(0) => return false,
            Ok(n) => {
                c.inbuf.extend_from_slice(&chunk[..n]);
                if c.body_len.is_none() && c.inbuf.len() == 4 {
                    let prefix = [c.inbuf[0], c.inbuf[1], c.inbuf[2], c.inbuf[3]];
                    match protocol::frame_len(prefix) {
                        Ok(n) => {
                            // Sized once, so the body never reallocates.
                            let mut buf = Zeroizing::new(Vec::with_capacity(4 + n));
                            buf.extend_from_slice(&prefix);
                            c.inbuf = buf;
                            c.body_len = Some(n);
                        }
                        Err(FrameError::TooLarge(n)) => {
                            // The rest cannot be re-synchronized: answer, close.
                            handler.log(&format!(
                                "refused a {n}-byte message (cap {})",
                                protocol::MAX_MESSAGE_LEN
                            ));
                            queue(
                                c,
                                Response::error(
                                    ErrorCode::TooLarge,
                                    format!(
                                        "message of {n} bytes exceeds the {}-byte cap",
                                        protocol::MAX_MESSAGE_LEN
                                    ),
                                ),
                            );
                            c.close_after = true;
                            return write_some(c, handler);
                        }
                        Err(FrameError::Io(_)) => return false,
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let body = std::mem::take(&mut c.inbuf);
    c.body_len = None;
    let (resp, finish) = handler.request(c.role, &body[4..]);
    queue(c, resp);
    c.finish_after = finish;
    write_some(c, handler)
}

fn queue(c: &mut Conn, resp: Response) {
    match protocol::encode_frame(&ResponseFrame { v: VERSION, resp }) {
        Ok(frame) => {
            c.out = frame;
            c.sent = 0;
        }
        Err(_) => c.close_after = true,
    }
}

/// Writes what the socket takes. `false` closes.
fn write_some(c: &mut Conn, handler: &mut dyn Handler) -> bool {
    while c.sent < c.out.len() {
        match c.stream.write(&c.out[c.sent..]) {
            Ok(0) => return false,
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    c.out = Zeroizing::new(Vec::new());
    c.sent = 0;
    if c.finish_after {
        c.finish_after = false;
        handler.finish();
    }
    !c.close_after
}
