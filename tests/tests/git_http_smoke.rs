//! Smoke tests for `devc_vault_tests::git_http::GitHttpServer`: a real git
//! client clones from and pushes to lighttpd + git-http-backend with basic
//! auth supplied by a credential helper; a wrong password gets a 401 and git
//! tells the helper to `erase` the rejected credential.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::git_http::{self, GitHttpServer};
use devc_vault_tests::process;

const USER: &str = "alice";
const PASS: &str = "pa:ss w0rd";
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A git command isolated from the caller's config, never prompting.
fn git(home: &Path) -> Command {
    let mut c = Command::new(git_http::git_binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.env_remove("SSH_ASKPASS")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.invalid")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.invalid");
    c
}

/// `-c credential.helper=` (reset) then `-c credential.helper=HELPER`.
fn with_helper<'a>(c: &'a mut Command, helper: &str) -> &'a mut Command {
    c.args(["-c", "credential.helper="])
        .arg("-c")
        .arg(format!("credential.helper={helper}"))
}

fn inline_helper(user: &str, pass: &str) -> String {
    format!(
        "!f(){{ test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' '{user}' '{pass}'; }}; f"
    )
}

#[test]
fn clone_and_push_with_credential_helper() {
    if !GitHttpServer::available() {
        return;
    }
    let server = GitHttpServer::start(USER, PASS);
    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert!(server.url().ends_with("/repo.git"), "{}", server.url());
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path();
    let work = home.join("work");
    let helper = inline_helper(USER, PASS);

    let out = process::run(
        with_helper(&mut git(home), &helper)
            .arg("clone")
            .arg(server.url())
            .arg(&work),
        None,
        GIT_TIMEOUT,
    )
    .expect("git clone");
    assert!(
        out.success(),
        "clone: {}\n{}",
        out.describe(),
        server.logs()
    );
    assert_eq!(
        fs::read_to_string(work.join("README")).expect("README cloned"),
        "Test repository served by devc-vault's GitHttpServer.\n"
    );

    fs::write(work.join("pushed.txt"), "pushed over smart HTTP\n").expect("write file");
    let out = process::run(
        git(home).arg("-C").arg(&work).args(["add", "pushed.txt"]),
        None,
        GIT_TIMEOUT,
    )
    .expect("git add");
    assert!(out.success(), "add: {}", out.describe());
    let out = process::run(
        git(home)
            .arg("-C")
            .arg(&work)
            .args(["commit", "-q", "-m", "push test"]),
        None,
        GIT_TIMEOUT,
    )
    .expect("git commit");
    assert!(out.success(), "commit: {}", out.describe());
    let out = process::run(
        with_helper(&mut git(home), &helper)
            .arg("-C")
            .arg(&work)
            .args(["push", "origin", git_http::BRANCH]),
        None,
        GIT_TIMEOUT,
    )
    .expect("git push");
    assert!(out.success(), "push: {}\n{}", out.describe(), server.logs());

    let local = process::run(
        git(home).arg("-C").arg(&work).args(["rev-parse", "HEAD"]),
        None,
        GIT_TIMEOUT,
    )
    .expect("rev-parse")
    .stdout_str();
    let remote = server
        .rev_parse("refs/heads/main")
        .expect("main exists on the server");
    assert_eq!(remote, local.trim(), "the push reached the server");
    assert_ne!(remote, server.initial_commit());
    // Every request was authenticated as USER (after the initial 401s).
    let log = server.access_log_until("POST /repo.git/git-receive-pack");
    assert!(
        log.lines()
            .any(|l| l.contains("POST /repo.git/git-receive-pack")
                && l.contains(&format!(" {USER} ["))),
        "access log: {log}"
    );
}

#[test]
fn wrong_password_is_rejected_and_erased() {
    if !GitHttpServer::available() {
        return;
    }
    let server = GitHttpServer::start(USER, PASS);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path();
    let log = home.join("helper.log");
    let helper = home.join("log-helper");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n{{ echo \"== $1\"; cat; }} >> '{}'\n\
             if [ \"$1\" = get ]; then echo username={USER}; echo password=WRONG; fi\n",
            log.display()
        ),
    )
    .expect("write helper");
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).expect("chmod helper");

    let out = process::run(
        with_helper(&mut git(home), &helper.to_string_lossy())
            .args(["ls-remote"])
            .arg(server.url()),
        None,
        GIT_TIMEOUT,
    )
    .expect("git ls-remote");
    assert!(
        !out.success(),
        "wrong password accepted: {}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("Authentication failed"),
        "{}",
        out.describe()
    );
    let access = server.access_log_until("\" 401 ");
    assert!(access.contains("\" 401 "), "no 401 in access log: {access}");
    assert!(!access.contains("\" 200 "), "a request succeeded: {access}");

    let calls = fs::read_to_string(&log).expect("helper was called");
    let get = calls.find("== get").expect("helper got `get`");
    let erase = calls
        .find("== erase")
        .unwrap_or_else(|| panic!("no `erase`: {calls}"));
    assert!(get < erase, "{calls}");
    let erase_input = &calls[erase..];
    assert!(erase_input.contains("protocol=http\n"), "{calls}");
    assert!(
        erase_input.contains(&format!("host={}\n", server.host())),
        "{calls}"
    );
    assert!(
        erase_input.contains(&format!("username={USER}\n")),
        "{calls}"
    );
    assert!(erase_input.contains("password=WRONG\n"), "{calls}");
    assert!(
        !calls.contains("== store"),
        "rejected credential was stored: {calls}"
    );

    // Rotating the server's password: the old one is refused, the new works.
    server.set_credentials(USER, "new-pass");
    let ls = |pass: &str| {
        process::run(
            with_helper(&mut git(home), &inline_helper(USER, pass))
                .arg("ls-remote")
                .arg(server.url()),
            None,
            GIT_TIMEOUT,
        )
        .expect("git ls-remote")
    };
    let old = ls(PASS);
    assert!(
        !old.success(),
        "old password still accepted: {}",
        old.describe()
    );
    let new = ls("new-pass");
    assert!(
        new.success(),
        "new password refused: {}\n{}",
        new.describe(),
        server.logs()
    );
    assert!(
        new.stdout_str().contains(server.initial_commit()),
        "{}",
        new.describe()
    );
}
