//! Issue 10, scenario 2 (and 6 for its containers): the static builds in
//! images the glibc build cannot serve, started by the devcontainer CLI with
//! the binaries bind-mounted (`--binaries mount`): Debian bullseye (glibc
//! 2.31; its own docker CLI pulls the private image's manifest) and a
//! busybox-only image (no libc at all, no docker CLI: the docker helper
//! answers `get` and the manifest is fetched with its credential, as a
//! docker client does, with busybox's own tools). The Feature's install.sh
//! is run in the busybox image too (POSIX sh, no `install`), and refuses a
//! binary whose SHA-256 does not match.

mod devcontainer_support;

use std::fs;
use std::time::{Duration, Instant};

use devc_vault_tests::debian_image::Image;
use devc_vault_tests::devcontainer::key_file_from_output;
use devc_vault_tests::registry::Registry;
use devcontainer_support::*;

const MOUNT: [&str; 7] = [
    "--key",
    "file",
    "--seal",
    "--binaries",
    "mount",
    "--binaries-dir",
    "dist/x86_64",
];

#[test]
fn devcontainer_static_binaries_in_bullseye_and_busybox() {
    let start = Instant::now();
    // Bindings drop in reverse: the store (and its containers) before the
    // scratch directory it lives in.
    let Some(Scenario {
        s,
        host,
        store,
        cli,
    }) = Scenario::start("dc-oldlibc")
    else {
        return;
    };
    let (Some(bullseye), Some(busybox)) =
        (store.import(Image::Bullseye), store.import(Image::Busybox))
    else {
        return;
    };
    let reg = Registry::start(REG_USER, REG_PASS);
    let reference = push_private_image(&reg);
    host.docker_credential(&reg);
    let mut needles = password_needles();

    // Bullseye: glibc 2.31, which the glibc build (GLIBC_2.34) cannot serve.
    let ws = host.plain_workspace("old-glibc", &devcontainer_json(&bullseye, ""));
    let setup = host.setup(&ws, &MOUNT, None);
    needles.extend(key_needles("key secret", &key_file_from_output(&setup)));
    let config = fs::read_to_string(ws.join(".devcontainer/devcontainer.json")).expect("config");
    assert!(
        config.contains("target=/opt/devc-vault/bin,type=bind,readonly=true")
            && !config.contains("./devc-vault"),
        "{config}"
    );
    let id = store.up(&cli, &host.user, &ws);
    let exec = |cmd: &[&str]| store.exec(&cli, &host.user, &ws, cmd, None);
    let libc = exec(&["sh", "-c", "ldd --version | head -1; command -v devc-vault"]);
    assert!(
        libc.success()
            && libc.stdout_str().contains("2.31")
            && libc.stdout_str().contains("/opt/devc-vault/bin/devc-vault"),
        "{}",
        libc.describe()
    );
    let doctor = exec(&["devc-vault", "doctor"]);
    assert!(
        doctor.success() && doctor.stdout_str().contains("all checks passed"),
        "{}",
        doctor.describe()
    );
    assert_pulled(&pull(&store, &cli, &host.user, &ws, &reference), "bullseye");
    assert_nothing_at_rest(&store, &id, &needles, &s);

    // busybox: no libc, no docker CLI, no git.
    let ws = host.plain_workspace("no-libc", &devcontainer_json(&busybox, ""));
    let setup = host.setup(&ws, &MOUNT, None);
    needles.extend(key_needles("key secret", &key_file_from_output(&setup)));
    let id = store.up(&cli, &host.user, &ws);
    let exec = |cmd: &[&str]| store.exec(&cli, &host.user, &ws, cmd, None);
    let bare = exec(&[
        "sh",
        "-c",
        "ls /lib /lib64 /usr/lib 2>/dev/null | grep -c libc; command -v docker git; devc-vault --version",
    ]);
    assert!(
        bare.stdout_str().starts_with("0\n") && bare.stdout_str().contains("devc-vault 0."),
        "the busybox image is not bare, or devc-vault does not run in it\n{}",
        bare.describe()
    );
    let doctor = exec(&["devc-vault", "doctor"]);
    assert!(
        doctor.success() && doctor.stdout_str().contains("all checks passed"),
        "{}",
        doctor.describe()
    );
    // What the docker CLI does for a pull: ask the helper (stdin: the
    // registry), then send its answer as basic auth. The secret only ever
    // sits in shell variables. The helper escapes JSON as Go does (`&<>` as
    // \u00XX), which this small decoder undoes.
    let (host_port, path) = reference.split_once('/').expect("HOST/name:tag");
    let (name, tag) = path.rsplit_once(':').expect("name:tag");
    let port = reg.port();
    let script = format!(
        r#"set -e
creds=$(printf %s '{host_port}' | docker-credential-devc-encrypted get)
user=$(printf %s "$creds" | sed -n 's/.*"Username":"\([^"]*\)".*/\1/p')
secret=$(printf %s "$creds" | sed -n 's/.*"Secret":"\(.*\)"}}$/\1/p' | sed 's/\\u0026/\&/g; s/\\u003c/</g; s/\\u003e/>/g; s/\\"/"/g; s/\\\\/\\/g')
auth=$(printf '%s:%s' "$user" "$secret" | base64 | tr -d '\n')
printf 'GET /v2/{name}/manifests/{tag} HTTP/1.0\r\nHost: {host_port}\r\nAuthorization: Basic %s\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\n\r\n' "$auth" \
  | nc -w 10 127.0.0.1 {port} > /tmp/manifest.http
head -1 /tmp/manifest.http
grep -c schemaVersion /tmp/manifest.http
"#
    );
    let fetched = exec(&["sh", "-c", &script]);
    assert!(
        fetched.success()
            && fetched.stdout_str().starts_with("HTTP/1.0 200 ")
            && fetched.stdout_str().contains("\n1\n"),
        "busybox pull\n{}",
        fetched.describe()
    );
    // Without the helper's answer the registry refuses: the 200 is the vault's doing.
    let anonymous = exec(&[
        "sh",
        "-c",
        &format!(
            "printf 'GET /v2/{name}/manifests/{tag} HTTP/1.0\\r\\n\\r\\n' | nc -w 10 127.0.0.1 {port} | head -1"
        ),
    ]);
    assert!(
        anonymous.stdout_str().starts_with("HTTP/1.0 401 "),
        "{}",
        anonymous.describe()
    );
    assert_nothing_at_rest(&store, &id, &needles, &s);

    // The Feature's install.sh in the busybox image: POSIX sh, cp + chmod.
    let feature = host.checkout.join("features/devc-vault");
    let image = busybox.as_str();
    let mount = format!("{}:/feature:ro", feature.display());
    let run = |mount: &str| {
        store.podman(
            &[
                "run",
                "--rm",
                "-v",
                mount,
                image,
                "sh",
                "-c",
                "sh /feature/install.sh && /usr/local/bin/devc-vault --version && /usr/local/bin/git-credential-devc-encrypted --version",
            ],
            Duration::from_secs(120),
        )
    };
    let installed = run(&mount);
    assert!(
        installed.success()
            && installed.stdout_str().contains("installed devc-vault")
            && installed.stdout_str().contains("devc-vault 0."),
        "{}",
        installed.describe()
    );
    // A binary that does not match SHA256SUMS is refused.
    let bad = s.join("bad-feature");
    host.user.copy_tree(&feature, &bad);
    let victim = bad.join("bin/x86_64/docker-credential-devc-encrypted");
    let mut bytes = fs::read(&victim).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&victim, bytes).expect("write");
    let refused = run(&format!("{}:/feature:ro", bad.display()));
    assert!(
        !refused.success() && refused.stderr_str().contains("does not match its SHA-256"),
        "{}",
        refused.describe()
    );
    eprintln!("[timing] whole test: {:?}", start.elapsed());
}
