//! The docker helper inside a real podman container gets its key only from
//! the host's agent: the agent's socket *directory* is bind-mounted (so an
//! agent restart keeps working), the vault directory is mounted, there is no
//! key file, and the container runs as uid 1000, which the host agent (a
//! different uid) serves because of `--allow-uid 1000`.

use std::time::Instant;

use devc_vault_tests::fixture::sample::{EXPECTED, SERVER};
use devc_vault_tests::fixture::{DOCKER_HELPER, Fixture, KeyFileVar};
use devc_vault_tests::image::{DEV_UID, OciImage};
use devc_vault_tests::podman::Podman;
use devc_vault_tests::scratch;

fn setup() -> Option<(OciImage, Podman)> {
    if !(OciImage::available() && Podman::available()) {
        return None;
    }
    let img = OciImage::busybox();
    let pm = Podman::new(&img);
    Some((img, pm))
}

fn get_in_container(
    pm: &Podman,
    env: &Fixture,
    sock_dir: &std::path::Path,
) -> devc_vault_tests::process::Outcome {
    let helper = env.docker_helper_path();
    let ctr_bin = format!("/usr/local/bin/{DOCKER_HELPER}");
    let start = Instant::now();
    let out = pm
        .run(&[ctr_bin.as_str(), "get"])
        .user(DEV_UID, DEV_UID)
        .host_binary(helper, &ctr_bin)
        .volume(sock_dir, "/run/devc-vault")
        .volume(env.vault().parent().expect("vault dir"), "/vault")
        .env("DEVC_VAULT", "/vault/.credentials.enc")
        .env("HOME", "/tmp")
        .stdin(SERVER)
        .exec();
    eprintln!("[timing] podman run get: {:?}", start.elapsed());
    out
}

#[test]
fn docker_helper_in_podman_through_the_mounted_agent_socket_dir() {
    let Some(env) = Fixture::build("kd-podman")
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
    else {
        return;
    };
    let Some((_img, pm)) = setup() else { return };

    // The agent (the host user) makes its socket directory 0711 for the
    // --allow-uid user, who may reach the socket but not list or change the
    // directory; the container user owns the vault directory.
    let sock_dir = env.dir().join("sockdir");
    scratch::set_owner_recursive(env.vault().parent().expect("vault dir"), DEV_UID, DEV_UID)
        .expect("chown vault dir");
    let sock = sock_dir.join("agent.sock");
    let agent_args = ["--key-file", &env.key_str(), "--allow-uid", "1000"];
    let agent = env.start_agent(&sock, &agent_args);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock_dir)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o711, "the container-facing directory");

    let out = get_in_container(&pm, &env, &sock_dir);
    assert!(
        out.success(),
        "{}\nagent log:\n{}",
        out.describe(),
        agent.log()
    );
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);

    // Restarting the agent keeps the mounted directory valid.
    drop(agent);
    let agent = env.start_agent(&sock, &agent_args);
    let out = get_in_container(&pm, &env, &sock_dir);
    assert!(
        out.success(),
        "after agent restart\n{}\nagent log:\n{}",
        out.describe(),
        agent.log()
    );

    drop(agent);
}
