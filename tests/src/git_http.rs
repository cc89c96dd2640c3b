//! A real authenticated smart-HTTP git server: Debian's `lighttpd` on
//! 127.0.0.1 running git's own `git-http-backend` as a CGI, with HTTP basic
//! auth required for every request (fetch and push alike) and
//! `http.receivepack` enabled, serving one bare repository with one commit.
//!
//! ```ignore
//! if !GitHttpServer::available() { return; }
//! let server = GitHttpServer::start("alice", "s3cret");
//! // git clone server.url() ...; push; server.rev_parse("refs/heads/main")
//! ```
//!
//! The backend is the `git-http-backend` of the git under test (see
//! [`git_binary`]), found through `git --exec-path`. lighttpd and the CGI
//! run with a cleared environment (plus `PATH`, `HOME` and
//! `GIT_CONFIG_NOSYSTEM`), so the caller's `GIT_*` variables and global
//! config cannot leak into the server.

use std::env;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tools;

/// How long [`GitHttpServer::start`] waits for lighttpd to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the served repository; [`GitHttpServer::url`] ends in it.
pub const REPO_NAME: &str = "repo.git";

/// The branch of the initial commit (also the bare repository's `HEAD`).
pub const BRANCH: &str = "main";

/// The git the tests use: `DEVC_VAULT_TEST_GIT` if set, else
/// `/usr/local/bin/git` (the git the project targets) if present, else the
/// first `git` on `PATH`.
pub fn git_binary() -> PathBuf {
    if let Some(g) = env::var_os("DEVC_VAULT_TEST_GIT") {
        return PathBuf::from(g);
    }
    let local = PathBuf::from("/usr/local/bin/git");
    if tools::is_executable(&local) {
        return local;
    }
    tools::find_tool("git").unwrap_or_else(|| PathBuf::from("git"))
}

/// A running lighttpd + git-http-backend; killed and reaped on drop, its
/// directory (repository, config, logs) deleted afterwards.
#[derive(Debug)]
pub struct GitHttpServer {
    child: Child,
    port: u16,
    git: PathBuf,
    initial_commit: String,
    // Declared last: removed after Drop::drop has killed the server.
    dir: TempDir,
}

impl GitHttpServer {
    /// Checks (skip or fail, see [`tools::require_tool`]) that lighttpd and
    /// git (with `git-http-backend`) are installed.
    #[track_caller]
    pub fn available() -> bool {
        if tools::require_tool("lighttpd", "serves git-http-backend (apt: lighttpd)").is_none() {
            return false;
        }
        let git = git_binary();
        if !tools::is_executable(&git) {
            tools::skip_or_fail(
                &format!("git not found at {}", git.display()),
                "the git under test",
            );
            return false;
        }
        match exec_path(&git) {
            Ok(p) if tools::is_executable(&p.join("git-http-backend")) => true,
            Ok(p) => {
                tools::skip_or_fail(
                    &format!("{}/git-http-backend not found", p.display()),
                    "the smart-HTTP CGI of the git under test",
                );
                false
            }
            Err(e) => {
                tools::skip_or_fail(&format!("{} --exec-path failed: {e}", git.display()), "git");
                false
            }
        }
    }

    /// Creates a bare repository with one commit on [`BRANCH`] and serves it
    /// at [`GitHttpServer::url`], accepting exactly `user`/`pass` (basic
    /// auth) for fetch and push. Waits at most [`START_TIMEOUT`] until an
    /// unauthenticated request gets a 401. Panics (with lighttpd's logs) on
    /// failure.
    pub fn start(user: &str, pass: &str) -> GitHttpServer {
        let dir = tempfile::Builder::new()
            .prefix("devc-git-http.")
            .tempdir()
            .expect("create temp dir for the git http server");
        let root = dir.path();
        assert!(
            !root.to_string_lossy().contains(['"', '\'', '\\', '\n']),
            "temp dir path unusable in lighttpd.conf: {}",
            root.display()
        );
        let git = git_binary();
        let backend = exec_path(&git)
            .unwrap_or_else(|e| panic!("{} --exec-path: {e}", git.display()))
            .join("git-http-backend");
        assert!(
            tools::is_executable(&backend),
            "{} is missing (call GitHttpServer::available() first)",
            backend.display()
        );
        let lighttpd = tools::find_tool("lighttpd")
            .expect("lighttpd not installed (call GitHttpServer::available() first)");

        for sub in ["repos", "www", "upload", "home"] {
            fs::create_dir(root.join(sub)).expect("create server subdirectory");
        }
        let initial_commit = create_repo(
            &git,
            &root.join("repos").join(REPO_NAME),
            &root.join("home"),
        );
        write_users(&root.join("users"), user, pass);

        let git_bindir = git.parent().map(Path::to_path_buf).unwrap_or_default();
        let path_env = format!("{}:/usr/bin:/bin", git_bindir.display());
        let mut last_err = String::new();
        // The free port comes from binding :0 and releasing it; another
        // process may take it first, so retry a few times.
        for _attempt in 0..3 {
            let port = free_port().expect("finding a free port on 127.0.0.1");
            let conf = root.join("lighttpd.conf");
            fs::write(&conf, config(root, port, &backend, &path_env)).expect("write lighttpd.conf");
            let _ = fs::remove_file(root.join("error.log"));
            let out =
                fs::File::create(root.join("stderr.log")).expect("create lighttpd stderr log");
            let err = out.try_clone().expect("clone log handle");
            let mut child = Command::new(&lighttpd)
                .arg("-D")
                .arg("-f")
                .arg(&conf)
                .env_clear()
                .env("PATH", &path_env)
                .env("HOME", root.join("home"))
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawning lighttpd");
            match wait_ready(&mut child, root, port, START_TIMEOUT) {
                Ok(()) => {
                    return GitHttpServer {
                        child,
                        port,
                        git,
                        initial_commit,
                        dir,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!("{e}\n{}", logs(root));
                }
            }
        }
        panic!("lighttpd (git-http-backend) did not start: {last_err}");
    }

    /// `http://127.0.0.1:PORT/repo.git`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{REPO_NAME}", self.port)
    }

    /// The port lighttpd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`: what git sends a credential helper as `host=`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The served bare repository on disk.
    pub fn repo_dir(&self) -> PathBuf {
        self.dir.path().join("repos").join(REPO_NAME)
    }

    /// The id of the one commit the repository starts with (on [`BRANCH`]).
    pub fn initial_commit(&self) -> &str {
        &self.initial_commit
    }

    /// `git rev-parse --verify REV` in the served repository, e.g. to see a
    /// push arrive. `None` if it does not resolve.
    pub fn rev_parse(&self, rev: &str) -> Option<String> {
        let out = git_cmd(&self.git, &self.dir.path().join("home"))
            .arg("--git-dir")
            .arg(self.repo_dir())
            .args(["rev-parse", "--verify", "--quiet", rev])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Replaces the accepted credentials (lighttpd reads the user file on
    /// every request, so this takes effect at once).
    pub fn set_credentials(&self, user: &str, pass: &str) {
        write_users(&self.dir.path().join("users"), user, pass);
    }

    /// lighttpd's access log so far: one line per finished request, in
    /// order, `127.0.0.1 HOST USER [time] "REQUEST" STATUS BYTES "-" "UA"`
    /// (USER is `-` when not authenticated). A line is written (through a
    /// pipe) just after its response, so it can trail the client by a few
    /// milliseconds: see [`GitHttpServer::access_log_until`].
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// [`GitHttpServer::access_log`], once it contains `needle` (waiting at
    /// most 5 s; then returned as is).
    pub fn access_log_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if log.contains(needle) || Instant::now() >= deadline {
                return log;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// lighttpd's error log, its stderr, and the access log, for failure
    /// messages.
    pub fn logs(&self) -> String {
        logs(self.dir.path())
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git --exec-path` of `git`.
fn exec_path(git: &Path) -> io::Result<PathBuf> {
    let out = Command::new(git)
        .arg("--exec-path")
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("exit status {}", out.status)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A git command isolated from the caller's config and repository.
fn git_cmd(git: &Path, home: &Path) -> Command {
    let mut c = Command::new(git);
    for (k, _) in env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "devc-vault tests")
        .env("GIT_AUTHOR_EMAIL", "tests@devc-vault.invalid")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_NAME", "devc-vault tests")
        .env("GIT_COMMITTER_EMAIL", "tests@devc-vault.invalid")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `git --git-dir REPO ARGS` (and `input` on stdin); panics on
/// failure; returns trimmed stdout.
fn git_ok(git: &Path, home: &Path, repo: &Path, args: &[&str], input: &str) -> String {
    let mut child = git_cmd(git, home)
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .spawn()
        .expect("spawning git");
    let mut stdin = child.stdin.take().expect("git stdin is piped");
    stdin.write_all(input.as_bytes()).expect("write git stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("waiting for git");
    assert!(
        out.status.success(),
        "git {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository at `repo` with one commit (README) on [`BRANCH`] and
/// `http.receivepack` on; returns the commit id.
fn create_repo(git: &Path, repo: &Path, home: &Path) -> String {
    git_ok(
        git,
        home,
        repo,
        &["init", "--quiet", "--bare", "-b", BRANCH],
        "",
    );
    git_ok(git, home, repo, &["config", "http.receivepack", "true"], "");
    let blob = git_ok(
        git,
        home,
        repo,
        &["hash-object", "-w", "--stdin"],
        "Test repository served by devc-vault's GitHttpServer.\n",
    );
    let tree = git_ok(
        git,
        home,
        repo,
        &["mktree"],
        &format!("100644 blob {blob}\tREADME\n"),
    );
    let commit = git_ok(
        git,
        home,
        repo,
        &["commit-tree", "-m", "initial commit", &tree],
        "",
    );
    let branch_ref = format!("refs/heads/{BRANCH}");
    git_ok(git, home, repo, &["update-ref", &branch_ref, &commit], "");
    commit
}

/// lighttpd's `plain` user file: `user:password` lines, read per request.
fn write_users(path: &Path, user: &str, pass: &str) {
    assert!(
        !user.is_empty() && !user.contains([':', '\n', '\r']),
        "user name unusable for basic auth: {user:?}"
    );
    assert!(!pass.contains(['\n', '\r']), "password must be one line");
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{user}:{pass}\n")).expect("write lighttpd user file");
    fs::rename(&tmp, path).expect("install lighttpd user file");
}

fn config(root: &Path, port: u16, backend: &Path, path_env: &str) -> String {
    let r = root.display();
    let b = backend.display();
    // mod_alias maps every URL onto ".../git-http-backend/<url>"; lighttpd
    // finds the CGI file as a path prefix and passes the rest as PATH_INFO
    // (/repo.git/info/refs...). mod_auth sets REMOTE_USER, which
    // git-http-backend logs as the pusher.
    format!(
        r#"server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi", "mod_accesslog")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{r}/www"
server.errorlog = "{r}/error.log"
server.upload-dirs = ("{r}/upload")
accesslog.filename = "|exec /bin/cat >> '{r}/access.log'"
alias.url = ("/" => "{b}/")
cgi.assign = ("" => "")
setenv.set-environment = (
  "GIT_PROJECT_ROOT" => "{r}/repos",
  "GIT_HTTP_EXPORT_ALL" => "1",
  "GIT_CONFIG_NOSYSTEM" => "1",
  "HOME" => "{r}/home",
  "PATH" => "{path_env}"
)
auth.backend = "plain"
auth.backend.plain.userfile = "{r}/users"
auth.require = ("/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
"#
    )
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Ready when lighttpd has logged "server started" (it has bound the port)
/// and an unauthenticated request for the refs gets a 401.
fn wait_ready(child: &mut Child, root: &Path, port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut last = String::from("no answer yet");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("lighttpd exited early ({status})"));
        }
        let started =
            fs::read_to_string(root.join("error.log")).is_ok_and(|l| l.contains("server started"));
        if started {
            match probe(addr) {
                Ok(status_line) if status_line.contains(" 401 ") => return Ok(()),
                Ok(status_line) => last = format!("unexpected answer: {status_line}"),
                Err(e) => last = format!("probe failed: {e}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready after {timeout:?} ({last})"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The status line of an unauthenticated GET of the upload-pack refs.
fn probe(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET /{REPO_NAME}/info/refs?service=git-upload-pack HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn logs(root: &Path) -> String {
    let mut s = String::new();
    for name in ["stderr.log", "error.log", "access.log"] {
        let text = fs::read_to_string(root.join(name)).unwrap_or_default();
        s.push_str(&format!("--- lighttpd {name} ---\n{text}"));
    }
    s
}
