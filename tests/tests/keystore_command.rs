//! `key_command` recipes on the host, end to end (issue 8, item 7): the
//! vault's key kept in `pass` (gpg) and in the desktop keyring through the
//! Secret Service (gnome-keyring, `secret-tool`). For each, `devc-vault` on
//! the host opens the vault with `key_command` from its config file, and
//! `devc-vault agent --key-command` serves a docker helper `get` through
//! its container-facing socket. The key file is deleted once the store
//! holds it, so nothing else could open the vault. The README's "Keeping
//! the key in a store" section shows the same recipes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use devc_vault_tests::fixture::sample::{EXPECTED, SERVER};
use devc_vault_tests::fixture::{Fixture, KeyFileVar};
use devc_vault_tests::process::{self, Outcome};
use devc_vault_tests::tools;

/// A vault with the sample entry; no key file in the environment, and no
/// order: each step sets what it uses.
fn fixture(label: &str) -> Option<Fixture> {
    Fixture::build(label)
        .key_order(None)
        .key_file_var(KeyFileVar::Unset)
        .sample_entry()
        .create()
}

#[track_caller]
fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Outcome {
    let out = process::run(cmd, stdin, Duration::from_secs(60)).expect("spawn");
    out.assert_success(what);
    out
}

/// The steps both recipes share, once the store holds the key file's line
/// and `argv` prints it: the key file goes away; the host CLI and the
/// docker helper open the vault through `key_command` in vault.toml; an
/// agent started with `--key-command` serves a helper that reaches it as a
/// container would (through the container-facing socket only).
fn host_opens_with_the_key_command(env: &mut Fixture, argv: &[&str]) {
    fs::remove_file(env.key()).expect("remove the key file: the store holds it now");
    let quoted: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    let conf = env.dir().write(
        "vault.toml",
        format!(
            "order = [\"command\"]\nkey_command = [{}]\nkey_command_timeout_secs = 20\n",
            quoted.join(", ")
        ),
        0o600,
    );
    env.set_env("DEVC_VAULT_CONFIG", &conf);

    // The host CLI: read, write, and say where the key came from.
    let list = env.cli_ok(&["list"], None).stdout_str();
    assert!(list.contains(SERVER), "{list}");
    env.cli_ok(
        &[
            "add",
            "docker",
            "--server",
            "host.example",
            "--username",
            "u",
        ],
        Some(b"added-with-the-key-command"),
    );
    let st = env
        .cli_ok(&["status", "--socket", "/nonexistent/agent.sock"], None)
        .stdout_str();
    assert!(st.contains("opens via command"), "{st}");
    // The docker helper on the host, the same way.
    let got = env.docker_get(SERVER);
    let want: serde_json::Value = serde_json::from_str(EXPECTED).expect("json");
    assert_eq!(got, want);

    // The agent holds the key from the command.
    let sock = env.path().join("facing/agent.sock");
    let _agent = env.start_agent(&sock, &["--key-command", &argv.join(" ")]);
    let status = env
        .cli_ok(&["status", "--socket", &sock.display().to_string()], None)
        .stdout_str();
    assert!(status.contains("  command "), "{status}");
    // A helper that finds no owner endpoint (another runtime directory):
    // it asks the container-facing socket, as in a container.
    let elsewhere = env.dir().mkdir("container-runtime", 0o700);
    let mut get = env.command(env.docker_helper_path());
    get.arg("get")
        .env("DEVC_VAULT_KEY_ORDER", "agent")
        .env("DEVC_VAULT_AGENT_SOCK", &sock)
        .env("XDG_RUNTIME_DIR", &elsewhere)
        .env_remove("DEVC_VAULT_CONFIG");
    let out = env.run(&mut get, Some(SERVER.as_bytes()));
    out.assert_success("get through the key-command agent");
    assert_eq!(out.stdout_str().trim_end(), EXPECTED);
}

/// Stops the gpg-agent of a GNUPGHOME (the first gpg call starts one,
/// detached) and removes the directories.
struct Gnupg {
    home: tempfile::TempDir,
    store: tempfile::TempDir,
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn key_kept_in_pass() {
    if !tools::require_tools(&[
        ("pass", "keeps the key (apt: pass)"),
        ("gpg", "encrypts the password store (apt: gnupg)"),
        ("gpgconf", "starts and stops gpg-agent (apt: gnupg)"),
    ]) {
        return;
    }
    let Some(mut env) = fixture("ks-pass") else {
        return;
    };
    // A short GNUPGHOME: gpg-agent's socket lives in it, and a unix socket
    // path is limited to 108 bytes.
    let tmp = |prefix: &str| {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("tempdir")
    };
    let gnupg = Gnupg {
        home: tmp("g."),
        store: tmp("ps."),
    };
    fs::set_permissions(gnupg.home.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    env.set_env("GNUPGHOME", gnupg.home.path())
        .set_env("PASSWORD_STORE_DIR", gnupg.store.path());
    // Started here with no pipes, so that no later call's output waits on
    // a daemon holding it.
    let launched = env
        .command("gpgconf")
        .args(["--launch", "gpg-agent"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        launched.is_ok_and(|s| s.success()),
        "gpgconf --launch gpg-agent"
    );
    // A throwaway key without a passphrase: no pinentry.
    run_ok(
        env.command("gpg").args([
            "--batch",
            "--quiet",
            "--passphrase",
            "",
            "--quick-gen-key",
            "devc-vault test <devc-vault-test@example.invalid>",
            "future-default",
            "default",
            "never",
        ]),
        None,
        "gpg --quick-gen-key",
    );
    let keys = run_ok(
        env.command("gpg").args(["--list-keys", "--with-colons"]),
        None,
        "gpg --list-keys",
    )
    .stdout_str();
    let fpr = keys
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| !f.is_empty()))
        .expect("a fingerprint")
        .to_owned();
    run_ok(env.command("pass").args(["init", &fpr]), None, "pass init");
    let line = fs::read(env.key()).expect("key file");
    run_ok(
        env.command("pass")
            .args(["insert", "--multiline", "--force", "devc-vault/key"]),
        Some(&line),
        "pass insert",
    );
    let shown = run_ok(
        env.command("pass").args(["show", "devc-vault/key"]),
        None,
        "pass show",
    );
    assert_eq!(shown.stdout, line, "pass gives the key file's line back");

    host_opens_with_the_key_command(&mut env, &["pass", "show", "devc-vault/key"]);
}

/// A private D-Bus session bus (with gnome-keyring-daemon on it, which
/// exits with the bus); killed on drop.
struct SessionBus {
    pid: u32,
    address: String,
}

impl SessionBus {
    fn start(env: &Fixture) -> SessionBus {
        let out_file = env.path().join("bus.out");
        let out = fs::File::create(&out_file).expect("create");
        let status = env
            .command("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "dbus-daemon --session --fork"
        );
        let text = fs::read_to_string(&out_file).expect("bus.out");
        let mut lines = text.lines();
        let address = lines.next().expect("the bus address").to_owned();
        let pid = lines
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("the bus pid");
        SessionBus { pid, address }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn key_kept_in_the_desktop_keyring() {
    if !tools::require_tools(&[
        (
            "dbus-daemon",
            "runs a private session bus (apt: dbus-daemon)",
        ),
        (
            "dbus-send",
            "waits for the keyring on the bus (apt: dbus-bin)",
        ),
        (
            "gnome-keyring-daemon",
            "serves the Secret Service (apt: gnome-keyring)",
        ),
        (
            "secret-tool",
            "stores and looks up the key (apt: libsecret-tools)",
        ),
    ]) {
        return;
    }
    let Some(mut env) = fixture("ks-keyring") else {
        return;
    };
    let bus = SessionBus::start(&env);
    env.set_env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    // Headless: --unlock with a non-empty password creates and unlocks the
    // "login" collection in $HOME/.local/share/keyrings (an empty one does
    // not, and then storing asks a prompter for a display).
    run_ok(
        env.command("sh").args([
            "-c",
            "printf '\\n' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1",
        ]),
        None,
        "gnome-keyring-daemon --unlock",
    );
    // It forks: wait until it owns the name, or the bus would start another.
    let owned = process::wait_for(Duration::from_secs(10), || {
        process::run(
            env.command("dbus-send").args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]),
            None,
            Duration::from_secs(10),
        )
        .is_ok_and(|o| o.stdout_str().contains("boolean true"))
    });
    assert!(
        owned,
        "gnome-keyring-daemon never owned org.freedesktop.secrets"
    );
    let attrs = ["service", "devc-vault", "project", "keystore-test"];
    let line = fs::read(env.key()).expect("key file");
    run_ok(
        env.command("secret-tool")
            .args(["store", "--label=devc-vault key"])
            .args(attrs),
        Some(&line),
        "secret-tool store",
    );
    let looked_up = run_ok(
        env.command("secret-tool").arg("lookup").args(attrs),
        None,
        "secret-tool lookup",
    );
    assert_eq!(looked_up.stdout, line, "the keyring gives the line back");
    // Nothing in clear on disk: the keyring file is encrypted.
    let keyrings = env.home().join(".local/share/keyrings");
    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
    let hexpart = text.rsplit(' ').next().expect("hex");
    for f in fs::read_dir(&keyrings).expect("keyrings").flatten() {
        let bytes = fs::read(f.path()).unwrap_or_default();
        devc_vault_tests::fixture::assert_no_secret(
            &bytes,
            hexpart,
            &f.path().display().to_string(),
        );
    }

    let mut argv = vec!["secret-tool", "lookup"];
    argv.extend(attrs);
    host_opens_with_the_key_command(&mut env, &argv);
    drop(bus);
}
