//! A real OCI registry (Debian's `docker-registry`, distribution 2.8) on
//! 127.0.0.1 with htpasswd (bcrypt) basic auth and storage in a temp dir.
//! Plain HTTP: clients need `--tls-verify=false` / `--insecure` (the docker
//! CLI treats 127.0.0.0/8 as insecure on its own).

use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process;
use crate::scratch::Scratch;
use crate::tools;

/// How long [`Registry::start`] waits for the registry to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running registry; killed and reaped on drop, its storage deleted.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    host: String,
    user: String,
    pass: String,
    // Removed after Drop::drop has killed the process.
    dir: Scratch,
}

impl Registry {
    /// Checks (skip or fail, see [`tools::require_tool`]) that the tools
    /// needed by [`Registry::start`] are installed.
    #[track_caller]
    pub fn available() -> bool {
        tools::require_tools(&[
            (
                "docker-registry",
                "the OCI registry the tests push to and pull from (apt: docker-registry)",
            ),
            (
                "htpasswd",
                "writes the registry's bcrypt password file (apt: apache2-utils)",
            ),
        ])
    }

    /// Starts a registry that accepts exactly `user`/`pass` (`pass` may hold
    /// line breaks, tabs and any Unicode; at most 255 bytes), on a free port,
    /// and waits (at most [`START_TIMEOUT`]) until it answers `GET /v2/`
    /// with 401. Panics with the registry's log on failure.
    pub fn start(user: &str, pass: &str) -> Registry {
        let dir = Scratch::new("registry");
        let htpasswd = dir.join("htpasswd");
        // Password on stdin (-i), not in argv; but `-i` reads one line, so
        // a password with a line break (a JSON key) goes in argv (`-b`):
        // it is a test password, and htpasswd takes up to 255 bytes that
        // way. bcrypt compares the first 72 bytes only.
        let mut tool = Command::new("htpasswd");
        let stdin = if pass.contains(['\n', '\r']) {
            tool.args(["-n", "-b", "-B", user, pass]);
            None
        } else {
            tool.args(["-n", "-i", "-B", user]);
            Some(pass.as_bytes())
        };
        let out = process::run_ok(&mut tool, stdin, Duration::from_secs(20), "htpasswd");
        let line = out.stdout_str();
        let line = line.trim();
        assert!(
            line.starts_with(&format!("{user}:$2")),
            "unexpected htpasswd output: {line:?}"
        );
        fs::write(&htpasswd, format!("{line}\n")).expect("write htpasswd");

        let mut last_err = String::new();
        // The free port is found by binding :0 and releasing it; another
        // process may grab it first, so retry a few times.
        for _attempt in 0..3 {
            let port = free_port().expect("finding a free port on 127.0.0.1");
            let config = dir.write(
                "config.yml",
                config_yaml(
                    port,
                    &dir.join("data").to_string_lossy(),
                    &htpasswd.to_string_lossy(),
                ),
                0o600,
            );
            let log_path = dir.join("registry.log");
            let log = fs::File::create(&log_path).expect("create registry log");
            let log2 = log.try_clone().expect("clone registry log handle");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .expect("spawning docker-registry");
            let host = format!("127.0.0.1:{port}");
            match wait_ready(&mut child, &host, START_TIMEOUT) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        host,
                        user: user.to_owned(),
                        pass: pass.to_owned(),
                        dir,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!("{e}\n--- registry log ---\n{log}");
                }
            }
        }
        panic!("docker-registry did not start: {last_err}");
    }

    /// `127.0.0.1:PORT`, the registry host as clients name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The one user name the registry accepts.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// That user's password.
    pub fn pass(&self) -> &str {
        &self.pass
    }

    /// `user:pass`, the form of skopeo's `--creds` / `--dest-creds`.
    pub fn creds(&self) -> String {
        format!("{}:{}", self.user, self.pass)
    }

    /// `HOST/name:tag`.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{name}:{tag}", self.host)
    }

    /// The registry's combined stdout/stderr so far (access log included).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// `GET path` with optional basic auth, over a fresh connection.
    pub fn get(&self, path: &str, basic: Option<(&str, &str)>) -> io::Result<HttpResponse> {
        http_get(&self.host, path, basic)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_ready(child: &mut Child, host: &str, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "docker-registry exited early: {status}"
            )));
        }
        if let Ok(resp) = http_get(host, "/v2/", None) {
            if resp.status == 401 {
                return Ok(());
            }
            return Err(io::Error::other(format!(
                "GET /v2/ without credentials gave {} (auth not enforced?)",
                resp.status
            )));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "registry did not answer in time",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn config_yaml(port: u16, root: &str, htpasswd: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n\
         storage:\n  filesystem:\n    rootdirectory: \"{root}\"\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: devc-vault-test-secret\n\
         auth:\n  htpasswd:\n    realm: devc-test\n    path: \"{htpasswd}\"\n"
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A parsed HTTP/1.1 response (status line, raw header block, body).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code, e.g. 401.
    pub status: u16,
    /// The status line and headers, as received.
    pub head: String,
    /// The body bytes (read until the server closed the connection).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A minimal `GET` over std's `TcpStream` (`Connection: close`, 5 s I/O
/// timeouts), so the tests need no HTTP client.
pub fn http_get(host: &str, path: &str, basic: Option<(&str, &str)>) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: devc-vault-tests\r\n"
    );
    if let Some((u, p)) = basic {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(format!("{u}:{p}").as_bytes())
        ));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of HTTP headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line: {head:?}"),
            )
        })?;
    Ok(HttpResponse {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}

/// Standard base64 with padding (for basic auth headers and docker's
/// `auths.*.auth` field).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pw"), "dXNlcjpwdw==");
    }
}
