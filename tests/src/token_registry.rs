//! A registry whose password changes on a clock, standing in for a cloud
//! registry with short-lived tokens: a real `docker-registry` with htpasswd
//! auth, whose `htpasswd` file a thread rewrites at every period boundary
//! so that only the current period's token works (the registry re-reads
//! the file when its modification time changes), and a host credential
//! helper script (`docker-credential-<name>`, standing in for
//! ecr-login or gcloud) that answers the current period's token.
//!
//! Period `k` covers unix seconds `[k*N, (k+1)*N)`. Its token is a JWT
//! whose `exp` is the period's end, so devc-vault knows when it expires.
//! A second user, `pusher`, has a fixed password for setting up images.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::process;
use crate::registry::{self, base64};
use crate::scratch::{self, Scratch};

/// The user whose password is the period's token.
pub const TOKEN_USER: &str = "cloud";
/// The user with a fixed password (for pushing test images).
pub const PUSH_USER: &str = "pusher";

/// Unix time now, in seconds with a fraction.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until unix time `t` (seconds, with a fraction).
pub fn sleep_until(t: f64) {
    let left = t - unix_now();
    if left > 0.0 {
        thread::sleep(Duration::from_secs_f64(left));
    }
}

/// A running rotating-token registry; killed, its writer stopped and its
/// files deleted on drop.
#[derive(Debug)]
pub struct TokenRegistry {
    child: Child,
    host: String,
    period: u64,
    seed: String,
    push_pass: String,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
    dir: Scratch,
}

/// The JWT of period `k` (period length `n` seconds) for `seed`: header
/// `{"alg":"none"}`, payload `{"exp":END,"w":k}`, signature `seed`.
pub fn token(seed: &str, n: u64, k: u64) -> String {
    let payload = format!("{{\"exp\":{},\"w\":{k}}}", (k + 1) * n);
    let url = |s: String| {
        s.replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned()
    };
    format!(
        "{}.{}.{seed}",
        url(base64(b"{\"alg\":\"none\"}")),
        url(base64(payload.as_bytes()))
    )
}

fn htpasswd_line(user: &str, pass: &str) -> String {
    let out = process::run_ok(
        Command::new("htpasswd").args(["-n", "-i", "-B", "-C", "4", user]),
        Some(pass.as_bytes()),
        Duration::from_secs(20),
        "htpasswd",
    );
    let line = out.stdout_str().trim().to_owned();
    assert!(
        line.starts_with(&format!("{user}:$2")),
        "htpasswd: {line:?}"
    );
    line
}

/// Writes the htpasswd file for period `k` atomically (temp file, rename).
fn write_htpasswd(path: &Path, push_line: &str, seed: &str, n: u64, k: u64) {
    let text = format!(
        "{push_line}\n{}\n",
        htpasswd_line(TOKEN_USER, &token(seed, n, k))
    );
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).expect("write htpasswd");
    fs::rename(&tmp, path).expect("rename htpasswd");
}

impl TokenRegistry {
    /// Starts the registry with tokens that change every `period_secs`
    /// seconds, and the thread that rewrites its htpasswd on that clock.
    pub fn start(period_secs: u64) -> TokenRegistry {
        assert!(period_secs >= 2, "a period of at least 2 s");
        let dir = Scratch::new("token-registry");
        let seed = format!("sig{}", std::process::id());
        let push_pass = format!("push-{}", std::process::id());
        let push_line = htpasswd_line(PUSH_USER, &push_pass);
        let htpasswd = dir.join("htpasswd");
        let k = unix_now() as u64 / period_secs;
        write_htpasswd(&htpasswd, &push_line, &seed, period_secs, k);

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.write(
            "config.yml",
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: \"{}\"\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: devc-vault-test-secret\nauth:\n  htpasswd:\n    realm: devc-test\n    path: \"{}\"\n",
                dir.join("data").display(),
                htpasswd.display()
            ),
            0o600,
        );
        let log = fs::File::create(dir.join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let host = format!("127.0.0.1:{port}");
        let stop = Arc::new(AtomicBool::new(false));
        let mut reg = TokenRegistry {
            child,
            host,
            period: period_secs,
            seed: seed.clone(),
            push_pass,
            stop: stop.clone(),
            writer: None,
            dir,
        };
        let ready = process::wait_for(Duration::from_secs(10), || {
            registry::http_get(&reg.host, "/v2/", None).is_ok_and(|r| r.status == 401)
        });
        assert!(ready, "docker-registry did not start:\n{}", reg.log());
        let path = htpasswd.clone();
        reg.writer = Some(thread::spawn(move || {
            let mut last = k;
            while !stop.load(Ordering::Relaxed) {
                let now = unix_now();
                let k = now as u64 / period_secs;
                if k != last {
                    write_htpasswd(&path, &push_line, &seed, period_secs, k);
                    last = k;
                }
                let next = ((k + 1) * period_secs) as f64;
                thread::sleep(Duration::from_secs_f64(
                    (next - unix_now()).clamp(0.001, 0.1),
                ));
            }
        }));
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The period length in seconds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The period unix time `t` falls in.
    pub fn window_at(&self, t: f64) -> u64 {
        t as u64 / self.period
    }

    /// The current period.
    pub fn window(&self) -> u64 {
        self.window_at(unix_now())
    }

    /// Unix time of the start of period `k`.
    pub fn start_of(&self, k: u64) -> f64 {
        (k * self.period) as f64
    }

    /// The token of period `k`.
    pub fn token(&self, k: u64) -> String {
        token(&self.seed, self.period, k)
    }

    /// `pusher:PASSWORD`, for pushing test images (skopeo's `--dest-creds`).
    pub fn push_creds(&self) -> String {
        format!("{PUSH_USER}:{}", self.push_pass)
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Writes `docker-credential-<name>`, a host credential helper that
    /// answers `get` with [`TOKEN_USER`] and the current period's token
    /// (computed from the clock, like a cloud helper asking its API) and
    /// `list` with this registry, logging each call. Returns its directory
    /// (for `PATH`).
    pub fn write_helper(&self, name: &str) -> PathBuf {
        let bin = self.dir.mkdir("helper-bin", 0o755);
        let script = format!(
            r#"#!/bin/sh
# A stand-in for a cloud credential helper: the token of the current
# {n}-second period, a JWT whose exp is the period's end.
case "$1" in
  get)
    server=$(cat)
    now=$(date +%s)
    k=$((now / {n}))
    payload=$(printf '{{"exp":%s,"w":%s}}' "$(( (k + 1) * {n} ))" "$k" | base64 -w0 | tr '+/' '-_' | tr -d '=')
    header=$(printf '{{"alg":"none"}}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
    printf 'get %s %s\n' "$k" "$server" >> '{log}'
    printf '{{"ServerURL":"%s","Username":"{user}","Secret":"%s.%s.{seed}"}}\n' "$server" "$header" "$payload"
    ;;
  list)
    printf '{{"{host}":"{user}"}}\n'
    ;;
  *)
    echo "unsupported: $1"
    exit 1
    ;;
esac
"#,
            n = self.period,
            log = self.helper_log().display(),
            user = TOKEN_USER,
            seed = self.seed,
            host = self.host,
        );
        let path = bin.join(format!("docker-credential-{name}"));
        fs::write(&path, script).expect("write helper");
        scratch::set_mode(&path, 0o755);
        bin
    }

    /// The helper's call log: `get <period> <server>` lines.
    pub fn helper_log(&self) -> PathBuf {
        self.dir.join("helper.log")
    }

    /// The periods the helper answered for, in order.
    pub fn helper_windows(&self) -> Vec<u64> {
        fs::read_to_string(self.helper_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_jwts_with_the_periods_end() {
        let t = token("s", 10, 7);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "eyJhbGciOiJub25lIn0");
        // {"exp":80,"w":7}
        assert_eq!(parts[1], "eyJleHAiOjgwLCJ3Ijo3fQ");
        assert_ne!(token("s", 10, 8), t);
    }
}
