//! Finding external tools and this workspace's built binaries, with one rule:
//! under `CI=true` a missing tool fails the test; elsewhere the test is
//! skipped with a line on stderr.
//!
//! ```ignore
//! let Some(skopeo) = require_tool("skopeo", "copies the test image") else { return };
//! ```

use std::env;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::bins;

/// True when running under CI (`CI` is `true` or `1`), where skipping is not
/// allowed.
pub fn in_ci() -> bool {
    matches!(
        env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("TRUE") | Ok("True")
    )
}

/// Reports that a prerequisite is missing: panics under CI, otherwise prints
/// `skipping: <what> (<why>)` to stderr (not captured by the harness).
/// Call it, then return from the test.
#[track_caller]
pub fn skip_or_fail(what: &str, why: &str) {
    if in_ci() {
        panic!("CI=true and {what} ({why}); install it in the CI script");
    }
    // Straight to the stderr handle: the test harness captures eprintln!,
    // and a skip should be visible without --nocapture.
    let _ = writeln!(std::io::stderr(), "skipping: {what} ({why})");
}

/// Searches `PATH` (then `/usr/sbin` and `/sbin`, which are often not on a
/// non-root `PATH`) for an executable file called `name`. A `name` that
/// contains a `/` is checked as is.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Finds tool `name` or reports it missing ([`skip_or_fail`]) with `why`
/// (what the test needs it for). `None` means: return from the test now.
#[track_caller]
pub fn require_tool(name: &str, why: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        skip_or_fail(&format!("{name} not found"), why);
    }
    found
}

/// [`require_tool`] for several tools at once; reports every missing one.
/// Returns `true` when all are present.
#[track_caller]
pub fn require_tools(tools: &[(&str, &str)]) -> bool {
    let mut ok = true;
    for (name, why) in tools {
        ok &= require_tool(name, why).is_some();
    }
    ok
}

/// True when the effective uid is 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    effective_uid() == Some(0)
}

/// The effective uid, read from `/proc/self/status` (no `unsafe` needed).
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Requires root (for rootful podman, chown, bind mounts); reports it
/// missing like [`require_tool`]. Returns `true` when running as root.
#[track_caller]
pub fn require_root(why: &str) -> bool {
    let root = is_root();
    if !root {
        skip_or_fail("not running as root", why);
    }
    root
}

/// The workspace binaries the end-to-end tests run; [`require_bin`] and
/// [`bin_path`] build them (all at once) before handing out a path.
pub const WORKSPACE_BINS: &[&str] = &[
    "devc-vault",
    "docker-credential-devc-encrypted",
    "git-credential-devc-encrypted",
    "devc-test-probe",
];

/// The cargo output directory of the running test, `target/<profile>` (or
/// `target/<triple>/<profile>`), derived from the test executable's path
/// `.../<profile>/deps/<test>-<hash>`. `DEVC_VAULT_BIN_DIR` overrides it.
pub fn target_profile_dir() -> PathBuf {
    if let Some(dir) = env::var_os("DEVC_VAULT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = env::current_exe().expect("current_exe() is available on Linux");
    let deps = exe
        .parent()
        .expect("test executable has a parent directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Where the workspace binary `name` (e.g. `devc-vault`) is: in
/// [`target_profile_dir`], built first if this run has not built the
/// workspace binaries yet (see [`require_bin`]).
#[track_caller]
pub fn bin_path(name: &str) -> PathBuf {
    ensure_built();
    target_profile_dir().join(name)
}

/// The workspace binary `name`. Plain `cargo test` never builds other
/// packages' binaries, so the first call in a run builds all of
/// [`WORKSPACE_BINS`] with the running test's profile and target dir (see
/// [`bins::ensure_built`]). A binary still missing afterwards (only possible
/// with `DEVC_VAULT_BIN_DIR`, which turns the build off) is reported like a
/// missing tool ([`skip_or_fail`]).
#[track_caller]
pub fn require_bin(name: &str) -> Option<PathBuf> {
    let p = bin_path(name);
    if is_executable(&p) {
        Some(p)
    } else {
        skip_or_fail(
            &format!("{name} not found at {}", p.display()),
            "DEVC_VAULT_BIN_DIR names a directory without the workspace binaries",
        );
        None
    }
}

/// [`bins::ensure_built`], panicking when the build fails: a workspace that
/// does not build is a failure, not a missing prerequisite.
#[track_caller]
fn ensure_built() {
    if let Err(e) = bins::ensure_built() {
        panic!("building the workspace binaries for the end-to-end tests failed\n{e}");
    }
}

/// A regular file with any execute bit set.
pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The current `PATH` with `dirs` put in front (in the given order).
pub fn path_with_prefix(dirs: &[PathBuf]) -> std::ffi::OsString {
    let current = env::var_os("PATH").unwrap_or_default();
    let all = dirs.iter().cloned().chain(env::split_paths(&current));
    env::join_paths(all).expect("PATH entries contain no ':'")
}
