//! Smoke tests for the end-to-end test infrastructure itself: each piece of
//! `devc_vault_tests` is started, checked against the real tool, and
//! stopped. Missing tools skip the test (or fail it under `CI=true`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use devc_vault_tests::docker::{Docker, FakeHelper};
use devc_vault_tests::image::{self, OciImage};
use devc_vault_tests::podman::{self, Podman};
use devc_vault_tests::process;
use devc_vault_tests::registry::Registry;
use devc_vault_tests::scratch::{self, Scratch};
use devc_vault_tests::skopeo::{Auth, Skopeo};
use devc_vault_tests::tools;

const USER: &str = "tester";
const PASS: &str = "s3cret-pw";

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let v = f();
    eprintln!("[timing] {label}: {:?}", start.elapsed());
    v
}

/// `process::run` captures output, feeds stdin, kills on overrun and notices
/// a grandchild holding stdout open.
#[test]
fn process_run_timeouts_and_pipes() {
    let out = process::run(
        Command::new("cat").arg("-"),
        Some(b"hello"),
        Duration::from_secs(5),
    )
    .expect("cat");
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"hello");

    let start = Instant::now();
    let out = process::run(
        Command::new("sleep").arg("30"),
        None,
        Duration::from_millis(300),
    )
    .expect("sleep");
    assert!(out.timed_out && !out.success(), "{}", out.describe());
    assert!(start.elapsed() < Duration::from_secs(5));

    let out = process::run(
        Command::new("sh").args(["-c", "sleep 30 & echo started"]),
        None,
        Duration::from_millis(500),
    )
    .expect("sh");
    assert!(
        out.stdio_held_open && !out.timed_out && !out.success(),
        "{}",
        out.describe()
    );
    assert_eq!(out.stdout_str().trim(), "started");
}

/// The binary locator finds this crate's own bin next to the test binary.
#[test]
fn tools_locate_binaries() {
    let probe = tools::bin_path("devc-test-probe");
    assert_eq!(probe, Path::new(env!("CARGO_BIN_EXE_devc-test-probe")));
    assert!(tools::require_bin("devc-test-probe").is_some());
    assert!(tools::find_tool("sh").is_some());
    assert!(tools::find_tool("definitely-not-a-tool-xyz").is_none());
}

/// The registry starts, enforces basic auth, and is gone after drop.
#[test]
fn registry_starts_and_requires_auth() {
    if !Registry::available() {
        return;
    }
    let reg = timed("registry start", || Registry::start(USER, PASS));
    let anon = reg.get("/v2/", None).expect("GET /v2/");
    assert_eq!(anon.status, 401, "{}", anon.head);
    assert!(
        anon.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic ")),
        "{}",
        anon.head
    );
    let wrong = reg
        .get("/v2/", Some((USER, "wrong")))
        .expect("GET /v2/ wrong pw");
    assert_eq!(wrong.status, 401);
    let ok = reg
        .get("/v2/", Some((USER, PASS)))
        .expect("GET /v2/ with creds");
    assert_eq!(ok.status, 200, "{}", ok.head);

    let host = reg.host().to_owned();
    drop(reg);
    assert!(
        TcpStream::connect(&host).is_err(),
        "registry still listening after drop"
    );
}

/// The busybox image builds offline, pushes with skopeo, and inspects only
/// with credentials.
#[test]
fn image_builds_pushes_and_inspects() {
    if !(Registry::available() && OciImage::available() && Skopeo::available()) {
        return;
    }
    let reg = Registry::start(USER, PASS);
    let img = timed("umoci build", OciImage::busybox);
    let reference = timed("skopeo push", || img.push(&reg, "devc/busybox"));
    assert_eq!(reference, format!("{}/devc/busybox:latest", reg.host()));

    let skopeo = Skopeo::new();
    let out = timed("skopeo inspect", || {
        skopeo.inspect(&reference, Auth::Creds(&reg.creds()))
    });
    out.assert_success("skopeo inspect --creds");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert_eq!(info["RepoTags"], serde_json::json!(["latest"]));
    assert_eq!(info["Os"], "linux");

    let anon = skopeo.inspect(&reference, Auth::Ambient);
    assert!(
        !anon.success(),
        "anonymous inspect must fail\n{}",
        anon.describe()
    );
    assert!(
        anon.stderr_str().contains("authentication required"),
        "{}",
        anon.describe()
    );
}

fn podman_setup() -> Option<(OciImage, Podman)> {
    if !(OciImage::available() && Podman::available()) {
        return None;
    }
    let img = OciImage::busybox();
    let pm = timed("podman load (pull oci:)", || Podman::new(&img));
    Some((img, pm))
}

/// A container runs as uid 1000 with env, stdin, mounts, and exit codes.
#[test]
fn podman_runs_busybox_as_uid_1000() {
    let Some((_img, pm)) = podman_setup() else {
        return;
    };
    let out = timed("podman run id", || pm.run(&["id"]).user(1000, 1000).exec());
    out.assert_success("podman run id");
    assert_eq!(
        out.stdout_str().trim(),
        "uid=1000(dev) gid=1000(dev) groups=1000(dev)"
    );

    let dir = Scratch::new("podman-mnt");
    fs::write(dir.join("in.txt"), "from host\n").expect("write");
    scratch::set_mode(dir.path(), 0o777);
    let out = pm
        .run(&[
            "sh",
            "-c",
            "cat /m/in.txt; echo \"$FOO\"; cat; echo written > /m/out.txt; exit 7",
        ])
        .user(1000, 1000)
        .volume(dir.path(), "/m")
        .env("FOO", "bar")
        .stdin("piped\n")
        .exec();
    assert_eq!(out.code(), Some(7), "{}", out.describe());
    assert_eq!(out.stdout_str(), "from host\nbar\npiped\n");
    assert_eq!(
        fs::read_to_string(dir.join("out.txt")).expect("out.txt"),
        "written\n"
    );

    let out = pm
        .run(&["sh", "-c", "echo x > /m/ro.txt"])
        .volume_ro(dir.path(), "/m")
        .exec();
    assert!(
        !out.success(),
        "read-only mount was writable\n{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("Read-only file system"),
        "{}",
        out.describe()
    );
}

/// A host glibc binary (coreutils `stat`) and this crate's Rust probe run
/// in the busybox container as uid 1000 via the host-libs mounts, and the
/// probe reaches a unix socket the host listens on in a bind-mounted dir.
#[test]
fn podman_host_binary_reaches_host_unix_socket() {
    let Some((_img, pm)) = podman_setup() else {
        return;
    };
    let probe = env!("CARGO_BIN_EXE_devc-test-probe");

    // Everything the probe links must come from the mounted dirs.
    let ldd = process::run_ok(
        Command::new("ldd").arg(probe),
        None,
        Duration::from_secs(10),
        "ldd",
    );
    let mounts = podman::host_lib_mounts();
    for line in ldd.stdout_str().lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            assert!(
                mounts
                    .iter()
                    .any(|(_, ctr)| Path::new(path).starts_with(ctr)),
                "{path} is not under a host-lib mount {mounts:?}"
            );
        }
    }

    let dir = Scratch::new("agent");
    let sock_dir = dir.mkdir("sockdir", 0o700);
    scratch::set_owner(&sock_dir, 1000, 1000);
    let sock = sock_dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind unix socket");
    scratch::set_owner(&sock, 1000, 1000);
    listener.set_nonblocking(true).expect("nonblocking");
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).expect("blocking");
                    conn.set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    let mut line = String::new();
                    BufReader::new(&conn)
                        .read_line(&mut line)
                        .expect("read request");
                    conn.write_all(format!("pong:{}", line.trim()).as_bytes())
                        .expect("reply");
                    let _ = tx.send(line.trim().to_owned());
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });

    let out = timed("podman run host stat", || {
        pm.run(&[
            "/usr/local/bin/stat",
            "-c",
            "%U %u %F",
            "/run/devc-vault/agent.sock",
        ])
        .user(1000, 1000)
        .host_binary("/usr/bin/stat", "/usr/local/bin/stat")
        .volume(&sock_dir, "/run/devc-vault")
        .exec()
    });
    out.assert_success("host stat in container");
    assert_eq!(out.stdout_str().trim(), "dev 1000 socket");

    let out = timed("podman run probe connect", || {
        pm.run(&[
            "/usr/local/bin/devc-test-probe",
            "connect",
            "/run/devc-vault/agent.sock",
            "ping",
        ])
        .user(1000, 1000)
        .host_binary(probe, "/usr/local/bin/devc-test-probe")
        .volume(&sock_dir, "/run/devc-vault")
        .exec()
    });
    out.assert_success("probe connect in container");
    assert_eq!(out.stdout_str().trim(), "pong:ping");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server saw request"),
        "ping"
    );
    server.join().expect("server thread");

    let out = pm
        .run(&["/usr/local/bin/devc-test-probe", "ids"])
        .user(1000, 1000)
        .host_binary(probe, "/usr/local/bin/devc-test-probe")
        .exec();
    out.assert_success("probe ids");
    assert_eq!(out.stdout_str().trim(), "uid=1000 gid=1000");
}

/// An overrunning container is killed at its timeout, and dropping the
/// Podman instance leaves no container, mount or directory behind.
#[test]
fn podman_kills_overrun_and_cleans_up() {
    let Some((_img, pm)) = podman_setup() else {
        return;
    };
    let start = Instant::now();
    let out = pm
        .run(&["sleep", "60"])
        .timeout(Duration::from_secs(2))
        .exec();
    let took = start.elapsed();
    eprintln!("[timing] podman overrun kill: {took:?}");
    assert!(out.timed_out, "{}", out.describe());
    assert!(took < Duration::from_secs(15), "kill took {took:?}");

    // A container still running when the Podman instance is dropped.
    let root = {
        let mut ps = pm.command();
        ps.args(["ps", "--all", "--quiet"]);
        let listed = process::run_ok(&mut ps, None, Duration::from_secs(30), "podman ps");
        assert_eq!(listed.stdout_str().trim(), "", "--rm left a container");
        let mut bg = pm.command();
        bg.args([
            "run",
            "--detach",
            "--network=none",
            "--pull=never",
            "--log-driver=none",
        ]);
        bg.args(["--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024"]);
        bg.arg(pm.image_id()).args(["sleep", "60"]);
        process::run_ok(
            &mut bg,
            None,
            Duration::from_secs(30),
            "podman run --detach",
        );
        let mut info = pm.command();
        info.args(["info", "--format", "{{.Store.GraphRoot}}"]);
        let out = process::run_ok(&mut info, None, Duration::from_secs(30), "podman info");
        std::path::PathBuf::from(out.stdout_str().trim())
    };
    let scratch = root.parent().expect("graph root parent").to_path_buf();
    timed("podman drop", || drop(pm));
    assert!(!scratch.exists(), "{} left behind", scratch.display());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mountinfo.contains(&*scratch.to_string_lossy()),
        "mounts left under {}",
        scratch.display()
    );
}

/// docker login/manifest inspect/logout go through `credsStore` (client-
/// side, no daemon): store, get, erase.
#[test]
fn docker_cli_calls_credential_helper() {
    if !(Registry::available()
        && OciImage::available()
        && Skopeo::available()
        && Docker::available())
    {
        return;
    }
    let reg = Registry::start(USER, PASS);
    let img = OciImage::busybox();
    let reference = img.push(&reg, "devc/busybox");
    let helper = FakeHelper::new("fake", USER, PASS);
    let mut docker = Docker::new();
    docker.prepend_path(helper.bin_dir());
    docker.write_config(&serde_json::json!({ "credsStore": helper.name() }));

    let out = timed("docker login", || docker.login(reg.host(), USER, PASS));
    out.assert_success("docker login");
    let calls = helper.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].op, "store");
    let stored: serde_json::Value =
        serde_json::from_str(&calls[0].input).expect("store input is JSON");
    assert_eq!(stored["ServerURL"], reg.host());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASS);
    let config = docker.read_config();
    assert_eq!(
        config["auths"][reg.host()],
        serde_json::json!({}),
        "{config}"
    );

    helper.clear();
    let out = timed("docker manifest inspect", || {
        docker.manifest_inspect(&reference)
    });
    out.assert_success("docker manifest inspect");
    assert!(out.stdout_str().contains("schemaVersion"));
    let calls = helper.calls();
    assert!(
        !calls.is_empty() && calls.iter().all(|c| c.op == "get" && c.input == reg.host()),
        "{calls:?}"
    );

    helper.clear();
    docker.logout(reg.host()).assert_success("docker logout");
    let calls = helper.calls();
    assert!(calls.iter().all(|c| c.op == "erase"), "{calls:?}");
    let erased: Vec<&str> = calls.iter().map(|c| c.input.as_str()).collect();
    for form in [
        reg.host().to_owned(),
        format!("http://{}", reg.host()),
        format!("https://{}", reg.host()),
    ] {
        assert!(
            erased.contains(&form.as_str()),
            "{form} not erased: {erased:?}"
        );
    }

    // A wrong password fails client-side without calling store.
    helper.clear();
    let out = docker.login(reg.host(), USER, "wrong");
    assert!(
        !out.success() && out.stderr_str().contains("401"),
        "{}",
        out.describe()
    );
    assert!(helper.calls().is_empty(), "{:?}", helper.calls());
}

/// skopeo calls a helper named in `credHelpers` (via --authfile or the
/// ambient DOCKER_CONFIG) and ignores `credsStore`.
#[test]
fn skopeo_calls_cred_helpers_only() {
    if !(Registry::available() && OciImage::available() && Skopeo::available()) {
        return;
    }
    let reg = Registry::start(USER, PASS);
    let img = OciImage::busybox();
    let reference = img.push(&reg, "devc/busybox");
    let helper = FakeHelper::new("fake", USER, PASS);
    let mut skopeo = Skopeo::new();
    skopeo.prepend_path(helper.bin_dir());
    let files = Scratch::new("authfiles");

    let helpers = files.write(
        "helpers.json",
        serde_json::json!({ "credHelpers": { reg.host(): helper.name() } }).to_string(),
        0o600,
    );
    let out = timed("skopeo inspect via credHelpers", || {
        skopeo.inspect(&reference, Auth::AuthFile(&helpers))
    });
    out.assert_success("skopeo --authfile credHelpers");
    let ops = helper.ops();
    assert!(!ops.is_empty() && ops.iter().all(|o| o == "get"), "{ops:?}");

    helper.clear();
    let store_only = files.write(
        "store.json",
        serde_json::json!({ "credsStore": helper.name() }).to_string(),
        0o600,
    );
    let out = skopeo.inspect(&reference, Auth::AuthFile(&store_only));
    assert!(
        !out.success(),
        "credsStore alone should not authenticate skopeo\n{}",
        out.describe()
    );
    assert!(
        helper.calls().is_empty(),
        "skopeo called credsStore: {:?}",
        helper.calls()
    );

    // --authfile is not exclusive: $DOCKER_CONFIG/config.json is consulted too.
    fs::write(
        skopeo.docker_config_dir().join("config.json"),
        serde_json::json!({ "credHelpers": { reg.host(): helper.name() } }).to_string(),
    )
    .expect("write config.json");
    let empty = files.write("empty.json", "{}", 0o600);
    let out = skopeo.inspect(&reference, Auth::AuthFile(&empty));
    out.assert_success("skopeo falls back to DOCKER_CONFIG");
    assert!(helper.ops().iter().any(|o| o == "get"));
    helper.clear();
    skopeo
        .inspect(&reference, Auth::Ambient)
        .assert_success("skopeo with ambient DOCKER_CONFIG");
    assert!(helper.ops().iter().any(|o| o == "get"));

    // ... and so is $XDG_CONFIG_HOME/containers/auth.json.
    fs::remove_file(skopeo.docker_config_dir().join("config.json")).expect("rm config.json");
    let xdg = skopeo.xdg_config_home().join("containers");
    fs::create_dir_all(&xdg).expect("mkdir xdg containers");
    fs::write(
        xdg.join("auth.json"),
        serde_json::json!({ "credHelpers": { reg.host(): helper.name() } }).to_string(),
    )
    .expect("write auth.json");
    helper.clear();
    skopeo
        .inspect(&reference, Auth::AuthFile(&empty))
        .assert_success("skopeo falls back to XDG_CONFIG_HOME");
    assert!(helper.ops().iter().any(|o| o == "get"));
}

/// The image contains what the other tests rely on.
#[test]
fn image_has_expected_layout() {
    if !OciImage::available() {
        return;
    }
    assert_eq!(image::is_static_elf(Path::new(image::BUSYBOX)), Some(true));
    let img = OciImage::busybox();
    let index: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(img.layout().join("index.json")).expect("index.json"),
    )
    .expect("json");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
}
