//! git's own external credential-helper suite, `t/t0303-credential-external.sh`
//! of the installed git's version, run against `git-credential-devc-encrypted`
//! through `scripts/git-t0303.sh` (which fetches and builds git's test
//! harness at test time). Passes only if every one of its tests passes,
//! and at least the 21 of git 2.47.
//!
//! Needs: `cargo build --workspace` first (the helper and `devc-vault` must
//! be built), `/usr/local/bin/git`, and network access to the machine's
//! Debian mirror on the first run. Without them the test is skipped, unless
//! `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::fixture;
use devc_vault_tests::process;
use devc_vault_tests::tools;

/// Fetching git's source and building test-tool takes about a minute on
/// two cores; the suite itself a few seconds.
const TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// What t0303 of git 2.47 runs without `GIT_TEST_CREDENTIAL_HELPER_TIMEOUT`.
const MIN_TESTS: usize = 21;

/// Evaluated by t0303 in its own shell after it has set `HOME` to the
/// trash directory: a fresh key file and empty vault there, named
/// explicitly so nothing outside the trash directory is used.
const SETUP: &str = r#"devc-vault init --vault "$HOME/.docker/.credentials.enc" --key-file "$HOME/key" >/dev/null &&
export DEVC_VAULT="$HOME/.docker/.credentials.enc" DEVC_VAULT_KEY_FILE="$HOME/key""#;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/git-t0303.sh")
}

#[test]
fn t0303_credential_external_passes() {
    let git = Path::new("/usr/local/bin/git");
    if !tools::is_executable(git) {
        tools::skip_or_fail(
            "/usr/local/bin/git not found",
            "t0303 tests the installed git",
        );
        return;
    }
    if tools::require_tool("bash", "runs scripts/git-t0303.sh").is_none() {
        return;
    }
    let (Some(helper), Some(_cli)) = (
        tools::require_bin("git-credential-devc-encrypted"),
        tools::require_bin("devc-vault"),
    ) else {
        return;
    };
    let bin_dir = helper
        .parent()
        .expect("binary has a directory")
        .to_path_buf();

    let mut cmd = Command::new("bash");
    // The fixture's rule for inherited variables; the harness then makes
    // its own HOME, vault and key (SETUP).
    for var in fixture::inherited_vars() {
        cmd.env_remove(var);
    }
    cmd.env_remove("DOCKER_CONFIG");
    cmd.arg(script())
        .arg("devc-encrypted")
        .arg(&bin_dir)
        .env("GIT_TEST_INSTALLED", "/usr/local/bin")
        .env("GIT_TEST_CREDENTIAL_HELPER", "devc-encrypted")
        .env("GIT_TEST_CREDENTIAL_HELPER_SETUP", SETUP);
    let out = process::run(&mut cmd, None, TIMEOUT).expect("running scripts/git-t0303.sh");
    let stdout = out.stdout_str();

    // Exit status 2 is the script's "could not set up" (no mirror, no
    // compiler); that is a missing prerequisite, not a helper failure.
    if out.code() == Some(2) && !tools::in_ci() {
        let why = out
            .stderr_str()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        tools::skip_or_fail("git's test harness could not be prepared", &why);
        return;
    }
    assert!(out.success(), "t0303 failed\n{}", out.describe());
    // The script prints its verdict last: `RESULT: PASS (passed/total)`.
    let verdict = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT: PASS ("))
        .and_then(|l| l.strip_suffix(')'))
        .and_then(|l| l.split_once('/'))
        .and_then(|(p, t)| Some((p.parse::<usize>().ok()?, t.parse::<usize>().ok()?)));
    let Some((passed, total)) = verdict else {
        panic!("no RESULT: PASS line\n{}", out.describe());
    };
    eprintln!("t0303: {passed}/{total} passed");
    assert!(
        !stdout.lines().any(|l| l.starts_with("not ok ")),
        "{}",
        out.describe()
    );
    assert_eq!(passed, total, "{}", out.describe());
    assert!(
        passed >= MIN_TESTS,
        "only {passed} t0303 tests ran (expected at least {MIN_TESTS})\n{}",
        out.describe()
    );
}
