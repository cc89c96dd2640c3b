//! `devc-vault seal docker --all` against a real `docker-credential-pass`
//! store with a `{"credsStore":"pass"}`-only config.json: every credential
//! the store lists is sealed (none of them is named in config.json), a
//! server the store does not hold is not sealed as an empty credential, and
//! `seal --refresh` asks the store again while leaving an entry stored
//! inside the container alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::pass_store::PassStore;
use devc_vault_tests::process::{Outcome, run};
use devc_vault_tests::scratch::Scratch;
use devc_vault_tests::tools::{self, path_with_prefix};

const CREDS: [(&str, &str, &str); 3] = [
    ("https://index.docker.io/v1/", "hubuser", "hub-secret-1"),
    ("registry.example:5000", "<token>", "identity-token-2"),
    ("ghcr.io", "octo", "ghp_secret-3"),
];

struct Host {
    dir: Scratch,
    store: PassStore,
    cli: PathBuf,
    helper: PathBuf,
}

impl Host {
    fn new() -> Option<Host> {
        let cli = tools::require_bin("devc-vault")?;
        let helper = tools::require_bin("docker-credential-devc-encrypted")?;
        if !PassStore::available() {
            return None;
        }
        let h = Host {
            dir: Scratch::new("seal-pass"),
            store: PassStore::new(),
            cli,
            helper,
        };
        h.dir
            .write("docker/config.json", r#"{"credsStore":"pass"}"#, 0o600);
        h.ok(&["init"]);
        Some(h)
    }

    fn cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("DEVC_VAULT", self.dir.join("vault/.credentials.enc"))
            .env("DEVC_VAULT_KEY_FILE", self.dir.join("keys/key"))
            .env("DEVC_VAULT_KEY_ORDER", "file")
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env(
                "PATH",
                path_with_prefix(&[self.cli.parent().expect("bin dir").to_path_buf()]),
            )
            .stdin(Stdio::null());
        self.store.apply_env(&mut c);
        c
    }

    fn run(&self, args: &[&str]) -> Outcome {
        run(
            &mut self.cmd(&self.cli, args),
            None,
            Duration::from_secs(120),
        )
        .expect("devc-vault")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Outcome {
        let o = self.run(args);
        assert!(o.success(), "devc-vault {args:?}\n{}", o.describe());
        o
    }

    fn helper(&self, verb: &str, stdin: &str) -> Outcome {
        run(
            &mut self.cmd(&self.helper, &[verb]),
            Some(stdin.as_bytes()),
            Duration::from_secs(60),
        )
        .expect("helper")
    }

    fn secret_of(&self, server: &str) -> Option<(String, String)> {
        let o = self.helper("get", server);
        if !o.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        Some((
            v["Username"].as_str().expect("user").to_owned(),
            v["Secret"].as_str().expect("secret").to_owned(),
        ))
    }

    fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("vault/.credentials.enc")).expect("vault")
    }
}

#[test]
fn seal_all_takes_every_credential_a_pass_credsstore_lists() {
    let Some(h) = Host::new() else { return };
    for (server, user, secret) in CREDS {
        h.store.store(server, user, secret);
    }
    // The reference helper answers a server it does not hold with exit 0
    // and empty credentials: that must not become a credential.
    let empty = h.store.helper(&["get"], Some(b"absent.example"));
    assert_eq!(empty.code(), Some(0), "{}", empty.describe());
    assert!(
        empty.stdout_str().contains(r#""Username":"""#),
        "{}",
        empty.describe()
    );

    let o = h.ok(&["seal", "docker", "--all"]);
    for (server, user, secret) in CREDS {
        assert!(
            o.stdout_str()
                .contains(&format!("{server} ({user}) from docker-credential-pass")),
            "{server}\n{}",
            o.describe()
        );
        assert!(!o.stdout_str().contains(secret) && !o.stderr_str().contains(secret));
        assert_eq!(
            h.secret_of(server),
            Some((user.to_owned(), secret.to_owned())),
            "{server}"
        );
    }
    let sealed = h.vault_bytes();
    for (_, _, secret) in CREDS {
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    // A server the store does not hold: reported, nothing written.
    let o = h.run(&["seal", "docker", "--registry", "absent.example"]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(
        o.stderr_str()
            .contains("absent.example: docker-credential-pass has no credential for it"),
        "{}",
        o.describe()
    );
    assert_eq!(h.vault_bytes(), sealed, "the vault changed");
    assert_eq!(h.secret_of("absent.example"), None);

    // doctor names each entry's source.
    let doctor = h.run(&["doctor"]);
    for (server, _, _) in CREDS {
        assert!(
            doctor.stdout_str().contains(&format!(
                "docker {server} from docker-credential-pass, fetched"
            )),
            "{server}\n{}",
            doctor.describe()
        );
    }

    // The store's credential changes on the host; one stored inside the
    // container (no source) must survive a refresh.
    h.store.store("ghcr.io", "octo", "ghp_rotated-4");
    let stored = h.helper(
        "store",
        r#"{"ServerURL":"inside.example","Username":"me","Secret":"mine"}"#,
    );
    assert!(stored.success(), "{}", stored.describe());
    let o = h.ok(&["seal", "--refresh"]);
    assert!(
        o.stdout_str()
            .contains("refreshed docker ghcr.io from docker-credential-pass (new secret)"),
        "{}",
        o.describe()
    );
    assert!(
        o.stdout_str().contains(
            "refreshed docker registry.example:5000 from docker-credential-pass (same secret)"
        ),
        "{}",
        o.describe()
    );
    assert_eq!(o.stdout_str().lines().count(), 3, "{}", o.describe());
    assert_eq!(
        h.secret_of("ghcr.io"),
        Some(("octo".into(), "ghp_rotated-4".into()))
    );
    assert_eq!(
        h.secret_of("inside.example"),
        Some(("me".into(), "mine".into()))
    );

    // Removed from the store: reported, the old entry kept, the rest written.
    h.store
        .helper(&["erase"], Some(b"registry.example:5000"))
        .assert_success("erase");
    let o = h.run(&["seal", "--refresh"]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(
        o.stderr_str()
            .contains("could not refresh docker registry.example:5000 from docker-credential-pass"),
        "{}",
        o.describe()
    );
    assert!(
        o.stdout_str().contains("refreshed docker ghcr.io"),
        "{}",
        o.describe()
    );
    assert_eq!(
        h.secret_of("registry.example:5000"),
        Some(("<token>".into(), "identity-token-2".into()))
    );
}
