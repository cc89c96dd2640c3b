//! What the dev-container tests take from outside the test run, located and
//! checked (never fetched: the tests talk to 127.0.0.1 only): the rootfs
//! tarballs and the devcontainer CLI that `tests/e2e/prepare.sh` caches, and
//! the static release binaries and Feature that `scripts/dist.sh` builds.
//! A missing piece is reported with [`tools::skip_or_fail`] naming the
//! command that makes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::process;
use crate::tools;

/// The three binaries every container gets.
pub const BINARIES: [&str; 3] = [
    "devc-vault",
    "docker-credential-devc-encrypted",
    "git-credential-devc-encrypted",
];

/// The repository's root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/e2e/`: the podman wrapper, the image builders and `prepare.sh`.
pub fn e2e_dir() -> PathBuf {
    repo_root().join("tests").join("e2e")
}

/// The rootfs images the tests import into podman.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// Debian 12: glibc 2.36, docker CLI 20.10.24, git.
    Bookworm,
    /// Debian 11: glibc 2.31, docker CLI 20.10.5, git.
    Bullseye,
    /// Static busybox only: no libc, no docker CLI, no git.
    Busybox,
}

impl Image {
    /// The name `prepare.sh` knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Image::Bookworm => "bookworm",
            Image::Bullseye => "bullseye",
            Image::Busybox => "busybox",
        }
    }
}

fn prepare(args: &[&str]) -> Option<PathBuf> {
    let mut cmd = Command::new("bash");
    cmd.arg(e2e_dir().join("prepare.sh")).args(args);
    let out = process::run(&mut cmd, None, Duration::from_secs(30)).ok()?;
    out.success()
        .then(|| PathBuf::from(out.stdout_str().trim()))
        .filter(|p| p.exists())
}

/// The cached rootfs tarball of `image`, or `None` (skip, or fail under
/// CI) when `tests/e2e/prepare.sh` has not built it.
#[track_caller]
pub fn tarball(image: Image) -> Option<PathBuf> {
    let found = prepare(&["path", image.name()]);
    if found.is_none() {
        tools::skip_or_fail(
            &format!("the {} rootfs image is not built", image.name()),
            "run tests/e2e/prepare.sh (as root; it builds the images with mmdebstrap from this machine's apt sources)",
        );
    }
    found
}

/// The devcontainer CLI (`@devcontainers/cli` 0.89.0) that `prepare.sh`
/// installed, or `None` (skip, or fail under CI).
#[track_caller]
pub fn devcontainer_cli() -> Option<PathBuf> {
    let found = prepare(&["cli"]);
    if found.is_none() {
        tools::skip_or_fail(
            "the devcontainer CLI is not installed",
            "run tests/e2e/prepare.sh (npm install of @devcontainers/cli@0.89.0 into the test cache)",
        );
    }
    found
}

/// The output of `scripts/dist.sh`.
#[derive(Debug, Clone)]
pub struct Dist {
    dir: PathBuf,
    feature: PathBuf,
}

impl Dist {
    /// `dist/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `dist/<arch>/`: the three static binaries for `arch` (`x86_64`, `aarch64`).
    pub fn arch_dir(&self, arch: &str) -> PathBuf {
        self.dir.join(arch)
    }

    /// `dist/<arch>/<name>`.
    pub fn binary(&self, arch: &str, name: &str) -> PathBuf {
        self.arch_dir(arch).join(name)
    }

    /// `dist/SHA256SUMS`.
    pub fn sums(&self) -> PathBuf {
        self.dir.join("SHA256SUMS")
    }

    /// `features/devc-vault/`, with its `bin/` filled.
    pub fn feature_dir(&self) -> &Path {
        &self.feature
    }
}

fn newest_source(dirs: &[PathBuf]) -> Option<SystemTime> {
    let mut newest: Option<SystemTime> = None;
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if let Ok(t) = m.modified() {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

/// The static release binaries and the filled Feature, or `None` (skip, or
/// fail under CI) when `scripts/dist.sh` has not run since the sources of
/// the three binaries last changed.
#[track_caller]
pub fn dist() -> Option<Dist> {
    let root = repo_root();
    let d = Dist {
        dir: root.join("dist"),
        feature: root.join("features").join("devc-vault"),
    };
    let mut missing: Vec<PathBuf> = vec![d.sums(), d.feature.join("bin").join("SHA256SUMS")];
    for arch in ["x86_64", "aarch64"] {
        for b in BINARIES {
            missing.push(d.binary(arch, b));
        }
    }
    missing.retain(|p| !p.exists());
    if let Some(p) = missing.first() {
        tools::skip_or_fail(
            &format!("{} is missing", p.display()),
            "run scripts/dist.sh (static musl builds for x86_64 and aarch64)",
        );
        return None;
    }
    let built = fs::metadata(d.sums()).and_then(|m| m.modified()).ok();
    let sources: Vec<PathBuf> = ["vault", "fds", "keydelivery", "helper", "host", "cli"]
        .iter()
        .map(|c| root.join(c).join("src"))
        .collect();
    if let (Some(built), Some(newest)) = (built, newest_source(&sources))
        && newest > built
    {
        tools::skip_or_fail(
            "dist/ is older than the sources of the binaries",
            "run scripts/dist.sh again",
        );
        return None;
    }
    Some(d)
}
