//! `devc-vault install`'s git step against the real git: our helper first
//! in the global `credential.helper` list, helpers configured before kept
//! after it, and a second run changing nothing.

use std::fs;
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::fixture::Fixture;
use devc_vault_tests::git_http;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::tools;

const TIMEOUT: Duration = Duration::from_secs(30);

fn run(c: &mut Command, what: &str) -> Outcome {
    process::run_ok(c, None, TIMEOUT, what)
}

#[test]
fn install_puts_our_helper_first_and_is_idempotent() {
    let git = git_http::git_binary();
    if !tools::is_executable(&git) {
        tools::skip_or_fail("git not found", "install configures git");
        return;
    }
    let Some(home) = Fixture::build("git-install").no_vault().create() else {
        return;
    };
    run(&mut home.cli_cmd(&["init"]), "devc-vault init");
    run(
        home.command(&git).args([
            "config",
            "--global",
            "credential.helper",
            "cache --timeout=60",
        ]),
        "git config",
    );

    let out = run(&mut home.cli_cmd(&["install"]), "devc-vault install");
    assert!(out.stdout_str().contains("git: "), "{}", out.describe());
    let helpers = |home: &Fixture| {
        run(
            home.command(&git)
                .args(["config", "--get-all", "credential.helper"]),
            "git config --get-all",
        )
        .stdout_str()
    };
    assert_eq!(helpers(&home), "devc-encrypted\ncache --timeout=60\n");

    let before = fs::read(home.home().join(".gitconfig")).expect("read .gitconfig");
    let out = run(&mut home.cli_cmd(&["install"]), "devc-vault install again");
    assert!(out.stdout_str().contains("already"), "{}", out.describe());
    assert_eq!(
        fs::read(home.home().join(".gitconfig")).expect("read .gitconfig"),
        before
    );
}
