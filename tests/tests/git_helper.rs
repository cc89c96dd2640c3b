//! `git-credential-devc-encrypted` as git runs it, without git: argument
//! handling, silence on expected misses, `DEVC_VAULT_DEBUG`, and the
//! environment variables that name the vault and key.

use devc_vault_tests::fixture::{Fixture, GIT_HELPER as HELPER};
use devc_vault_tests::process::Outcome;

/// An empty vault, created by `devc-vault init` from the environment alone.
fn setup() -> Option<Fixture> {
    let s = Fixture::build("git-helper").no_vault().create()?;
    s.cli_ok(&["init"], None);
    Some(s)
}

/// The helper with `args`, `input` on stdin and `env` over the fixture's.
fn helper(s: &Fixture, args: &[&str], input: &str, env: &[(&str, &str)]) -> Outcome {
    let mut c = s.command(s.git_helper_path());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    s.run(&mut c, Some(input.as_bytes()))
}

const CRED: &str = "protocol=https\nhost=git.example:8443\nusername=bob\npassword=pw\n";
const QUERY: &str = "protocol=https\nhost=git.example:8443\n";

#[test]
fn store_get_erase_through_the_binary() {
    let Some(s) = setup() else { return };
    let out = helper(&s, &["store"], CRED, &[]);
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
    let out = helper(&s, &["get"], QUERY, &[]);
    assert!(out.success() && out.stderr.is_empty(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "username=bob\npassword=pw\n");
    // Options before the operation (as in `credential.helper = "devc-encrypted --x"`)
    // do not change which operation runs.
    let out = helper(&s, &["--x", "erase"], QUERY, &[]);
    assert!(out.success() && out.stderr.is_empty(), "{}", out.describe());
    assert_eq!(helper(&s, &["get"], QUERY, &[]).stdout_str(), "");
}

#[test]
fn misses_are_silent_and_debug_explains_them() {
    let Some(s) = setup() else { return };
    assert!(helper(&s, &["store"], CRED, &[]).success());
    let missing_key = s.path().join("no-such-key");
    let missing_key = missing_key.to_str().expect("utf-8 path");
    let out = helper(&s, &["get"], QUERY, &[("DEVC_VAULT_KEY_FILE", missing_key)]);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        (out.stdout_str(), out.stderr_str()),
        (String::new(), String::new())
    );

    let out = helper(
        &s,
        &["get"],
        QUERY,
        &[
            ("DEVC_VAULT_KEY_FILE", missing_key),
            ("DEVC_VAULT_DEBUG", "1"),
        ],
    );
    assert!(out.success() && out.stdout.is_empty(), "{}", out.describe());
    let err = out.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("{HELPER}: get: no key")), "{err}");
    assert!(
        err.contains("no-such-key"),
        "the line names the source tried: {err}"
    );

    let out = helper(
        &s,
        &["get"],
        QUERY,
        &[("DEVC_VAULT", "/nonexistent/.credentials.enc")],
    );
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
}

#[test]
fn arguments() {
    let Some(s) = setup() else { return };
    let out = helper(&s, &["list"], QUERY, &[]);
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        out.describe()
    );
    let out = helper(&s, &[], "", &[]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr_str().starts_with("usage:"), "{}", out.describe());
    let out = helper(&s, &["--version"], "", &[]);
    assert!(
        out.success() && out.stdout_str().starts_with(HELPER),
        "{}",
        out.describe()
    );
}

#[test]
fn oversized_input_is_refused_without_output() {
    let Some(s) = setup() else { return };
    let mut big = String::from("protocol=https\nhost=git.example:8443\nwwwauth[]=");
    big.push_str(&"x".repeat(2 << 20));
    let out = helper(&s, &["get"], &big, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr_str().contains("larger than"),
        "{}",
        out.describe()
    );
}
