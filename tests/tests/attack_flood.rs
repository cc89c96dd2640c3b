//! Slow clients against the agent (issue 8, "Prove it"): 512 connections
//! from the container's user that send nothing, one byte every two
//! seconds, or a ping every second, while one real `get` goes through the
//! docker helper. The `get` must succeed promptly, and every connection
//! must be closed by the agent at its absolute deadline (10 s from accept)
//! whatever it does, or earlier when the agent evicts it to make room.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use devc_keydelivery::agent::conn::{CONNECTION_DEADLINE, MAX_PER_UID};
use devc_vault_tests::fixture::sample::{EXPECTED, SERVER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar};
use devc_vault_tests::tools;

const CLIENTS: usize = 512;
/// How late after the deadline a close may be seen (a loaded machine).
const SLACK: Duration = Duration::from_secs(4);
/// A real request must be answered within this, flood or not.
const PROMPT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Connects and sends nothing.
    Silent,
    /// Sends a ping frame one byte every two seconds (never a whole one).
    Trickle,
    /// Sends a whole ping every second and reads the answers.
    Chatty,
}

struct Slow {
    kind: Kind,
    stream: UnixStream,
    opened: Instant,
    closed: Option<Instant>,
    next_send: Instant,
    sent: usize,
}

fn ping_frame() -> Vec<u8> {
    let body = br#"{"v":2,"req":"ping"}"#;
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// The soft limit on open files, from /proc/self/limits.
fn nofile() -> (u64, u64) {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let mut nums = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

/// Room for our 512 sockets (and the agent's, which inherits the limit):
/// raise the soft limit to the hard one with prlimit(1) if needed.
fn ensure_fds(want: u64) -> bool {
    let (soft, hard) = nofile();
    if soft >= want {
        return true;
    }
    if hard < want {
        tools::skip_or_fail(
            &format!("the open-file limit is {hard}"),
            "512 slow clients and the agent need more descriptors",
        );
        return false;
    }
    let Some(prlimit) = tools::require_tool("prlimit", "raises this test's open-file limit") else {
        return false;
    };
    let ok = Command::new(prlimit)
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && nofile().0 >= want, "prlimit did not raise the limit");
    true
}

#[test]
fn slow_clients_neither_keep_a_real_get_out_nor_outlive_the_deadline() {
    if !ensure_fds(2048) {
        return;
    }
    let Some(env) = Fixture::build("atk-flood")
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
    else {
        return;
    };
    let sock = env.path().join("facing/agent.sock");
    let agent = env.start_agent(&sock, &["--key-file", &env.key_str(), "--quiet"]);

    let frame = ping_frame();
    let kinds = [Kind::Silent, Kind::Trickle, Kind::Chatty];
    let mut clients: Vec<Slow> = (0..CLIENTS)
        .map(|i| {
            let stream = UnixStream::connect(&sock).expect("connect");
            let opened = Instant::now();
            stream.set_nonblocking(true).expect("nonblocking");
            Slow {
                kind: kinds[i % kinds.len()],
                stream,
                opened,
                closed: None,
                next_send: opened,
                sent: 0,
            }
        })
        .collect();

    // The real get, once the flood is in place, from another thread. Its
    // own runtime directory, as in the container: no owner endpoint there,
    // so it asks the container-facing socket the flood is on.
    let helper = env.docker_helper_path().to_path_buf();
    let runtime = env.dir().mkdir("container-runtime", 0o700);
    let container_get = |env: &Fixture| {
        let mut get = env.command(&helper);
        get.arg("get")
            .env("DEVC_VAULT_KEY_ORDER", "agent")
            .env("DEVC_VAULT_AGENT_SOCK", &sock)
            .env("XDG_RUNTIME_DIR", &runtime);
        get
    };
    let mut get = container_get(&env);
    let real = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        devc_vault_tests::process::run(&mut get, Some(SERVER.as_bytes()), Duration::from_secs(30))
            .expect("run the helper")
    });

    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while clients.iter().any(|c| c.closed.is_none())
        && start.elapsed() < CONNECTION_DEADLINE + SLACK * 2
    {
        let now = Instant::now();
        for c in clients.iter_mut().filter(|c| c.closed.is_none()) {
            let closed = loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break true,
                }
            };
            if closed {
                c.closed = Some(now);
                continue;
            }
            if now < c.next_send {
                continue;
            }
            let wrote = match c.kind {
                Kind::Silent => Ok(0),
                Kind::Trickle => {
                    c.next_send = now + Duration::from_secs(2);
                    let b = frame[c.sent % (frame.len() - 1)];
                    c.sent += 1;
                    c.stream.write(&[b])
                }
                Kind::Chatty => {
                    c.next_send = now + Duration::from_secs(1);
                    c.stream.write(&frame)
                }
            };
            if c.kind == Kind::Silent {
                c.next_send = now + Duration::from_secs(3600);
            }
            match wrote {
                Err(e) if e.kind() != ErrorKind::WouldBlock => c.closed = Some(now),
                _ => {}
            }
        }
        thread::sleep(Duration::from_millis(20));
    }

    let out = real.join().expect("the get thread");
    out.assert_success("get during the flood");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);
    assert!(
        out.elapsed < PROMPT,
        "the get took {:?} during the flood",
        out.elapsed
    );

    // Every connection closed, none later than its deadline (plus slack).
    let lifetimes: Vec<(Kind, Option<Duration>)> = clients
        .iter()
        .map(|c| (c.kind, c.closed.map(|t| t.duration_since(c.opened))))
        .collect();
    let open: Vec<_> = lifetimes.iter().filter(|(_, l)| l.is_none()).collect();
    assert!(
        open.is_empty(),
        "{} connections outlived the deadline",
        open.len()
    );
    let late: Vec<_> = lifetimes
        .iter()
        .filter(|(_, l)| l.is_some_and(|l| l > CONNECTION_DEADLINE + SLACK))
        .collect();
    assert!(late.is_empty(), "closed late: {late:?}");
    // The early closes are evictions (this uid's share is MAX_PER_UID; the
    // get took one more place); every other connection lived to its
    // deadline, whatever it did.
    let early = lifetimes
        .iter()
        .filter(|(_, l)| l.is_some_and(|l| l < CONNECTION_DEADLINE - Duration::from_millis(100)))
        .count();
    eprintln!(
        "[flood] get answered in {:?}; {early} of {CLIENTS} connections evicted early",
        out.elapsed
    );
    assert!(
        early <= CLIENTS - MAX_PER_UID + 1,
        "{early} connections closed before the deadline"
    );
    for kind in kinds {
        assert!(
            lifetimes.iter().any(|(k, l)| *k == kind
                && l.is_some_and(|l| l >= CONNECTION_DEADLINE - Duration::from_millis(100))),
            "no {kind:?} connection lived to the deadline"
        );
    }
    drop(clients);
    // And the agent serves on.
    let mut agent = agent;
    assert!(agent.running(), "the agent died under the flood");
    let again = env.run(&mut container_get(&env), Some(SERVER.as_bytes()));
    again.assert_success("get after the flood");
}
