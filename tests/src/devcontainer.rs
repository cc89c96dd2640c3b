//! Dev containers the way a user starts them: the devcontainer CLI
//! (`@devcontainers/cli` 0.89.0) driving podman through the docker-compatible
//! wrapper `tests/e2e/podman-devc`, with a podman store of the test's own
//! (rootful, or rootless as a throwaway user), and a host user whose
//! commands (`devc-vault devcontainer`, `seal`, `rotate`, git) run with
//! their own uid, home and runtime directory.
//!
//! Everything is removed on drop: the containers (`podman rm -f -t 0`, which
//! also ends the attached `podman run` and conmon), the rootless pause
//! process, mounts left under the store, and the store itself.
//!
//! ```ignore
//! let user = HostUser::new(&scratch, 1000, 1000);
//! let store = PodmanStore::new(&scratch, None);
//! let image = store.import(Image::Bookworm)?;
//! user.cli_ok(&["devcontainer", "--workspace", ws, "--key", "file", ...], None);
//! let id = store.up(&cli, &user, &ws);
//! store.exec(&cli, &user, &ws, &["docker", "manifest", "inspect", ...], None);
//! ```

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::debian_image::{self, Image};
use crate::podman::{unmount_under, wait_for_cleanups};
use crate::process::{self, Outcome};
use crate::scratch::{self, Scratch};
use crate::tools;

/// Limit for one `devcontainer up` (image builds for the Feature included).
pub const UP_TIMEOUT: Duration = Duration::from_secs(300);
/// Limit for one `devcontainer exec` or podman call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Checks (skip or fail) for what every dev-container test needs: root,
/// podman with runc, `setpriv`, the devcontainer CLI and node.
#[track_caller]
pub fn available() -> bool {
    tools::require_tools(&[
        ("podman", "runs the dev containers (apt: podman)"),
        ("runc", "the OCI runtime podman uses here (apt: runc)"),
        (
            "setpriv",
            "runs the host user's commands with its uid (apt: util-linux)",
        ),
        ("node", "runs the devcontainer CLI (apt: nodejs)"),
        ("grep", "scans container exports for secrets"),
    ]) && tools::require_root(
        "the dev-container tests run podman with stores of their own and act as other users",
    )
}

/// A user on the host: a uid, a home and a runtime directory of its own,
/// and copies of this build's binaries (readable by it wherever the
/// checkout is). Its commands get a clean environment.
#[derive(Debug)]
pub struct HostUser {
    /// Its uid (0 runs as root itself).
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// `HOME` (0700, owned by it).
    pub home: PathBuf,
    /// `XDG_RUNTIME_DIR` (0700, owned by it).
    pub runtime: PathBuf,
    /// Where `devc-vault` and the helpers (this build's, glibc) are.
    pub bin: PathBuf,
    extra_env: Vec<(String, String)>,
}

impl HostUser {
    /// Makes `<base>/home-<uid>`, `<base>/run-<uid>` and `<base>/bin-<uid>`
    /// for `uid:gid`. `base` must be searchable by it (see
    /// [`HostUser::open_for_others`]). `None` (skip or fail) when the
    /// workspace binaries are not built.
    #[track_caller]
    pub fn new(base: &Path, uid: u32, gid: u32) -> Option<HostUser> {
        let mut built = Vec::new();
        for name in debian_image::BINARIES {
            built.push((name, tools::require_bin(name)?));
        }
        let mk = |name: String, mode: u32| {
            let p = base.join(name);
            fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
            scratch::set_mode(&p, mode);
            scratch::set_owner(&p, uid, gid);
            p
        };
        let home = mk(format!("home-{uid}"), 0o700);
        let runtime = mk(format!("run-{uid}"), 0o700);
        let bin = mk(format!("bin-{uid}"), 0o755);
        for (name, path) in built {
            let dest = bin.join(name);
            fs::copy(&path, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
            scratch::set_mode(&dest, 0o755);
        }
        Some(HostUser {
            uid,
            gid,
            home,
            runtime,
            bin,
            extra_env: Vec::new(),
        })
    }

    /// Lets other users search (not list) `dir`, e.g. a [`Scratch`] root,
    /// so that a user's directories inside it can be reached.
    pub fn open_for_others(dir: &Path) {
        scratch::set_mode(dir, 0o711);
    }

    /// Adds a variable to every command's environment.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.extra_env.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// `program` run as this user, with `HOME`, `XDG_RUNTIME_DIR`, `PATH`
    /// (its binaries first), `LANG=C.UTF-8` and nothing else from the test.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = if self.uid == 0 {
            Command::new(program)
        } else {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        };
        c.env_clear()
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("PATH", self.path())
            .env("LANG", "C.UTF-8")
            .current_dir(&self.home);
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    /// `PATH` for this user: its binaries, then the system's.
    pub fn path(&self) -> String {
        format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.bin.display()
        )
    }

    /// Runs `program args` as this user (stdin, if any, fed to it).
    pub fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut c = self.command(program);
        c.args(args);
        process::run(&mut c, stdin, CALL_TIMEOUT).unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// Runs `program args` as this user; panics unless it succeeds.
    #[track_caller]
    pub fn run_ok(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let out = self.run(program, args, stdin);
        out.assert_success(&format!("{program} {}", args.join(" ")));
        out
    }

    /// `devc-vault ARGS` (this build) as this user.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        self.run(&self.bin.join("devc-vault").to_string_lossy(), args, stdin)
    }

    /// [`HostUser::cli`], panicking unless it succeeds.
    #[track_caller]
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let out = self.cli(args, stdin);
        out.assert_success(&format!("devc-vault {}", args.join(" ")));
        out
    }

    /// Writes `rel` under its home, owned by it, with `mode`.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.home.join(rel);
        let mut dir = p.parent().map(Path::to_path_buf);
        let mut made = Vec::new();
        while let Some(d) = dir {
            if d.exists() {
                break;
            }
            made.push(d.clone());
            dir = d.parent().map(Path::to_path_buf);
        }
        for d in made.iter().rev() {
            fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            scratch::set_mode(d, 0o700);
            scratch::set_owner(d, self.uid, self.gid);
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        scratch::set_mode(&p, mode);
        scratch::set_owner(&p, self.uid, self.gid);
        p
    }

    /// Copies a directory tree to `dest` (owned by this user, modes kept).
    pub fn copy_tree(&self, src: &Path, dest: &Path) {
        let out = process::run_ok(
            Command::new("cp").arg("-R").arg(src).arg(dest),
            None,
            CALL_TIMEOUT,
            "cp -R",
        );
        drop(out);
        scratch::set_owner_recursive(dest, self.uid, self.gid)
            .unwrap_or_else(|e| panic!("chown {}: {e}", dest.display()));
    }
}

/// A podman store of the test's own, used through the wrapper, by root
/// (rootful) or by a [`HostUser`] (rootless). Removed on drop.
#[derive(Debug)]
pub struct PodmanStore {
    root: PathBuf,
    runroot: PathBuf,
    tmp: PathBuf,
    wrapper: PathBuf,
    owner_uid: u32,
    owner_gid: u32,
    owner_home: Option<PathBuf>,
    owner_runtime: Option<PathBuf>,
    /// Extra environment for the wrapper (e.g. `DEVC_PODMAN_NO_KEEP_ID`).
    env: Vec<(String, String)>,
}

impl PodmanStore {
    /// A store under `dir` (created; owned by `owner`, or root). Rootless
    /// when `owner` is a non-root user: podman then runs with its uid,
    /// home and runtime directory.
    pub fn new(dir: &Path, owner: Option<&HostUser>) -> PodmanStore {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // podman 4.3 refuses a --runroot longer than 50 characters.
        let runroot = PathBuf::from(format!("/tmp/devc-e2e-run-{}-{n}", std::process::id()));
        assert!(runroot.as_os_str().len() <= 50);
        let (uid, gid) = owner.map_or((0, 0), |u| (u.uid, u.gid));
        let store = PodmanStore {
            root: dir.join("store"),
            runroot,
            tmp: dir.join("tmp"),
            wrapper: dir.join("podman-devc"),
            owner_uid: uid,
            owner_gid: gid,
            owner_home: owner.map(|u| u.home.clone()),
            owner_runtime: owner.map(|u| u.runtime.clone()),
            env: Vec::new(),
        };
        for d in [dir, &store.root, &store.runroot, &store.tmp] {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            scratch::set_mode(d, 0o700);
            scratch::set_owner(d, uid, gid);
        }
        fs::copy(debian_image::e2e_dir().join("podman-devc"), &store.wrapper)
            .expect("copy the podman wrapper");
        scratch::set_mode(&store.wrapper, 0o755);
        store
    }

    /// The wrapper's path (what `--docker-path` gets).
    pub fn wrapper(&self) -> &Path {
        &self.wrapper
    }

    /// Sets a variable for every later wrapper call.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Removes a variable set with [`PodmanStore::set_env`].
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    fn as_owner(&self, program: impl AsRef<OsStr>, home: Option<&Path>) -> Command {
        let mut c = if self.owner_uid == 0 {
            Command::new(program)
        } else {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", self.owner_uid))
                .arg(format!("--regid={}", self.owner_gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        };
        let home = home
            .map(Path::to_path_buf)
            .or_else(|| self.owner_home.clone())
            .unwrap_or_else(|| self.tmp.clone());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("TMPDIR", &self.tmp)
            .env("LANG", "C.UTF-8")
            .env("DEVC_PODMAN_ROOT", &self.root)
            .env("DEVC_PODMAN_RUNROOT", &self.runroot)
            .current_dir(&self.tmp);
        if let Some(r) = &self.owner_runtime {
            c.env("XDG_RUNTIME_DIR", r);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `podman-devc ARGS` as the store's owner.
    pub fn podman(&self, args: &[&str], timeout: Duration) -> Outcome {
        let mut c = self.as_owner(&self.wrapper, None);
        c.args(args);
        process::run(&mut c, None, timeout).expect("spawn the podman wrapper")
    }

    /// [`PodmanStore::podman`], panicking unless it succeeds.
    #[track_caller]
    pub fn podman_ok(&self, args: &[&str], timeout: Duration) -> Outcome {
        let out = self.podman(args, timeout);
        out.assert_success(&format!("podman {}", args.join(" ")));
        out
    }

    /// Imports a cached rootfs tarball; returns `localhost/devc-e2e-NAME:latest`.
    /// `None` (skip or fail) when `prepare.sh` has not built it.
    #[track_caller]
    pub fn import(&self, image: Image) -> Option<String> {
        let cached = debian_image::tarball(image)?;
        let reference = format!("localhost/devc-e2e-{}:latest", image.name());
        let start = Instant::now();
        // A rootless owner may not reach the cache (a checkout in a 0700
        // directory): give it a link, or a copy, in its own temp directory.
        let tar = if self.owner_uid == 0 {
            cached
        } else {
            let own = self.tmp.join(format!("{}.tar", image.name()));
            let _ = fs::remove_file(&own);
            if fs::hard_link(&cached, &own).is_err() {
                fs::copy(&cached, &own).expect("copy the image tarball");
            }
            own
        };
        self.podman_ok(
            &[
                "import",
                "-q",
                "--change",
                r#"CMD ["/bin/sh"]"#,
                &tar.to_string_lossy(),
                &reference,
            ],
            Duration::from_secs(300),
        );
        if self.owner_uid != 0 {
            let _ = fs::remove_file(&tar);
        }
        eprintln!(
            "[timing] podman import {}: {:?}",
            image.name(),
            start.elapsed()
        );
        Some(reference)
    }

    /// The environment a devcontainer CLI call gets (see
    /// [`PodmanStore::devcontainer`]), applied to `program`: for tools that
    /// spawn the CLI themselves, such as `expect`.
    pub fn cli_environment(&self, program: impl AsRef<OsStr>, user: &HostUser) -> Command {
        self.as_owner(program, Some(&user.home))
    }

    /// `devcontainer SUB --workspace-folder WS --docker-path WRAPPER REST...`
    /// as the store's owner, with `HOME` set to `user`'s home (what
    /// `${localEnv:HOME}` in devcontainer.json means); [`UP_TIMEOUT`] for
    /// `up`, else [`CALL_TIMEOUT`].
    pub fn devcontainer(
        &self,
        cli: &Path,
        user: &HostUser,
        sub: &str,
        ws: &Path,
        rest: &[&str],
        stdin: Option<&[u8]>,
    ) -> Outcome {
        let timeout = if sub == "up" {
            UP_TIMEOUT
        } else {
            CALL_TIMEOUT
        };
        let mut c = self.as_owner(cli, Some(&user.home));
        c.arg(sub)
            .arg("--workspace-folder")
            .arg(ws)
            .arg("--docker-path")
            .arg(&self.wrapper)
            .args(rest);
        let start = Instant::now();
        let out = process::run(&mut c, stdin, timeout).expect("spawn the devcontainer CLI");
        eprintln!("[timing] devcontainer {sub}: {:?}", start.elapsed());
        out
    }

    /// `devcontainer up`; returns the container id. Panics with the CLI's
    /// output on failure.
    #[track_caller]
    pub fn up(&self, cli: &Path, user: &HostUser, ws: &Path) -> String {
        self.up_with_log(cli, user, ws).0
    }

    /// [`PodmanStore::up`], also returning the CLI's output (its log).
    #[track_caller]
    pub fn up_with_log(&self, cli: &Path, user: &HostUser, ws: &Path) -> (String, Outcome) {
        let out = self.devcontainer(cli, user, "up", ws, &[], None);
        let outcome: Option<serde_json::Value> = out
            .stdout_str()
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok());
        match outcome {
            Some(v) if v["outcome"] == "success" && out.success() => (
                v["containerId"]
                    .as_str()
                    .expect("containerId in the up outcome")
                    .to_owned(),
                out,
            ),
            _ => panic!("devcontainer up failed\n{}", out.describe()),
        }
    }

    /// `devcontainer exec ... -- CMD` (as the container's remote user).
    pub fn exec(
        &self,
        cli: &Path,
        user: &HostUser,
        ws: &Path,
        cmd: &[&str],
        stdin: Option<&[u8]>,
    ) -> Outcome {
        self.devcontainer(cli, user, "exec", ws, cmd, stdin)
    }

    /// The ids of every container in the store.
    pub fn containers(&self) -> Vec<String> {
        self.podman(&["ps", "-a", "-q", "--no-trunc"], CALL_TIMEOUT)
            .stdout_str()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// `podman export` of container `id` into `dest` (a tar file).
    #[track_caller]
    pub fn export(&self, id: &str, dest: &Path) {
        let start = Instant::now();
        self.podman_ok(
            &["export", "-o", &dest.to_string_lossy(), id],
            Duration::from_secs(300),
        );
        eprintln!("[timing] podman export: {:?}", start.elapsed());
    }

    /// A path in the store's temp directory (writable by its owner).
    pub fn tmp_path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// `podman inspect` of container `id`, as text.
    pub fn inspect(&self, id: &str) -> String {
        self.podman_ok(&["inspect", "--type", "container", id], CALL_TIMEOUT)
            .stdout_str()
    }

    /// A command run as the store's owner (e.g. an agent next to a rootless store).
    pub fn owner_command(&self, program: impl AsRef<OsStr>) -> Command {
        self.as_owner(program, None)
    }

    fn cleanup(&mut self) {
        self.env.clear();
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-t", "0"];
            args.extend(ids.iter().map(String::as_str));
            let out = self.podman(&args, CALL_TIMEOUT);
            if !out.success() {
                eprintln!("warning: removing containers failed\n{}", out.describe());
            }
        }
        if let Some(r) = &self.owner_runtime {
            // Rootless podman leaves a pause process owning its user namespace.
            let pid_file = r.join("libpod").join("tmp").join("pause.pid");
            if let Ok(pid) = fs::read_to_string(&pid_file)
                && let Ok(pid) = pid.trim().parse::<u32>()
            {
                let _ = process::run(
                    Command::new("kill").arg(pid.to_string()),
                    None,
                    Duration::from_secs(10),
                );
                process::wait_for(Duration::from_secs(10), || {
                    !Path::new(&format!("/proc/{pid}")).exists()
                });
            }
        }
        wait_for_cleanups(&self.runroot);
        for d in [&self.runroot, &self.root] {
            unmount_under(d);
        }
        let _ = fs::remove_dir_all(&self.runroot);
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl Drop for PodmanStore {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A workspace directory owned by `user`, with `.devcontainer/devcontainer.json`
/// as given.
pub fn workspace(user: &HostUser, parent: &Path, name: &str, devcontainer_json: &str) -> PathBuf {
    let ws = parent.join(name);
    let dc = ws.join(".devcontainer");
    fs::create_dir_all(&dc).unwrap_or_else(|e| panic!("mkdir {}: {e}", dc.display()));
    fs::write(dc.join("devcontainer.json"), devcontainer_json).expect("write devcontainer.json");
    scratch::set_owner_recursive(&ws, user.uid, user.gid).expect("chown the workspace");
    ws
}

/// The first line of `text` starting with `prefix`, without it.
pub fn line_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

/// The vault path that `devc-vault devcontainer` printed (`vault: PATH (...)`).
#[track_caller]
pub fn vault_from_output(out: &Outcome) -> PathBuf {
    let text = out.stdout_str();
    let line =
        line_after(&text, "vault: ").unwrap_or_else(|| panic!("no vault line\n{}", out.describe()));
    PathBuf::from(line.rsplit_once(" (").map_or(line, |(p, _)| p))
}

/// The key file path that `devc-vault devcontainer` printed.
#[track_caller]
pub fn key_file_from_output(out: &Outcome) -> PathBuf {
    let text = out.stdout_str();
    PathBuf::from(
        line_after(&text, "key file: ")
            .unwrap_or_else(|| panic!("no key file line\n{}", out.describe())),
    )
}

/// A scratch directory for one dev-container test: searchable by the host
/// users inside it.
pub fn scratch(label: &str) -> Scratch {
    let s = Scratch::new(label);
    HostUser::open_for_others(s.path());
    s
}

/// A long-running process of a test (e.g. a host agent), its output in a
/// log file; stopped with SIGTERM (then SIGKILL) on drop.
#[derive(Debug)]
pub struct Background {
    child: std::process::Child,
    log: PathBuf,
}

impl Background {
    /// Starts `cmd` with stdin closed and stdout/stderr appended to `log`.
    pub fn start(mut cmd: Command, log: &Path) -> Background {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log handle");
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", process::render(&cmd)));
        Background {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, up to 10 s to exit, then SIGKILL; reaped.
    pub fn stop(&mut self) {
        if self.running() {
            let _ = process::run(
                Command::new("kill").arg(self.child.id().to_string()),
                None,
                Duration::from_secs(10),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}
