//! `devc-vault doctor`: a healthy setup passes; a missing key or an
//! unconfigured docker is named with the command that fixes it.

use devc_vault_tests::fixture::Fixture;
use devc_vault_tests::process::Outcome;
use devc_vault_tests::tools::require_tool;

fn ok(f: &Fixture, args: &[&str], stdin: Option<&str>) -> Outcome {
    let o = f.cli(args, stdin.map(str::as_bytes));
    assert!(o.success(), "{}", o.describe());
    o
}

#[test]
fn doctor_passes_a_healthy_setup_and_names_what_to_fix() {
    let Some(git) = require_tool("git", "doctor checks git's credential.helper") else {
        return;
    };
    // The built binaries are on the fixture's PATH, and git with them.
    let Some(mut s) = Fixture::build("doctor").no_vault().create() else {
        return;
    };
    s.prepend_path(git.parent().expect("git dir"));
    ok(&s, &["init"], None);
    ok(
        &s,
        &["add", "docker", "--server", "ghcr.io", "--username", "me"],
        Some("tok"),
    );

    // Before install: docker is not pointed at us (a problem), git only warned.
    let before = s.cli(&["doctor"], None);
    assert_eq!(before.code(), Some(1), "{}", before.describe());
    let out = before.stdout_str();
    assert!(
        out.contains("PROBLEM  docker") && out.contains("devc-vault install"),
        "{out}"
    );
    assert!(out.contains("warning  git"), "{out}");
    assert_eq!(
        before.stderr_str().lines().count(),
        1,
        "{}",
        before.describe()
    );

    ok(&s, &["install"], None);
    let healthy = ok(&s, &["doctor"], None).stdout_str();
    assert!(healthy.contains("all checks passed"), "{healthy}");
    assert!(
        healthy.contains("ok       keys: the file source opens it (1 docker"),
        "{healthy}"
    );
    assert!(
        !healthy.contains("PROBLEM") && !healthy.contains("tok\""),
        "{healthy}"
    );

    // The key goes missing: named, with where to mount it.
    std::fs::rename(s.key(), s.path().join("secrets/moved")).expect("move key");
    let broken = s.cli(&["doctor"], None);
    assert_eq!(broken.code(), Some(1), "{}", broken.describe());
    assert!(
        broken.stdout_str().contains("PROBLEM  keys"),
        "{}",
        broken.describe()
    );
}
