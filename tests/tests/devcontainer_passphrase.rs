//! Issue 10, scenario 4 (and 6 for its container): the passphrase road in a
//! dev container. `devc-vault devcontainer --key passphrase` mounts nothing
//! but the vault; the container is created without any key (so `devc-vault
//! install` at postCreate sets docker and git up without opening the
//! vault). Then, through a real pseudo-terminal driven by `expect` around
//! `devcontainer exec`, the first pull asks for the passphrase on /dev/tty
//! and succeeds, and the second does not ask (the container's per-user
//! cache remembers the vault key).

mod devcontainer_support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use devc_vault_tests::debian_image::Image;
use devc_vault_tests::devcontainer::{HostUser, PodmanStore, key_file_from_output};
use devc_vault_tests::leak_scan;
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::registry::Registry;
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools;
use devcontainer_support::*;

const PASSPHRASE: &str = "correct horse battery staple 10";

const ANSWER_ONCE: &str = "expect {\n  \"passphrase for vault\" { send -- \"correct horse battery staple 10\\r\" }\n  timeout { exit 101 }\n  eof { exit 102 }\n}\nexpect {\n  \"schemaVersion\" {}\n  timeout { exit 103 }\n  eof { exit 104 }\n}\n";

const NO_PROMPT: &str = "expect {\n  \"passphrase for vault\" { exit 105 }\n  \"schemaVersion\" {}\n  timeout { exit 106 }\n  eof { exit 107 }\n}\n";

/// `expect` running `devcontainer exec ... docker manifest inspect` on a pty.
#[allow(clippy::too_many_arguments)]
fn pull_on_pty(
    store: &PodmanStore,
    user: &HostUser,
    expect: &Path,
    cli: &Path,
    ws: &Path,
    reference: &str,
    s: &Scratch,
    name: &str,
    body: &str,
) -> Outcome {
    let script = format!(
        "set timeout 90\nlog_user 1\nspawn -noecho {} exec --workspace-folder {} --docker-path {} docker manifest inspect --insecure {reference}\n{body}\ncatch {{expect eof}}\nlassign [wait] pid spawnid os_error value\nexit $value\n",
        cli.display(),
        ws.display(),
        store.wrapper().display(),
    );
    let path = s.write(format!("{name}.exp"), script, 0o600);
    let mut cmd = store.cli_environment(expect, user);
    cmd.arg(&path);
    let start = Instant::now();
    let out = process::run(&mut cmd, None, Duration::from_secs(150)).expect("spawn expect");
    eprintln!("[timing] {name}: {:?}", start.elapsed());
    out
}

#[test]
fn devcontainer_passphrase_asked_at_first_pull_only() {
    let Some(expect) = tools::require_tool(
        "expect",
        "drives the passphrase prompt through a pty (apt: expect)",
    ) else {
        return;
    };
    let start = Instant::now();
    // Bindings drop in reverse: the store (and its containers) before the
    // scratch directory it lives in.
    let Some(Scenario {
        s,
        host,
        store,
        cli,
    }) = Scenario::start("dc-passphrase")
    else {
        return;
    };
    let Some(image) = store.import(Image::Bookworm) else {
        return;
    };
    let reg = Registry::start(REG_USER, REG_PASS);
    let reference = push_private_image(&reg);
    host.docker_credential(&reg);

    let ws = host.plain_workspace("pass", &devcontainer_json(&image, ""));
    let setup = host.setup(
        &ws,
        &[
            "--key",
            "passphrase",
            "--seal",
            "--feature-dir",
            "features/devc-vault",
            "--new-passphrase-fd",
            "0",
            "--kdf-cost",
            KDF_COST,
        ],
        Some(format!("{PASSPHRASE}\n").as_bytes()),
    );
    let config = fs::read_to_string(ws.join(".devcontainer/devcontainer.json")).expect("config");
    assert!(
        !config.contains("/run/secrets")
            && config.contains("\"DEVC_VAULT_KEY_ORDER\": \"passphrase\""),
        "{config}"
    );
    let id = store.up(&cli, &host.user, &ws);

    // Without the passphrase nothing opens: a pull with no terminal is anonymous and refused.
    let blind = pull(&store, &cli, &host.user, &ws, &reference);
    assert!(!blind.success(), "{}", blind.describe());

    let first = pull_on_pty(
        &store,
        &host.user,
        &expect,
        &cli,
        &ws,
        &reference,
        &s,
        "first-pull",
        ANSWER_ONCE,
    );
    assert_eq!(first.code(), Some(0), "first pull\n{}", first.describe());
    assert!(
        !first.stdout_str().contains(PASSPHRASE),
        "the passphrase was echoed\n{}",
        first.describe()
    );
    let second = pull_on_pty(
        &store,
        &host.user,
        &expect,
        &cli,
        &ws,
        &reference,
        &s,
        "second-pull",
        NO_PROMPT,
    );
    assert_eq!(
        second.code(),
        Some(0),
        "the second pull asked again or failed\n{}",
        second.describe()
    );

    let mut needles = password_needles();
    needles.extend(leak_scan::needles("passphrase", PASSPHRASE.as_bytes()));
    needles.extend(key_needles(
        "host key secret",
        &key_file_from_output(&setup),
    ));
    assert_nothing_at_rest(&store, &id, &needles, &s);
    eprintln!("[timing] whole test: {:?}", start.elapsed());
}
