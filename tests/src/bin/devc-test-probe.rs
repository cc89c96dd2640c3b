//! A tiny glibc-dynamic Rust binary, built like the project's own, that the
//! infrastructure tests run inside containers:
//! `devc-test-probe ids` prints `uid=U gid=G` (from /proc/self/status);
//! `devc-test-probe connect SOCKET MESSAGE` sends MESSAGE and a newline to a
//! unix socket, closes its write side and prints the reply;
//! `devc-test-probe listen SOCKET LOG` plays a fake agent: it serves SOCKET
//! forever, appending every byte any client sends to LOG and answering
//! nothing (the attacker's recorder in the trust-boundary tests).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ids"] => ids(),
        ["connect", sock, msg] => connect(sock, msg),
        ["listen", sock, log] => listen(sock, log),
        _ => Err(
            "usage: devc-test-probe ids | connect SOCKET MESSAGE | listen SOCKET LOG".to_owned(),
        ),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("devc-test-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ids() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("?")
            .to_owned()
    };
    Ok(format!("uid={} gid={}", field("Uid:"), field("Gid:")))
}

fn connect(sock: &str, msg: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(sock).map_err(|e| format!("connect {sock}: {e}"))?;
    s.write_all(format!("{msg}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    Ok(reply.trim_end().to_owned())
}

fn listen(sock: &str, log: &str) -> Result<String, String> {
    let listener =
        std::os::unix::net::UnixListener::bind(sock).map_err(|e| format!("bind {sock}: {e}"))?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let log = log.to_owned();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .and_then(|mut f| f.write_all(&buf[..n]));
                if appended.is_err() {
                    break;
                }
            }
        });
    }
    Ok(String::new())
}
