//! Building this workspace's binaries once per test run. Plain `cargo test`
//! builds only the binaries of the package under test, and the end-to-end
//! tests run binaries of three other packages; so the first test process
//! that asks for one runs `$CARGO build --bin ...` with the test's own
//! profile and target dir. The others wait on a lock file in the target
//! dir, then find a stamp saying this run has built them already. A run is
//! the parent process (the `cargo test` or `cargo nextest` that started
//! every test process), named by its pid and start time.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process;
use crate::tools::{self, WORKSPACE_BINS};

/// A cold build of the three binary packages on two cores takes minutes;
/// this only stops a build that hangs.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Where the running test's artifacts are, as cargo options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTarget {
    /// `--target-dir`.
    pub target_dir: PathBuf,
    /// `--profile` (`dev` for `debug/`, else the directory's name).
    pub profile: String,
    /// `--target`, when the artifacts are in `<target-dir>/<triple>/<profile>`.
    pub triple: Option<String>,
}

impl BuildTarget {
    /// Reads the options off an output directory such as `target/debug` or
    /// `target/x86_64-unknown-linux-gnu/release`. `None` when `dir` is not
    /// inside a cargo target dir (which cargo marks with `CACHEDIR.TAG`).
    pub fn from_profile_dir(dir: &Path) -> Option<BuildTarget> {
        let name = dir.file_name()?.to_str()?;
        // The dev and test profiles both write to debug/.
        let profile = if name == "debug" { "dev" } else { name }.to_owned();
        let parent = dir.parent()?;
        if parent.join("CACHEDIR.TAG").is_file() {
            return Some(BuildTarget {
                target_dir: parent.to_path_buf(),
                profile,
                triple: None,
            });
        }
        let grandparent = parent.parent()?;
        if !grandparent.join("CACHEDIR.TAG").is_file() {
            return None;
        }
        Some(BuildTarget {
            target_dir: grandparent.to_path_buf(),
            profile,
            triple: Some(parent.file_name()?.to_str()?.to_owned()),
        })
    }

    /// The `cargo build` that makes every binary in [`WORKSPACE_BINS`].
    pub fn command(&self, cargo: impl AsRef<std::ffi::OsStr>, workspace: &Path) -> Command {
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&self.target_dir)
            .args(["--profile", &self.profile])
            // cargo reads .cargo/config.toml from the current directory up.
            .current_dir(workspace);
        if let Some(triple) = &self.triple {
            cmd.args(["--target", triple]);
        }
        for bin in WORKSPACE_BINS {
            cmd.args(["--bin", bin]);
        }
        cmd
    }
}

/// The workspace root (this crate is `tests/` in it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// This run's name: the parent process's pid and its start time (clock
/// ticks after boot, field 22 of `/proc/PID/stat`), so that a reused pid
/// is a new run.
pub fn run_key() -> Option<String> {
    let ppid = std::os::unix::process::parent_id();
    let stat = fs::read_to_string(format!("/proc/{ppid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: the first of them is field 3.
    let start = stat.rsplit_once(") ")?.1.split(' ').nth(22 - 3)?;
    Some(format!("{ppid} {start}"))
}

/// Builds [`WORKSPACE_BINS`] unless this run has already: at most once per
/// process, and once per run across processes. Nothing is built when
/// `DEVC_VAULT_BIN_DIR` names the binaries' directory, or when the test
/// does not run from a cargo target dir. `Err` carries cargo's output.
pub fn ensure_built() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(build_once).clone()
}

fn build_once() -> Result<(), String> {
    if env::var_os("DEVC_VAULT_BIN_DIR").is_some() {
        return Ok(());
    }
    let profile_dir = tools::target_profile_dir();
    let Some(target) = BuildTarget::from_profile_dir(&profile_dir) else {
        return Ok(());
    };
    let lock_path = target.target_dir.join("devc-vault-tests-build.lock");
    let lock = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    // Serialises the test processes of a run: one builds, the rest wait.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let stamp = profile_dir.join("devc-vault-tests-built");
    let key = run_key();
    let all_there = WORKSPACE_BINS
        .iter()
        .all(|b| tools::is_executable(&profile_dir.join(b)));
    if let Some(key) = &key {
        let previous = fs::read_to_string(&stamp).unwrap_or_default();
        if previous == format!("{key} ok\n") && all_there {
            return Ok(());
        }
        if previous == format!("{key} failed\n") {
            return Err(format!(
                "an earlier test of this run failed to build them (its message has cargo's output); stamp {}",
                stamp.display()
            ));
        }
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = target.command(&cargo, &workspace_root());
    let out = process::run(&mut cmd, None, BUILD_TIMEOUT)
        .map_err(|e| format!("{e} (is cargo on PATH, or CARGO set?)"))?;
    let verdict = if out.success() { "ok" } else { "failed" };
    if let Some(key) = &key {
        // Best effort: without the stamp the next process builds again,
        // which cargo finishes quickly when nothing changed.
        let _ = fs::write(&stamp, format!("{key} {verdict}\n"));
    }
    if !out.success() {
        return Err(out.describe());
    }
    // To the raw stderr handle, so it shows without --nocapture: the first
    // test of a cold run is slow for this reason.
    let _ = writeln!(
        std::io::stderr(),
        "devc-vault-tests: built {} ({} profile) in {:.1} s",
        WORKSPACE_BINS.join(", "),
        target.profile,
        out.elapsed.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_target_from_the_output_directory() {
        let t = crate::scratch::Scratch::new("bins");
        t.write(
            "target/CACHEDIR.TAG",
            "Signature: 8a477f597d28d172789f06886806bc55\n",
            0o644,
        );
        let got = |rel: &str| BuildTarget::from_profile_dir(&t.join(rel));
        assert_eq!(
            got("target/debug"),
            Some(BuildTarget {
                target_dir: t.join("target"),
                profile: "dev".into(),
                triple: None
            })
        );
        assert_eq!(
            got("target/release").map(|b| b.profile),
            Some("release".into())
        );
        assert_eq!(
            got("target/x86_64-unknown-linux-gnu/debug"),
            Some(BuildTarget {
                target_dir: t.join("target"),
                profile: "dev".into(),
                triple: Some("x86_64-unknown-linux-gnu".into())
            })
        );
        assert_eq!(got("elsewhere/debug"), None);
    }

    #[test]
    fn the_run_is_named_by_the_parent_process() {
        let key = run_key().expect("/proc is readable");
        let (pid, start) = key.split_once(' ').expect("two fields");
        assert_eq!(pid, std::os::unix::process::parent_id().to_string());
        assert!(start.parse::<u64>().is_ok(), "{key}");
        assert_eq!(run_key(), Some(key));
    }
}
