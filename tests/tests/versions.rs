//! `--version` of all three binaries: the package version and the formats
//! each reads and writes, checked against the constants that define them
//! (a bump of either must show without anyone editing a string).

use devc_vault_tests::fixture::{DOCKER_HELPER, Fixture, GIT_HELPER};

/// `0.1.0 (vault format v1, agent protocol v1)`, from the constants.
fn version_and_formats() -> String {
    format!(
        "{} (vault format v{}, agent protocol v{})",
        env!("CARGO_PKG_VERSION"),
        devc_vault::FORMAT_VERSION,
        devc_keydelivery::protocol::VERSION
    )
}

#[test]
fn devc_vault_version() {
    let Some(f) = Fixture::build("version").no_vault().create() else {
        return;
    };
    let want = format!("devc-vault {}\n", version_and_formats());
    for args in [&["--version"][..], &["-V"], &["list", "--version"]] {
        let out = f.cli_ok(args, None);
        // A subcommand's --version names the subcommand; the rest is the same.
        let got = out
            .stdout_str()
            .replacen("devc-vault-list ", "devc-vault ", 1);
        assert_eq!(got, want, "{args:?}\n{}", out.describe());
    }
}

#[test]
fn docker_helper_version() {
    let Some(f) = Fixture::build("version").no_vault().create() else {
        return;
    };
    // The reference helpers' `NAME (PACKAGE) VERSION`, then the formats.
    let want = format!("{DOCKER_HELPER} (devc-vault) {}\n", version_and_formats());
    for verb in ["version", "--version", "-v"] {
        let out = f.docker_helper_run(&[verb], None);
        out.assert_success(verb);
        assert_eq!(out.stdout_str(), want, "{verb}\n{}", out.describe());
    }
}

#[test]
fn git_helper_version() {
    let Some(f) = Fixture::build("version").no_vault().create() else {
        return;
    };
    let want = format!("{GIT_HELPER} {}\n", version_and_formats());
    for flag in ["--version", "-V"] {
        let out = f.git_helper_run(&[flag], None);
        out.assert_success(flag);
        assert_eq!(out.stdout_str(), want, "{flag}\n{}", out.describe());
    }
}
