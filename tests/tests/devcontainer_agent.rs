//! Issue 10, scenario 3 (and 6 for its containers): the agent road with
//! rootless podman. A throwaway user (its own subordinate ids) runs the host
//! agent, podman and the devcontainer CLI; the containers mount only the
//! agent's socket directory (and the vault's), never a key.
//!
//! - With `--userns=keep-id` (what the CLI passes for a non-root user): the
//!   container user is the agent's own uid, and the pull works.
//! - Without keep-id, the container user 1000 is host uid subuid-base+999:
//!   the agent's 0700 directory keeps it out, `devc-vault doctor` in the
//!   container reads /proc/self/uid_map and prints the `--allow-uid` the
//!   agent needs, and with the agent restarted so, the pull works.

mod devcontainer_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devc_vault_tests::debian_image::{self, Image};
use devc_vault_tests::devcontainer::{
    self as dc, Background, HostUser, PodmanStore, key_file_from_output, vault_from_output,
};
use devc_vault_tests::image::OciImage;
use devc_vault_tests::process;
use devc_vault_tests::registry::Registry;
use devc_vault_tests::rootless::{self, RootlessUser};
use devc_vault_tests::skopeo::Skopeo;
use devcontainer_support::*;

const AGENT_ARGS: [&str; 5] = [
    "--key",
    "agent",
    "--seal",
    "--feature-dir",
    "features/devc-vault",
];

/// Starts `devc-vault agent` as `user` with `args`; waits for its socket.
fn start_agent(user: &HostUser, args: &[String], log: &Path) -> Background {
    let mut cmd = user.command(user.bin.join("devc-vault"));
    cmd.arg("agent").args(args);
    let mut agent = Background::start(cmd, log);
    let sock = user.runtime.join("devc-vault-agent").join("agent.sock");
    let up = process::wait_for(Duration::from_secs(20), || sock.exists() && agent.running());
    assert!(up, "the agent did not start\n{}", agent.log());
    agent
}

#[test]
fn devcontainer_agent_rootless_keep_id_and_allow_uid() {
    if !(dc::available()
        && rootless::available()
        && Registry::available()
        && OciImage::available()
        && Skopeo::available())
    {
        return;
    }
    let Some(cli) = debian_image::devcontainer_cli() else {
        return;
    };
    let Some(dist) = debian_image::dist() else {
        return;
    };
    let start = Instant::now();
    let s = dc::scratch("dc-agent");
    let account = RootlessUser::create();
    let Some(user) = account.host_user(s.path()) else {
        return;
    };
    let host = Host::new(&s, user, &dist);
    // The CLI runs as the user, who may not reach this checkout's target/.
    let cli_copy = s.join("devcontainer-cli");
    host.user.copy_tree(
        cli.parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .expect("the CLI's npm prefix"),
        &cli_copy,
    );
    let cli = cli_copy.join("node_modules/.bin/devcontainer");
    let mut store = PodmanStore::new(&s.join("podman"), Some(&host.user));
    let Some(image) = store.import(Image::Bookworm) else {
        return;
    };
    let reg = Registry::start(REG_USER, REG_PASS);
    let reference = push_private_image(&reg);
    host.docker_credential(&reg);
    let mut needles = password_needles();

    // keep-id: the container user is the agent's uid.
    let ws_keep = host.plain_workspace("keep-id", &devcontainer_json(&image, ""));
    let setup = host.setup(&ws_keep, &AGENT_ARGS, None);
    let key1 = key_file_from_output(&setup);
    needles.extend(key_needles("key secret", &key1));
    assert!(
        setup.stdout_str().contains("devc-vault agent --key-file"),
        "{}",
        setup.describe()
    );
    let log = s.join("agent.log");
    let mut agent = start_agent(
        &host.user,
        &["--key-file".into(), key1.display().to_string()],
        &log,
    );
    let id_keep = store.up(&cli, &host.user, &ws_keep);
    let mounts = store.inspect(&id_keep);
    assert!(
        !mounts.contains("/run/secrets") && mounts.contains("/run/devc-vault"),
        "the container mounts a key, or not the agent"
    );
    let doctor = store.exec(&cli, &host.user, &ws_keep, &["devc-vault", "doctor"], None);
    assert!(
        doctor.success() && doctor.stdout_str().contains("without --allow-uid"),
        "{}",
        doctor.describe()
    );
    assert_pulled(
        &pull(&store, &cli, &host.user, &ws_keep, &reference),
        "keep-id",
    );

    // Without keep-id: container uid 1000 is another host uid.
    let ws_map = host.plain_workspace(
        "no-keep-id",
        &devcontainer_json(&image, "\n  \"updateRemoteUserUID\": false,"),
    );
    let setup = host.setup(&ws_map, &AGENT_ARGS, None);
    let key2 = key_file_from_output(&setup);
    needles.extend(key_needles("key secret", &key2));
    // Its vault's directory must belong to the container user (uid 1000
    // inside the user namespace), as a rootless user does for any bind mount.
    let vault_dir: PathBuf = vault_from_output(&setup)
        .parent()
        .expect("vault dir")
        .to_path_buf();
    store.podman_ok(
        &[
            "unshare",
            "chown",
            "-R",
            "1000:1000",
            &vault_dir.to_string_lossy(),
        ],
        Duration::from_secs(60),
    );
    store.set_env("DEVC_PODMAN_NO_KEEP_ID", "1");
    let id_map = store.up(&cli, &host.user, &ws_map);
    store.unset_env("DEVC_PODMAN_NO_KEEP_ID");
    // Handed back to the host user, the vault's directory is closed to the
    // container user, and doctor says how to open it.
    let chown = |owner: &str| {
        store.podman_ok(
            &[
                "unshare",
                "chown",
                "-R",
                owner,
                &vault_dir.to_string_lossy(),
            ],
            Duration::from_secs(60),
        )
    };
    chown("0:0");
    let doctor = store.exec(&cli, &host.user, &ws_map, &["devc-vault", "doctor"], None);
    assert!(
        !doctor.success()
            && doctor
                .stdout_str()
                .contains("podman unshare chown -R 1000:1000 <host dir>"),
        "{}",
        doctor.describe()
    );
    chown("1000:1000");
    let refused = pull(&store, &cli, &host.user, &ws_map, &reference);
    assert!(
        !refused.success(),
        "pulled before the agent allowed the uid\n{}",
        refused.describe()
    );
    let doctor = store.exec(&cli, &host.user, &ws_map, &["devc-vault", "doctor"], None);
    let text = doctor.stdout_str();
    let allow: u32 = text
        .split("--allow-uid ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("doctor printed no --allow-uid\n{}", doctor.describe()));
    assert!(!doctor.success(), "{}", doctor.describe());
    assert_eq!(
        allow,
        account.subuid_base + 999,
        "container uid 1000 is subuid base + 999 on the host\n{}",
        doctor.describe()
    );

    // The agent restarted as doctor says (and holding both projects' keys).
    agent.stop();
    let agent = start_agent(
        &host.user,
        &[
            "--key-file".into(),
            key1.display().to_string(),
            "--load".into(),
            key2.display().to_string(),
            "--allow-uid".into(),
            allow.to_string(),
        ],
        &log,
    );
    assert_pulled(
        &pull(&store, &cli, &host.user, &ws_map, &reference),
        "with --allow-uid",
    );
    assert_pulled(
        &pull(&store, &cli, &host.user, &ws_keep, &reference),
        "keep-id, after the restart",
    );
    let doctor = store.exec(&cli, &host.user, &ws_map, &["devc-vault", "doctor"], None);
    assert!(doctor.success(), "{}", doctor.describe());

    assert_nothing_at_rest(&store, &id_keep, &needles, &s);
    assert_nothing_at_rest(&store, &id_map, &needles, &s);
    drop(agent);
    drop(store);
    drop(host);
    drop(account);
    eprintln!("[timing] whole test: {:?}", start.elapsed());
}
