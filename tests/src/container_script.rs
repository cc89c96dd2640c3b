//! One long-running container doing what a persistent dev container does:
//! a shell script in the busybox image, on the host's network (so it
//! reaches a registry on the host's 127.0.0.1), with host binaries
//! bind-mounted (the static docker CLI, our helper with the host's
//! libraries). [`crate::podman::Run`] always uses `--network=none`, hence
//! this builder on [`Podman::command`].

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::podman::{Podman, host_lib_mounts};
use crate::process::{self, Outcome};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `podman run` of `/bin/sh -c SCRIPT` with the host's network.
#[derive(Debug)]
pub struct ContainerScript<'a> {
    podman: &'a Podman,
    flags: Vec<String>,
    script: String,
    timeout: Duration,
}

impl<'a> ContainerScript<'a> {
    /// A container that runs `script` and is killed after `timeout`.
    pub fn new(podman: &'a Podman, script: impl Into<String>, timeout: Duration) -> Self {
        ContainerScript {
            podman,
            flags: Vec::new(),
            script: script.into(),
            timeout,
        }
    }

    /// `-v HOST:CTR` (read-write).
    pub fn volume(mut self, host: impl AsRef<Path>, ctr: &str) -> Self {
        self.flags
            .push(format!("--volume={}:{ctr}", host.as_ref().display()));
        self
    }

    /// A host executable, read-only at `ctr`, with the host's libraries.
    pub fn host_binary(mut self, host: impl AsRef<Path>, ctr: &str) -> Self {
        self.flags
            .push(format!("--volume={}:{ctr}:ro", host.as_ref().display()));
        self
    }

    /// `-e KEY=VALUE` (no secrets: visible in argv and `podman inspect`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.flags.push(format!("--env={key}={value}"));
        self
    }

    /// `--user UID:GID`.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.flags.push(format!("--user={uid}:{gid}"));
        self
    }

    /// Runs it to the end (or the deadline); the container is removed.
    pub fn exec(self) -> Outcome {
        let name = format!(
            "devc-script-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let secs = self.timeout.as_secs().max(1);
        let mut cmd = self.podman.command();
        cmd.args([
            "run",
            "--rm",
            "--pull=never",
            "--network=host",
            "--log-driver=none",
        ])
        .arg(format!("--name={name}"))
        .arg(format!("--timeout={secs}"))
        .args(ulimit_flags());
        for (host, ctr) in host_lib_mounts() {
            cmd.arg(format!("--volume={}:{}:ro", host.display(), ctr.display()));
        }
        cmd.args(&self.flags)
            .arg(self.podman.image_id())
            .args(["/bin/sh", "-c", &self.script]);
        let out = process::run(&mut cmd, None, Duration::from_secs(secs + 15))
            .expect("spawning podman run");
        if out.timed_out {
            let mut rm = self.podman.command();
            rm.args(["rm", "--force", "--time", "0", &name]);
            let _ = process::run(&mut rm, None, Duration::from_secs(30));
        }
        out
    }
}

/// `--ulimit` flags runc accepts here: nofile at most our own hard limit,
/// nproc at most 32768 (see INFRA.md).
fn ulimit_flags() -> Vec<String> {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    [
        ("Max open files", "nofile", 1_048_576u64),
        ("Max processes", "nproc", 32_768),
    ]
    .iter()
    .map(|(label, name, cap)| {
        let hard = limits
            .lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l[label.len()..].split_whitespace().nth(1))
            .map(|h| h.parse::<u64>().unwrap_or(u64::MAX))
            .unwrap_or(*cap)
            .min(*cap);
        format!("--ulimit={name}={hard}:{hard}")
    })
    .collect()
}
