//! Issue 10, scenarios 1, 5 and 6 in one dev container: the README's
//! "Dev container" commands, word for word, on a host whose docker config
//! and git `store` helper hold credentials in clear; then, in a Debian
//! bookworm container started by the devcontainer CLI (rootful podman, the
//! host user uid 1000 like the image's `vscode`), as `vscode`: a private
//! image's manifest, a git clone and push over HTTP basic auth, and a
//! `docker login` that the host reads back from the vault. Then `devc-vault
//! rotate` on the host while the container runs: the next pull works with
//! the same mounts and a copy of the old key opens nothing. Last, the
//! container's export holds no password and no key in any encoding.

mod devcontainer_support;

use std::fs;
use std::time::Instant;

use devc_vault_tests::debian_image::Image;
use devc_vault_tests::devcontainer::{key_file_from_output, vault_from_output};
use devc_vault_tests::git_http::GitHttpServer;
use devc_vault_tests::leak_scan;
use devc_vault_tests::registry::Registry;
use devcontainer_support::*;

/// A second registry, logged into from inside the container.
const LOGIN_USER: &str = "in-container";
const LOGIN_PASS: &str = "L0gin-pw&<z>/w3";

#[test]
fn devcontainer_key_file_pull_push_login_rotate_and_nothing_at_rest() {
    if !GitHttpServer::available() {
        return;
    }
    let flow = ReadmeFlow::load();
    flow.check_up();
    let start = Instant::now();
    // Bindings drop in reverse: the store (and its containers) before the
    // scratch directory it lives in.
    let Some(Scenario {
        s,
        host,
        store,
        cli,
    }) = Scenario::start("dc-keyfile")
    else {
        return;
    };
    let Some(image) = store.import(Image::Bookworm) else {
        return;
    };

    let reg = Registry::start(REG_USER, REG_PASS);
    let reference = push_private_image(&reg);
    let login_reg = Registry::start(LOGIN_USER, LOGIN_PASS);
    let git = GitHttpServer::start(GIT_USER, GIT_PASS);
    host.docker_credential(&reg);
    host.git_credential(&git, GIT_USER, GIT_PASS);
    let ws = host.clone_workspace(&git, "myproj", &devcontainer_json(&image, ""));

    // The README's first command, word for word.
    let setup = host.devc_vault(&flow.setup_args(&ws), None);
    setup.assert_success("the README's devc-vault devcontainer");
    let text = setup.stdout_str();
    assert!(
        text.contains(&format!("sealed docker credential for {}", reg.host()))
            && text.contains(&format!(
                "sealed git credential for http://{GIT_USER}@{}",
                git.host()
            )),
        "{}",
        setup.describe()
    );
    let vault = vault_from_output(&setup);
    let key = key_file_from_output(&setup);
    assert!(vault.starts_with(host.user.home.join(".local/share/devc/vaults")));
    assert!(key.starts_with(host.user.home.join(".config/devc/keys")));
    let config_path = ws.join(".devcontainer/devcontainer.json");
    let config = fs::read_to_string(&config_path).expect("devcontainer.json");
    assert!(
        config.contains("// The team's dev container; devc-vault devcontainer keeps this comment.")
            && config.contains("touch /tmp/team-post-create-ran && devc-vault install"),
        "{config}"
    );
    // Idempotent: a second run changes nothing.
    let again = host.devc_vault(&flow.setup_args(&ws), None);
    again.assert_success("second devc-vault devcontainer");
    assert_eq!(
        fs::read_to_string(&config_path).expect("devcontainer.json"),
        config
    );

    // The README's second command.
    let (id, up) = store.up_with_log(&cli, &host.user, &ws);
    // The Feature installed the binaries and ran `devc-vault install` as its
    // postCreateCommand; the chained one in devcontainer.json ran too.
    let log = up.stderr_str() + &up.stdout_str();
    assert!(
        log.contains("devc-vault feature: installed")
            && log.contains("postCreateCommand from Feature")
            && log.contains("now uses credsStore \"devc-encrypted\"")
            && log.contains("already uses credsStore \"devc-encrypted\""),
        "{}",
        up.describe()
    );
    let exec = |cmd: &[&str], stdin: Option<&[u8]>| store.exec(&cli, &host.user, &ws, cmd, stdin);

    let who = exec(
        &[
            "sh",
            "-c",
            "id -un; test -e /tmp/team-post-create-ran && echo team-ran",
        ],
        None,
    );
    assert!(
        who.success() && who.stdout_str().contains("vscode\nteam-ran"),
        "{}",
        who.describe()
    );
    let doctor = exec(&["devc-vault", "doctor"], None);
    assert!(
        doctor.success() && doctor.stdout_str().contains("all checks passed"),
        "{}",
        doctor.describe()
    );

    // Scenario 1: pull, clone and push, login.
    assert_pulled(
        &pull(&store, &cli, &host.user, &ws, &reference),
        "first pull",
    );
    let before = git.rev_parse("refs/heads/main").expect("main");
    let push = exec(
        &[
            "sh",
            "-c",
            &format!(
                "set -e; export GIT_TERMINAL_PROMPT=0; git clone -q {} /tmp/clone; cd /tmp/clone; \
                 echo from-the-container > pushed.txt; git add pushed.txt; \
                 git -c user.name=vscode -c user.email=vscode@example.invalid commit -qm 'from the container'; \
                 git push -q origin HEAD:main",
                git.url()
            ),
        ],
        None,
    );
    assert!(push.success(), "clone and push\n{}", push.describe());
    let after = git.rev_parse("refs/heads/main").expect("main");
    assert_ne!(before, after, "the push did not arrive");
    assert!(
        git.access_log().contains(&format!(" {GIT_USER} ")),
        "the server saw no authenticated request\n{}",
        git.logs()
    );

    let login = exec(
        &[
            "docker",
            "login",
            "-u",
            LOGIN_USER,
            "--password-stdin",
            login_reg.host(),
        ],
        Some(LOGIN_PASS.as_bytes()),
    );
    assert!(login.success(), "docker login\n{}", login.describe());
    // The host reads it back from the vault.
    let v = vault.to_string_lossy().into_owned();
    let k = key.to_string_lossy().into_owned();
    let list = host
        .user
        .cli_ok(&["list", "--vault", &v, "--key-file", &k], None);
    assert!(
        list.stdout_str().contains(login_reg.host()),
        "{}",
        list.describe()
    );
    let mut get = host
        .user
        .command(host.user.bin.join("docker-credential-devc-encrypted"));
    get.arg("get")
        .env("DEVC_VAULT", &vault)
        .env("DEVC_VAULT_KEY_FILE", &key);
    let got = run(&mut get, Some(login_reg.host().as_bytes()));
    let answer: serde_json::Value =
        serde_json::from_slice(&got.stdout).unwrap_or_else(|_| panic!("{}", got.describe()));
    assert_eq!(answer["Username"], LOGIN_USER);
    assert!(
        answer["Secret"] == LOGIN_PASS,
        "the host read back another secret"
    );

    // Scenario 5: rotate on the host while the container runs.
    let old_key = host
        .user
        .write("old-key", fs::read(&key).expect("read the key"), 0o600);
    let old_needles = key_needles("old key secret", &old_key);
    host.user
        .cli_ok(&["rotate", "--vault", &v, "--key-file", &k], None);
    assert_ne!(
        fs::read(&key).expect("key"),
        fs::read(&old_key).expect("old key"),
        "rotate kept the key file's secret"
    );
    assert_pulled(
        &pull(&store, &cli, &host.user, &ws, &reference),
        "pull after rotate",
    );
    let old = old_key.to_string_lossy().into_owned();
    let stale = host
        .user
        .cli(&["list", "--vault", &v, "--key-file", &old], None);
    assert!(
        !stale.success(),
        "a copy of the old key still opens the vault\n{}",
        stale.describe()
    );

    // Scenario 6: nothing at rest in the container.
    let mut needles = password_needles();
    needles.extend(leak_scan::needles("login password", LOGIN_PASS.as_bytes()));
    needles.extend(old_needles);
    needles.extend(key_needles("key secret", &key));
    assert_nothing_at_rest(&store, &id, &needles, &s);
    // Nor in the docker config the container wrote into the vault's directory.
    for entry in fs::read_dir(vault.parent().expect("vault dir")).expect("vault dir") {
        let p = entry.expect("entry").path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("config.json"))
        {
            let bytes = fs::read(&p).expect("read");
            for n in &needles {
                assert!(
                    !bytes.windows(n.bytes.len()).any(|w| w == n.bytes),
                    "{} holds {} ({})",
                    p.display(),
                    n.label,
                    n.encoding
                );
            }
        }
    }
    eprintln!("[timing] whole test: {:?}", start.elapsed());
}
