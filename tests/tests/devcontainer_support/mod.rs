//! Shared by the `devcontainer_*` tests: a host user as a developer has one
//! (a docker config and git's `store` helper holding credentials in clear, a
//! workspace cloned from the git server, a checkout of this repository with
//! the built Feature and `dist/`), the README's "Dev container" commands run
//! word for word, and the "nothing at rest" scan of a container.
#![allow(dead_code)] // each test target uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devc_vault_tests::debian_image::{self, Dist};
use devc_vault_tests::devcontainer::{self as dc, HostUser, PodmanStore};
use devc_vault_tests::git_http::GitHttpServer;
use devc_vault_tests::image::OciImage;
use devc_vault_tests::leak_scan::{self, Needle};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::registry::{Registry, base64};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::skopeo::Skopeo;

/// The registry's user.
pub const REG_USER: &str = "devc-tester";
/// Its password: JSON-, HTML- and URL-special characters, so every escaped
/// form is scanned for too.
pub const REG_PASS: &str = "Reg-p4ss&<w>/\"q1";
/// The git server's user.
pub const GIT_USER: &str = "gitter";
/// Its password.
pub const GIT_PASS: &str = "G1t-s3cr3t&<x>/y2";
/// The private image's repository name.
pub const IMAGE_NAME: &str = "private/busybox";
/// Cheap Argon2id for passphrase slots in debug builds.
pub const KDF_COST: &str = "m=8192,t=1,p=1";

/// The README's "Dev container" commands.
#[derive(Debug)]
pub struct ReadmeFlow {
    /// `devc-vault devcontainer ...`, as words.
    pub setup: Vec<String>,
    /// `devcontainer up ...`, as words.
    pub up: Vec<String>,
}

/// The workspace the README's commands name.
pub const README_WORKSPACE: &str = "~/src/myproj";

impl ReadmeFlow {
    /// Reads the first `sh` block of README.md's "## Dev container" section.
    pub fn load() -> ReadmeFlow {
        let path = debian_image::repo_root().join("README.md");
        let text = fs::read_to_string(&path).expect("read README.md");
        let section = text
            .split("\n## ")
            .find(|s| s.starts_with("Dev container\n"))
            .expect("README.md has a \"## Dev container\" section");
        let block = section
            .split("```sh\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("the section has an sh block");
        let words = |prefix: &str| -> Vec<String> {
            block
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("the README's block has no `{prefix}` line:\n{block}"))
                .split('#')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        ReadmeFlow {
            setup: words("devc-vault devcontainer "),
            up: words("devcontainer up "),
        }
    }

    /// The setup command's arguments after `devc-vault`, with the README's
    /// workspace replaced by `ws`.
    pub fn setup_args(&self, ws: &Path) -> Vec<String> {
        self.setup[1..]
            .iter()
            .map(|w| {
                if w == README_WORKSPACE {
                    ws.display().to_string()
                } else {
                    w.clone()
                }
            })
            .collect()
    }

    /// Checks that `devcontainer up` is given just the workspace.
    pub fn check_up(&self) {
        assert_eq!(
            self.up,
            ["devcontainer", "up", "--workspace-folder", README_WORKSPACE],
            "the README's up line changed; update the tests"
        );
    }
}

/// Where every rootful scenario starts: the devcontainer CLI, a scratch
/// directory, the host user (uid 1000, like the images' `vscode`) with its
/// `Host`, and a podman store in the scratch directory.
#[derive(Debug)]
pub struct Scenario {
    // Fields drop in this order (the store removes its containers before
    // the scratch directory it lives in goes); a destructuring `let` drops
    // its bindings in reverse, so name `s` before `store` there.
    /// Podman's storage for this scenario.
    pub store: PodmanStore,
    /// The developer's machine.
    pub host: Host,
    /// Everything the scenario writes.
    pub s: Scratch,
    /// The devcontainer CLI.
    pub cli: PathBuf,
}

impl Scenario {
    /// `None` when a tool it needs is missing (a printed skip outside CI, a
    /// failure under `CI=true`).
    pub fn start(label: &str) -> Option<Scenario> {
        if !(dc::available()
            && Registry::available()
            && OciImage::available()
            && Skopeo::available())
        {
            return None;
        }
        let cli = debian_image::devcontainer_cli()?;
        let dist = debian_image::dist()?;
        let s = dc::scratch(label);
        let user = HostUser::new(s.path(), 1000, 1000)?;
        let host = Host::new(&s, user, &dist);
        let store = PodmanStore::new(&s.join("podman"), None);
        Some(Scenario {
            store,
            host,
            s,
            cli,
        })
    }
}

/// A developer's machine: the host user, a directory of its own for
/// workspaces, and a checkout of this repository holding the built Feature
/// and `dist/` (copies, readable by the user wherever the real checkout is).
#[derive(Debug)]
pub struct Host {
    /// The user.
    pub user: HostUser,
    /// Its workspaces' parent directory.
    pub src: PathBuf,
    /// Its checkout of this repository (`features/devc-vault`, `dist/`).
    pub checkout: PathBuf,
}

impl Host {
    /// Sets up `user` in `s` with copies of the Feature and `dist/`.
    pub fn new(s: &Scratch, user: HostUser, dist: &Dist) -> Host {
        let src = s.join(format!("src-{}", user.uid));
        let checkout = s.join(format!("checkout-{}", user.uid));
        for d in [&src, &checkout] {
            fs::create_dir_all(d).expect("mkdir");
            devc_vault_tests::scratch::set_owner(d, user.uid, user.gid);
        }
        fs::create_dir_all(checkout.join("features")).expect("mkdir features");
        user.copy_tree(
            dist.feature_dir(),
            &checkout.join("features").join("devc-vault"),
        );
        user.copy_tree(dist.dir(), &checkout.join("dist"));
        devc_vault_tests::scratch::set_owner_recursive(&checkout, user.uid, user.gid)
            .expect("chown checkout");
        Host {
            user,
            src,
            checkout,
        }
    }

    /// `~/.docker/config.json` with the registry's credential in clear.
    pub fn docker_credential(&self, reg: &Registry) {
        let auth = base64(format!("{}:{}", reg.user(), reg.pass()).as_bytes());
        let config = serde_json::json!({ "auths": { reg.host(): { "auth": auth } } });
        self.user
            .write(".docker/config.json", config.to_string(), 0o600);
    }

    /// git's `store` helper holding the server's credential.
    pub fn git_credential(&self, server: &GitHttpServer, user: &str, pass: &str) {
        self.user.write(
            ".gitconfig",
            "[credential]\n\thelper = store\n[user]\n\tname = Dev\n\temail = dev@example.invalid\n[init]\n\tdefaultBranch = main\n",
            0o644,
        );
        let pct: String = pass
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        self.user.write(
            ".git-credentials",
            format!("http://{user}:{pct}@{}\n", server.host()),
            0o600,
        );
    }

    /// A workspace cloned from `server` (through the store helper) with
    /// `.devcontainer/devcontainer.json`.
    pub fn clone_workspace(&self, server: &GitHttpServer, name: &str, json: &str) -> PathBuf {
        let ws = self.src.join(name);
        self.user.run_ok(
            "git",
            &["clone", "-q", &server.url(), &ws.to_string_lossy()],
            None,
        );
        self.user.run_ok(
            "mkdir",
            &[&ws.join(".devcontainer").to_string_lossy()],
            None,
        );
        self.write_config(&ws, json);
        ws
    }

    /// A workspace that is no git repository.
    pub fn plain_workspace(&self, name: &str, json: &str) -> PathBuf {
        let ws = self.src.join(name);
        self.user.run_ok(
            "mkdir",
            &["-p", &ws.join(".devcontainer").to_string_lossy()],
            None,
        );
        self.write_config(&ws, json);
        ws
    }

    fn write_config(&self, ws: &Path, json: &str) {
        let p = ws.join(".devcontainer").join("devcontainer.json");
        fs::write(&p, json).expect("write devcontainer.json");
        devc_vault_tests::scratch::set_owner(&p, self.user.uid, self.user.gid);
    }

    /// `devc-vault ARGS` as the user, from its checkout of this repository.
    pub fn devc_vault(&self, args: &[String], stdin: Option<&[u8]>) -> Outcome {
        let mut c = self.user.command(self.user.bin.join("devc-vault"));
        c.args(args).current_dir(&self.checkout);
        process::run(&mut c, stdin, Duration::from_secs(120)).expect("spawn devc-vault")
    }

    /// `devc-vault devcontainer --workspace WS ARGS` (the README's road
    /// with other options).
    pub fn setup(&self, ws: &Path, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut all = vec![
            "devcontainer".to_owned(),
            "--workspace".to_owned(),
            ws.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = self.devc_vault(&all, stdin);
        out.assert_success("devc-vault devcontainer");
        out
    }
}

/// A devcontainer.json as a team writes it: a comment, the image, the
/// remote user, its own postCreateCommand (which leaves a mark).
pub fn devcontainer_json(image: &str, extra: &str) -> String {
    format!(
        "{{\n  // The team's dev container; devc-vault devcontainer keeps this comment.\n  \"name\": \"myproj\",\n  \"image\": \"{image}\",\n  \"remoteUser\": \"vscode\",{extra}\n  \"postCreateCommand\": \"touch /tmp/team-post-create-ran\"\n}}\n"
    )
}

/// The forms of a key file's secret (the hex of its line, and the raw bytes).
pub fn key_needles(label: &str, key_file: &Path) -> Vec<Needle> {
    let text = fs::read_to_string(key_file).expect("read the key file");
    let hex = text
        .trim()
        .strip_prefix("devc-vault-key v1 ")
        .expect("a key file line")
        .to_owned();
    let raw: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut n = leak_scan::needles(label, &raw);
    n.extend(leak_scan::needles(label, hex.as_bytes()));
    n
}

/// A made-up secret written into every scanned container (as docker writes
/// `auth`: base64 of `user:secret`), so each scan shows it finds what is there.
pub const CANARY: &str = "Canary-s3cret&<c>/z";
/// Where the canary is written.
pub const CANARY_FILE: &str = "tmp/.devc-scan-canary";

/// Exports container `id` and asserts that no needle is in any file, in
/// any encoding (and that the canary is found where it was put); also
/// checks `podman inspect` (env, labels with the devcontainer metadata).
#[track_caller]
pub fn assert_nothing_at_rest(store: &PodmanStore, id: &str, needles: &[Needle], work: &Scratch) {
    let canary = base64(format!("ab:{CANARY}").as_bytes());
    store.podman_ok(
        &[
            "exec",
            id,
            "sh",
            "-c",
            &format!("printf '%s' '{canary}' > /{CANARY_FILE}"),
        ],
        Duration::from_secs(60),
    );
    let mut all = needles.to_vec();
    all.extend(leak_scan::needles("canary", CANARY.as_bytes()));
    let tar = store.tmp_path(&format!("export-{}.tar", &id[..12]));
    store.export(id, &tar);
    let size = fs::metadata(&tar).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1024 * 1024, "the export is only {size} bytes");
    let start = std::time::Instant::now();
    let hits = leak_scan::scan_tar(&tar, &all, work.path());
    eprintln!(
        "[timing] scan of {} MB: {:?}",
        size / 1_000_000,
        start.elapsed()
    );
    let _ = fs::remove_file(&tar);
    let (canaries, leaks): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| h.label == "canary");
    assert!(
        leaks.is_empty(),
        "secrets at rest in container {id}:\n{}",
        leaks
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !canaries.is_empty() && canaries.iter().all(|h| h.file.ends_with(CANARY_FILE)),
        "the scan did not find the canary in /{CANARY_FILE} (found: {canaries:?})"
    );
    let inspect = store.inspect(id);
    for n in needles {
        assert!(
            !inspect
                .as_bytes()
                .windows(n.bytes.len())
                .any(|w| w == n.bytes),
            "podman inspect of {id} shows {} ({})",
            n.label,
            n.encoding
        );
    }
}

/// Every needle for the registry and git passwords.
pub fn password_needles() -> Vec<Needle> {
    let mut n = leak_scan::needles("registry password", REG_PASS.as_bytes());
    n.extend(leak_scan::needles("git password", GIT_PASS.as_bytes()));
    n
}

/// `docker manifest inspect --insecure REF` in the container.
pub fn pull(
    store: &PodmanStore,
    cli: &Path,
    user: &HostUser,
    ws: &Path,
    reference: &str,
) -> Outcome {
    store.exec(
        cli,
        user,
        ws,
        &["docker", "manifest", "inspect", "--insecure", reference],
        None,
    )
}

/// Asserts a pull printed the manifest.
#[track_caller]
pub fn assert_pulled(out: &Outcome, what: &str) {
    assert!(
        out.success() && out.stdout_str().contains("schemaVersion"),
        "{what}: the pull failed\n{}",
        out.describe()
    );
}

/// Pushes the test image to `reg` as `IMAGE_NAME:latest` in Docker's v2
/// schema 2 format (the docker CLI 20.10 in the Debian images finds no OCI
/// manifest with `manifest inspect`); returns the reference.
pub fn push_private_image(reg: &Registry) -> String {
    let img = OciImage::busybox();
    let dest = reg.reference(IMAGE_NAME, img.tag());
    let mut cmd = Skopeo::new().command();
    cmd.args([
        "copy",
        "--quiet",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        "--dest-creds",
        &reg.creds(),
    ])
    .arg(img.oci_ref())
    .arg(format!("docker://{dest}"));
    run(&mut cmd, None).assert_success("skopeo copy --format v2s2");
    dest
}

/// Runs `cmd` in a fresh process and returns its outcome (for commands
/// built elsewhere).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Outcome {
    process::run(cmd, stdin, Duration::from_secs(120)).expect("spawn")
}
