//! Real clients against a real registry, with only our helper configured:
//! the docker CLI (login, manifest inspect, logout; no daemon) and skopeo
//! (inspect, copy) and podman (login, pull, logout) through `credHelpers`.

use std::fs;
use std::time::Duration;

use devc_vault_tests::docker::Docker;
use devc_vault_tests::fixture::{Fixture, assert_no_secret};
use devc_vault_tests::image::OciImage;
use devc_vault_tests::podman::Podman;
use devc_vault_tests::process;
use devc_vault_tests::registry::Registry;
use devc_vault_tests::skopeo::{Auth, Skopeo};

const USER: &str = "devc-tester";
// JSON- and HTML-special characters, so every escaped form is checked too.
const PASS: &str = "Tr0ub4dor&<3>\"pw";

fn unauthorized(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "401",
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
    ]
    .iter()
    .any(|s| t.contains(s))
}

#[test]
fn docker_and_skopeo_through_the_vault() {
    if !(Registry::available()
        && OciImage::available()
        && Skopeo::available()
        && Docker::available())
    {
        return;
    }
    let Some(v) = Fixture::new("docker-vault") else {
        return;
    };
    let reg = Registry::start(USER, PASS);
    let img = OciImage::busybox();
    let reference = img.push(&reg, "devc/busybox");
    let host = reg.host().to_owned();

    // The docker CLI's config dir holds the vault; install points it at our helper.
    let mut docker = Docker::new();
    docker.prepend_path(v.bin_dir());
    docker.envs(v.vars());
    // The docker CLI's own DOCKER_CONFIG is where install writes.
    v.run(
        v.cli_cmd(&["install", "--docker-config"])
            .arg(docker.config_dir()),
        None,
    )
    .assert_success("devc-vault install");
    let config = docker.read_config();
    assert_eq!(config["credsStore"], "devc-encrypted", "{config}");

    // 1. Nothing stored: the registry refuses (401), and so does every client.
    let anon = reg
        .get("/v2/devc/busybox/manifests/latest", None)
        .expect("GET manifest");
    assert_eq!(anon.status, 401, "{}", anon.head);
    let out = docker.manifest_inspect(&reference);
    assert!(
        !out.success() && unauthorized(&out.stderr_str()),
        "{}",
        out.describe()
    );

    // 2. A wrong password at login stores nothing.
    let vault_before = fs::read(v.vault()).expect("vault");
    let out = docker.login(&host, USER, "wrong-password");
    assert!(!out.success(), "{}", out.describe());
    assert!(v.list_docker().is_empty(), "{:?}", v.list_docker());
    assert_eq!(
        fs::read(v.vault()).expect("vault"),
        vault_before,
        "vault rewritten by a failed login"
    );

    // 3. docker login stores into the encrypted vault, in no readable form.
    let out = docker.login(&host, USER, PASS);
    out.assert_success("docker login");
    assert_eq!(v.list_docker(), [(host.clone(), USER.to_owned())]);
    let sealed = fs::read(v.vault()).expect("vault");
    assert_no_secret(&sealed, PASS, "the vault file");
    assert_no_secret(&sealed, &format!("{USER}:{PASS}"), "the vault file");
    let config_bytes = fs::read(docker.config_path()).expect("config.json");
    assert_no_secret(&config_bytes, PASS, "config.json");
    assert_no_secret(&config_bytes, &format!("{USER}:{PASS}"), "config.json");
    for entry in fs::read_dir(v.docker_config()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            assert_no_secret(
                &fs::read(&path).expect("read"),
                PASS,
                &path.display().to_string(),
            );
        }
    }

    // 4. docker manifest inspect reads through `get`.
    let out = docker.manifest_inspect(&reference);
    out.assert_success("docker manifest inspect");
    assert!(
        out.stdout_str().contains("schemaVersion"),
        "{}",
        out.describe()
    );

    // 5. skopeo, which ignores credsStore, reads through credHelpers.
    let mut skopeo = Skopeo::new();
    skopeo.prepend_path(v.bin_dir());
    skopeo.envs(v.vars());
    fs::write(
        skopeo.docker_config_dir().join("config.json"),
        serde_json::json!({"credsStore": "devc-encrypted"}).to_string(),
    )
    .expect("config");
    let out = skopeo.inspect(&reference, Auth::Ambient);
    assert!(
        !out.success(),
        "credsStore alone must not be enough for skopeo\n{}",
        out.describe()
    );
    let out = v.run(
        v.cli_cmd(&["install", "--docker-config"])
            .arg(skopeo.docker_config_dir()),
        None,
    );
    out.assert_success("install for skopeo");
    let skopeo_config: serde_json::Value = serde_json::from_slice(
        &fs::read(skopeo.docker_config_dir().join("config.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(
        skopeo_config["credHelpers"][&host], "devc-encrypted",
        "{skopeo_config}"
    );
    let out = skopeo.inspect(&reference, Auth::Ambient);
    out.assert_success("skopeo inspect via credHelpers");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert_eq!(info["Os"], "linux");
    let copy_dest = reg.reference("devc/copied", "v1");
    skopeo
        .copy_to_registry(&img.oci_ref(), &copy_dest, Auth::Ambient)
        .assert_success("skopeo copy via credHelpers");
    skopeo
        .inspect(&copy_dest, Auth::Ambient)
        .assert_success("skopeo inspect the copy");

    // 6. docker logout erases it, and reads fail again.
    docker.logout(&host).assert_success("docker logout");
    assert!(v.list_docker().is_empty(), "{:?}", v.list_docker());
    let out = docker.manifest_inspect(&reference);
    assert!(
        !out.success() && unauthorized(&out.stderr_str()),
        "{}",
        out.describe()
    );
    let out = skopeo.inspect(&reference, Auth::Ambient);
    assert!(!out.success(), "{}", out.describe());
}

/// podman (containers/image, like skopeo: `credHelpers` only) logs in,
/// pulls and logs out through our helper.
#[test]
fn podman_login_pull_logout_through_cred_helpers() {
    if !(Registry::available() && OciImage::available() && Podman::available()) {
        return;
    }
    let Some(v) = Fixture::new("docker-vault") else {
        return;
    };
    let reg = Registry::start(USER, PASS);
    let img = OciImage::busybox();
    let reference = img.push(&reg, "devc/busybox");
    let host = reg.host().to_owned();
    let pm = Podman::new(&img);

    let authfile = v.path().join("podman-auth.json");
    fs::write(
        &authfile,
        serde_json::json!({"credHelpers": {&host: "devc-encrypted"}}).to_string(),
    )
    .expect("authfile");
    let podman = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = pm.command();
        cmd.args(args).arg("--authfile").arg(&authfile);
        // The built binaries are on the fixture's PATH.
        v.apply(&mut cmd);
        process::run(&mut cmd, stdin, Duration::from_secs(120)).expect("podman")
    };

    let out = podman(&["pull", "--quiet", "--tls-verify=false", &reference], None);
    assert!(
        !out.success() && unauthorized(&out.stderr_str()),
        "{}",
        out.describe()
    );

    let out = podman(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            USER,
            "--password-stdin",
            &host,
        ],
        Some(PASS.as_bytes()),
    );
    out.assert_success("podman login");
    assert_eq!(v.list_docker(), [(host.clone(), USER.to_owned())]);
    assert_no_secret(
        &fs::read(&authfile).expect("authfile"),
        PASS,
        "podman's authfile",
    );
    assert_no_secret(&fs::read(v.vault()).expect("vault"), PASS, "the vault file");

    podman(&["pull", "--quiet", "--tls-verify=false", &reference], None)
        .assert_success("podman pull through get");

    podman(&["logout", &host], None).assert_success("podman logout");
    assert!(v.list_docker().is_empty(), "{:?}", v.list_docker());
    let out = podman(&["pull", "--quiet", "--tls-verify=false", &reference], None);
    assert!(
        !out.success() && unauthorized(&out.stderr_str()),
        "{}",
        out.describe()
    );
}
