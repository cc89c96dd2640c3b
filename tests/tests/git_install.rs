//! `devc-vault install`'s git step against the real git: our helper first
//! in the global `credential.helper` list, helpers configured before kept
//! after it, and a second run changing nothing.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::git_http;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;

const TIMEOUT: Duration = Duration::from_secs(30);

fn command(program: &Path, home: &Scratch, bin_dir: &Path) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("GIT_") || k.starts_with("DEVC_VAULT") {
            c.env_remove(&*k);
        }
    }
    c.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("DOCKER_CONFIG")
        .env("PATH", tools::path_with_prefix(&[bin_dir.to_path_buf()]))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("DEVC_VAULT_KEY_FILE", home.join("key"))
        .env("DEVC_VAULT_KEY_ORDER", "file");
    c
}

fn run(c: &mut Command, what: &str) -> Outcome {
    process::run_ok(c, None, TIMEOUT, what)
}

#[test]
fn install_puts_our_helper_first_and_is_idempotent() {
    let Some(cli) = tools::require_bin("devc-vault") else {
        return;
    };
    let git = git_http::git_binary();
    if !tools::is_executable(&git) {
        tools::skip_or_fail("git not found", "install configures git");
        return;
    }
    let bin_dir = cli.parent().expect("bin dir").to_path_buf();
    let home = Scratch::new("git-install");
    run(
        command(&cli, &home, &bin_dir).arg("init"),
        "devc-vault init",
    );
    run(
        command(&git, &home, &bin_dir).args([
            "config",
            "--global",
            "credential.helper",
            "cache --timeout=60",
        ]),
        "git config",
    );

    let out = run(
        command(&cli, &home, &bin_dir).arg("install"),
        "devc-vault install",
    );
    assert!(out.stdout_str().contains("git: "), "{}", out.describe());
    let helpers = |home: &Scratch| {
        run(
            command(&git, home, &bin_dir).args(["config", "--get-all", "credential.helper"]),
            "git config --get-all",
        )
        .stdout_str()
    };
    assert_eq!(helpers(&home), "devc-encrypted\ncache --timeout=60\n");

    let before = fs::read(home.join(".gitconfig")).expect("read .gitconfig");
    let out = run(
        command(&cli, &home, &bin_dir).arg("install"),
        "devc-vault install again",
    );
    assert!(out.stdout_str().contains("already"), "{}", out.describe());
    assert_eq!(
        fs::read(home.join(".gitconfig")).expect("read .gitconfig"),
        before
    );
}
