//! Rootful podman with private, throw-away storage, running the offline
//! busybox [`OciImage`]. What works on this kind of machine (see INFRA.md):
//! `--root/--runroot/--tmpdir` in a temp dir, `--storage-driver vfs` (no
//! overlay mounts left behind), `--runtime runc`, `--events-backend none`,
//! `--network none`, and `--ulimit nofile=N:N` no higher than our own hard
//! limit (podman's default of 1048576 makes runc fail with "error setting
//! rlimit type 7: operation not permitted" where the hard limit is lower),
//! `--ulimit nproc=M:M` with M <= 32768 (podman lowers its own hard nproc
//! to 32768; more gives "rlimit type 6").
//! `CONTAINERS_STORAGE_CONF` must stay unset (each run hangs ~20 s with it).
//!
//! Host binaries (glibc-dynamic, like ours) run inside the busybox image by
//! bind-mounting the host's library directories read-only at the same
//! paths ([`Run::host_libs`]); no `/etc/ld.so.cache` is needed.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::image::OciImage;
use crate::process::{self, Outcome};
use crate::scratch::Scratch;
use crate::tools;

/// Default limit for one `podman run`.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Host library directories mounted by [`Run::host_libs`] (those that exist).
pub const HOST_LIB_DIRS: &[&str] = &["/lib", "/lib64", "/usr/lib", "/usr/lib64"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A podman "installation" private to one test: its own storage, state and
/// temp dirs, with the busybox image loaded. On drop, removes every
/// container, unmounts anything left under its directory and deletes it.
#[derive(Debug)]
pub struct Podman {
    image_id: String,
    ulimits: Vec<String>,
    dir: Scratch,
}

impl Podman {
    /// Checks (skip or fail) for podman, runc and root.
    #[track_caller]
    pub fn available() -> bool {
        tools::require_tools(&[
            ("podman", "runs the test containers (apt: podman)"),
            ("runc", "the OCI runtime podman uses here (apt: runc)"),
            (
                "conmon",
                "podman's container monitor (apt: conmon, a podman dependency)",
            ),
        ]) && tools::require_root("the tests run rootful podman with private storage")
    }

    /// Creates private storage and loads `image` into it
    /// (`podman pull oci:DIR:TAG`, well under a second).
    pub fn new(image: &OciImage) -> Podman {
        let dir = Scratch::new("podman");
        for d in ["root", "runroot", "tmp", "libpod-tmp", "networks"] {
            dir.mkdir(d, 0o700);
        }
        let mut p = Podman {
            image_id: String::new(),
            ulimits: ulimit_flags(),
            dir,
        };
        let mut pull = p.command();
        pull.args(["pull", "--quiet"]).arg(image.oci_ref());
        let out = process::run_ok(
            &mut pull,
            None,
            Duration::from_secs(120),
            "podman pull oci:",
        );
        let id = out
            .stdout_str()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "podman pull printed no image id\n{}",
            out.describe()
        );
        p.image_id = id;
        p
    }

    /// The loaded image's full id (use it, not a name, to avoid any lookup).
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// `podman` with this instance's global flags and `TMPDIR`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("libpod-tmp"))
            .arg("--network-config-dir")
            .arg(self.dir.join("networks"))
            .args([
                "--runtime",
                "runc",
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .env("TMPDIR", self.dir.join("tmp"))
            .env_remove("CONTAINERS_STORAGE_CONF");
        cmd
    }

    /// Starts describing `podman run --rm ... IMAGE args...`; finish with
    /// [`Run::exec`].
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run<'_> {
        Run {
            podman: self,
            flags: Vec::new(),
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            stdin: None,
            timeout: DEFAULT_RUN_TIMEOUT,
            host_libs: false,
        }
    }

    fn cleanup(&mut self) {
        let t = Duration::from_secs(30);
        let mut rm = self.command();
        rm.args(["rm", "--all", "--force", "--time", "0"]);
        let _ = process::run(&mut rm, None, t);
        wait_for_cleanups(&self.dir.join("runroot"));
        unmount_under(self.dir.path());
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One `podman run`, built up with flags and then executed.
#[derive(Debug)]
#[must_use = "a Run does nothing until exec()"]
pub struct Run<'a> {
    podman: &'a Podman,
    flags: Vec<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    host_libs: bool,
}

impl Run<'_> {
    /// `--user UID:GID`.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.flags.push(format!("--user={uid}:{gid}"));
        self
    }

    /// `-v HOST:CTR` (read-write).
    pub fn volume(mut self, host: impl AsRef<Path>, ctr: &str) -> Self {
        self.flags
            .push(format!("--volume={}:{ctr}", host.as_ref().display()));
        self
    }

    /// `-v HOST:CTR:ro`.
    pub fn volume_ro(mut self, host: impl AsRef<Path>, ctr: &str) -> Self {
        self.flags
            .push(format!("--volume={}:{ctr}:ro", host.as_ref().display()));
        self
    }

    /// `-e KEY=VALUE` (visible in argv and `podman inspect`: no secrets).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.flags.push(format!("--env={key}={value}"));
        self
    }

    /// `--workdir DIR`.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.flags.push(format!("--workdir={dir}"));
        self
    }

    /// Any other `podman run` flag, e.g. `--read-only` or `--tmpfs=/run`.
    pub fn flag(mut self, flag: &str) -> Self {
        self.flags.push(flag.to_owned());
        self
    }

    /// Feeds `data` to the container's stdin (adds `-i`); without it the
    /// container's stdin is empty.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Kills the container if it runs longer than `t` (default 60 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Bind-mounts the host's library directories read-only at the same
    /// paths, so host glibc-dynamic binaries run in the image.
    pub fn host_libs(mut self) -> Self {
        self.host_libs = true;
        self
    }

    /// Mounts the host executable `host` read-only at `ctr` (e.g.
    /// `/usr/local/bin/devc-vault`) and enables [`Run::host_libs`].
    pub fn host_binary(self, host: impl AsRef<Path>, ctr: &str) -> Self {
        self.volume_ro(host, ctr).host_libs()
    }

    /// Runs the container; returns its exit code and output. Exit code 255
    /// or 137 at or after the deadline is reported as `timed_out`.
    pub fn exec(self) -> Outcome {
        let p = self.podman;
        let name = format!(
            "devc-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let secs = self.timeout.as_secs().max(1);
        let mut cmd = p.command();
        cmd.args([
            "run",
            "--rm",
            "--pull=never",
            "--network=none",
            "--log-driver=none",
        ])
        .arg(format!("--name={name}"))
        .arg(format!("--timeout={secs}"))
        .args(&p.ulimits);
        if self.stdin.is_some() {
            cmd.arg("--interactive");
        }
        if self.host_libs {
            for (host, ctr) in host_lib_mounts() {
                cmd.arg(format!("--volume={}:{}:ro", host.display(), ctr.display()));
            }
        }
        cmd.args(&self.flags).arg(&p.image_id).args(&self.args);
        // conmon kills at `secs`; we give podman itself 15 s more before
        // killing the client and removing the container by name.
        let client_timeout = Duration::from_secs(secs) + Duration::from_secs(15);
        let mut out = process::run(&mut cmd, self.stdin.as_deref(), client_timeout)
            .expect("spawning podman run");
        if out.timed_out {
            let mut rm = p.command();
            rm.args(["rm", "--force", "--time", "0", &name]);
            let _ = process::run(&mut rm, None, Duration::from_secs(30));
        } else if matches!(out.code(), Some(137 | 255)) && out.elapsed >= Duration::from_secs(secs)
        {
            // conmon's --timeout kill makes `podman run` exit 255 (podman 4.3).
            out.timed_out = true;
        }
        out
    }
}

/// `(host dir, container path)` pairs for [`Run::host_libs`]: each
/// existing entry of [`HOST_LIB_DIRS`], with symlinks (merged `/usr`)
/// resolved on the host side.
pub fn host_lib_mounts() -> Vec<(PathBuf, PathBuf)> {
    HOST_LIB_DIRS
        .iter()
        .filter_map(|d| {
            let real = fs::canonicalize(d).ok()?;
            real.is_dir().then(|| (real, PathBuf::from(d)))
        })
        .collect()
}

/// `--ulimit` flags: nofile at most our own hard limit (podman asks for
/// 1048576), nproc at most 32768 (podman itself lowers its own hard
/// RLIMIT_NPROC to 32768 at start, so runc cannot set more).
fn ulimit_flags() -> Vec<String> {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let mut flags = Vec::new();
    for (label, name, cap) in [
        ("Max open files", "nofile", 1_048_576u64),
        ("Max processes", "nproc", 32_768),
    ] {
        let hard = limits
            .lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l[label.len()..].split_whitespace().nth(1))
            .map(|h| h.parse::<u64>().unwrap_or(u64::MAX)); // "unlimited"
        let h = hard.unwrap_or(cap).min(cap);
        flags.push(format!("--ulimit={name}={h}:{h}"));
    }
    flags
}

/// Waits (at most 20 s) until no process names `runroot` in its arguments.
/// conmon runs `podman container cleanup` with the store's global options
/// when a removed container's process exits; it would recreate the store's
/// directories after they are deleted.
pub fn wait_for_cleanups(runroot: &Path) {
    let busy = || processes_mentioning(runroot);
    if !process::wait_for(Duration::from_secs(20), || busy().is_empty()) {
        eprintln!(
            "warning: podman processes of {} still running: {:?}",
            runroot.display(),
            busy()
        );
    }
}

/// Pids of processes with `path` as one of their arguments.
fn processes_mentioning(path: &Path) -> Vec<u32> {
    // The argument itself: the path and its terminating NUL.
    let mut needle = path.as_os_str().as_encoded_bytes().to_vec();
    needle.push(0);
    let needle = needle.as_slice();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Lazily unmounts every mount point at or below `dir` (deepest first), as
/// listed in `/proc/self/mountinfo`. Best effort.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        let _ = process::run(
            Command::new("umount").args(["--lazy", &m]),
            None,
            Duration::from_secs(10),
        );
    }
}

/// Undoes mountinfo's octal escapes (`\040` for space and so on).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
