//! A real authenticated clone and push through `git-credential-devc-encrypted`:
//! git's `git-http-backend` behind lighttpd with basic auth on 127.0.0.1
//! ([`GitHttpServer`]), the git under test (`/usr/local/bin/git`), our
//! helper as the only configured credential helper, and
//! `GIT_TERMINAL_PROMPT=0` so that nothing can wait for a user.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::fixture::{Fixture, GIT_HELPER as HELPER};
use devc_vault_tests::git_http::{self, BRANCH, GitHttpServer};
use devc_vault_tests::process::{self, Outcome};

const USER: &str = "alice";
const PASS: &str = "correct-horse-battery";
const TIMEOUT: Duration = Duration::from_secs(60);

/// A user's home with git configured to use only our helper, a key file
/// and a vault.
struct Home {
    f: Fixture,
    git: PathBuf,
}

impl Home {
    fn new() -> Option<Home> {
        let mut f = Fixture::build("git-clone").no_vault().create()?;
        // Nothing may wait for a user: no terminal prompt, no askpass program.
        f.set_env("GIT_TERMINAL_PROMPT", "0")
            .unset_env("SSH_ASKPASS");
        let home = Home {
            f,
            git: git_http::git_binary(),
        };
        home.cli(&["init"], None).assert_success("devc-vault init");
        home.git_ok(
            &["config", "--global", "credential.helper", "devc-encrypted"],
            None,
        );
        home.git_ok(
            &["config", "--global", "user.name", "devc-vault tests"],
            None,
        );
        home.git_ok(
            &[
                "config",
                "--global",
                "user.email",
                "tests@devc-vault.invalid",
            ],
            None,
        );
        Some(home)
    }

    fn vault(&self) -> PathBuf {
        self.f.vault()
    }

    /// The fixture's environment (our binaries first on PATH), in the
    /// scratch directory.
    fn command(&self, program: &Path) -> Command {
        let mut c = self.f.command(program);
        c.current_dir(self.f.path());
        c
    }

    fn git(&self, args: &[&str], cwd: Option<&Path>) -> Outcome {
        let mut c = self.command(&self.git);
        c.args(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let out = process::run(&mut c, None, TIMEOUT).expect("running git");
        // Normal operation is silent: git's suite and users' terminals see
        // nothing from the helper.
        assert!(
            !out.stderr_str().contains(HELPER),
            "helper wrote to stderr\n{}",
            out.describe()
        );
        out
    }

    #[track_caller]
    fn git_ok(&self, args: &[&str], cwd: Option<&Path>) -> Outcome {
        let out = self.git(args, cwd);
        out.assert_success(&format!("git {args:?}"));
        out
    }

    fn git_with_input(&self, args: &[&str], input: &str) -> Outcome {
        let mut c = self.command(&self.git);
        c.args(args);
        process::run(&mut c, Some(input.as_bytes()), TIMEOUT).expect("running git")
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut c = self.command(self.f.cli_path());
        c.args(args);
        process::run(&mut c, stdin.map(str::as_bytes), TIMEOUT).expect("running devc-vault")
    }

    /// What the helper answers for `host` (empty when it has nothing).
    fn helper_get(&self, host: &str) -> String {
        let mut c = self.command(self.f.git_helper_path());
        c.arg("get");
        let input = format!("protocol=http\nhost={host}\n");
        let out = process::run(&mut c, Some(input.as_bytes()), TIMEOUT).expect("running helper");
        out.assert_success("helper get");
        assert_eq!(out.stderr_str(), "", "{}", out.describe());
        out.stdout_str()
    }
}

#[test]
fn clone_push_and_erase_on_rejection() {
    if !GitHttpServer::available() {
        return;
    }
    let Some(home) = Home::new() else { return };
    let server = GitHttpServer::start(USER, PASS);
    let url = server.url();
    let host = server.host();

    // Control: with an empty vault git has no credential and may not prompt,
    // so the clone fails. This is what the helper must change.
    let out = home.git(&["clone", "--quiet", &url, "no-cred"], None);
    assert!(
        !out.success(),
        "clone without a credential succeeded\n{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("terminal prompts disabled")
            || out.stderr_str().contains("Authentication failed"),
        "{}",
        out.describe()
    );

    // The credential goes into the vault with the CLI, not through git.
    let add = [
        "add",
        "git",
        "--protocol",
        "http",
        "--host",
        &host,
        "--username",
        USER,
    ];
    home.cli(&add, Some(PASS))
        .assert_success("devc-vault add git");
    assert!(
        home.helper_get(&host)
            .contains(&format!("username={USER}\n"))
    );

    // Clone with the stored credential. git then approves it ("store"),
    // which must leave the vault file as it was: nothing changed.
    let before = fs::read(home.vault()).expect("read vault");
    home.git_ok(&["clone", "--quiet", &url, "work"], None);
    let work = home.f.path().join("work");
    assert_eq!(
        fs::read(work.join("README")).expect("cloned README"),
        b"Test repository served by devc-vault's GitHttpServer.\n"
    );
    assert_eq!(
        fs::read(home.vault()).expect("read vault"),
        before,
        "store of an unchanged credential rewrote the vault"
    );
    assert!(server.access_log().contains(USER), "{}", server.logs());

    // Push a commit with the same credential.
    fs::write(work.join("pushed.txt"), "pushed through devc-vault\n").expect("write file");
    home.git_ok(&["add", "pushed.txt"], Some(&work));
    home.git_ok(&["commit", "--quiet", "-m", "push test"], Some(&work));
    home.git_ok(&["push", "--quiet", "origin", BRANCH], Some(&work));
    let local = home
        .git_ok(&["rev-parse", "HEAD"], Some(&work))
        .stdout_str()
        .trim()
        .to_owned();
    assert_ne!(local, server.initial_commit());
    assert_eq!(
        server.rev_parse(&format!("refs/heads/{BRANCH}")).as_deref(),
        Some(local.as_str())
    );

    // The server's password changes: the stored one is now wrong. git gets
    // a 401 for the helper's credential, fails (no prompting), and calls
    // "erase" with it, which removes the entry from the vault.
    server.set_credentials(USER, "rotated-password");
    let out = home.git(&["fetch", "--quiet", "origin"], Some(&work));
    assert!(
        !out.success(),
        "fetch with a wrong password succeeded\n{}",
        out.describe()
    );
    assert_eq!(
        home.helper_get(&host),
        "",
        "the rejected credential is still served"
    );
    let list = home.cli(&["list", "--json"], None);
    list.assert_success("devc-vault list");
    assert!(
        !list.stdout_str().contains(&host),
        "entry still listed: {}",
        list.stdout_str()
    );

    // A new credential approved through git ("store") works again.
    let approve =
        format!("protocol=http\nhost={host}\nusername={USER}\npassword=rotated-password\n\n");
    home.git_with_input(&["credential", "approve"], &approve)
        .assert_success("git credential approve");
    assert!(
        home.helper_get(&host)
            .contains("password=rotated-password\n")
    );
    home.git_ok(&["fetch", "--quiet", "origin"], Some(&work));
}
