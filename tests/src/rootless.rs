//! A throwaway user for rootless podman: created with `useradd` (no home
//! of its own in /home: the test gives it one in its scratch directory),
//! with a subordinate uid/gid range in /etc/subuid and /etc/subgid (added by
//! this code when useradd did not), and removed with `userdel` on drop —
//! after the caller's podman store, agents and pause process are gone,
//! which [`crate::devcontainer::PodmanStore`]'s drop sees to.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::devcontainer::HostUser;
use crate::process;
use crate::tools;

/// Size of the subordinate id range.
pub const SUBID_COUNT: u32 = 65536;

/// A user that exists for one test.
#[derive(Debug)]
pub struct RootlessUser {
    name: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// The first subordinate uid (container uid 1 maps to it).
    pub subuid_base: u32,
    /// The first subordinate gid.
    pub subgid_base: u32,
    added_ranges: bool,
}

/// Checks (skip or fail) for useradd, usermod, userdel and newuidmap.
#[track_caller]
pub fn available() -> bool {
    tools::require_tools(&[
        (
            "useradd",
            "creates the throwaway rootless user (apt: passwd)",
        ),
        ("userdel", "removes it again (apt: passwd)"),
        ("usermod", "gives it subordinate ids (apt: passwd)"),
        (
            "newuidmap",
            "rootless podman's user namespace (apt: uidmap)",
        ),
        (
            "newgidmap",
            "rootless podman's user namespace (apt: uidmap)",
        ),
    ])
}

fn run(cmd: &mut Command, what: &str) -> process::Outcome {
    process::run_ok(cmd, None, Duration::from_secs(60), what)
}

/// `name:base:count` lines of /etc/subuid or /etc/subgid for `name`.
fn range_of(file: &str, name: &str) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.next()?.parse().ok())?
    })
}

/// The first id after every range in `file` (at least 200000).
fn free_base(file: &str) -> u32 {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(f.get(1)?.parse::<u32>().ok()? + f.get(2)?.parse::<u32>().ok()?)
        })
        .fold(200_000, u32::max)
}

impl RootlessUser {
    /// Creates `devce2e<pid>` (no home directory: [`RootlessUser::host_user`]
    /// gives it one in the test's scratch directory) and makes sure it has
    /// subordinate ranges.
    pub fn create() -> RootlessUser {
        let name = format!("devce2e{}", std::process::id() % 1_000_000);
        run(
            Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-d", "/nonexistent"])
                .arg(&name),
            "useradd",
        );
        let id = |flag: &str| -> u32 {
            run(Command::new("id").arg(flag).arg(&name), "id")
                .stdout_str()
                .trim()
                .parse()
                .expect("a numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let mut user = RootlessUser {
            name,
            uid,
            gid,
            subuid_base: 0,
            subgid_base: 0,
            added_ranges: false,
        };
        if range_of("/etc/subuid", &user.name).is_none()
            || range_of("/etc/subgid", &user.name).is_none()
        {
            let u = free_base("/etc/subuid");
            let g = free_base("/etc/subgid");
            run(
                Command::new("usermod")
                    .arg("--add-subuids")
                    .arg(format!("{u}-{}", u + SUBID_COUNT - 1))
                    .arg("--add-subgids")
                    .arg(format!("{g}-{}", g + SUBID_COUNT - 1))
                    .arg(&user.name),
                "usermod --add-subuids",
            );
            user.added_ranges = true;
        }
        user.subuid_base = range_of("/etc/subuid", &user.name).expect("a subuid range");
        user.subgid_base = range_of("/etc/subgid", &user.name).expect("a subgid range");
        user
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host user (uid, home, runtime dir, binaries) for it, in `base`.
    pub fn host_user(&self, base: &Path) -> Option<HostUser> {
        let mut u = HostUser::new(base, self.uid, self.gid)?;
        u.env("USER", &self.name);
        u.env("LOGNAME", &self.name);
        Some(u)
    }
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        let out = process::run(
            Command::new("userdel").arg(&self.name),
            None,
            Duration::from_secs(60),
        );
        if !out.as_ref().is_ok_and(|o| o.success()) {
            eprintln!(
                "warning: userdel {} failed: {}",
                self.name,
                out.map(|o| o.describe()).unwrap_or_else(|e| e.to_string())
            );
        }
        // userdel removes the ranges on Debian 12; make sure of it.
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = fs::read_to_string(file) {
                let prefix = format!("{}:", self.name);
                if text.lines().any(|l| l.starts_with(&prefix)) {
                    let kept: String = text
                        .lines()
                        .filter(|l| !l.starts_with(&prefix))
                        .map(|l| format!("{l}\n"))
                        .collect();
                    let _ = fs::write(file, kept);
                }
            }
        }
    }
}
