//! `devc-vault seal`: the host's existing docker and git credentials go into
//! the vault, and the container-side helpers then answer with them.

use devc_vault_tests::docker::FakeHelper;
use devc_vault_tests::fixture::Fixture;
use devc_vault_tests::process::Outcome;
use devc_vault_tests::tools::require_tool;

/// The host: an empty vault opened by the key file, and a docker config
/// directory the test fills.
fn host() -> Option<Fixture> {
    let h = Fixture::build("seal").no_vault().create()?;
    ok(&h, &["init"]);
    Some(h)
}

fn ok(h: &Fixture, args: &[&str]) -> Outcome {
    let o = h.cli(args, None);
    assert!(o.success(), "{}", o.describe());
    o
}

fn docker_get(h: &Fixture, server: &str) -> Outcome {
    h.docker_helper_run(&["get"], Some(server.as_bytes()))
}

fn write_docker_config(h: &Fixture, json: &str) {
    h.dir().write("docker/config.json", json, 0o600);
}

#[test]
fn seal_docker_from_plain_auths_and_identity_tokens() {
    let Some(h) = host() else { return };
    // base64("me:pa:ss") and an identity token, as `docker login` leaves them
    // on a host with no credential helper.
    write_docker_config(
        &h,
        r#"{"auths":{"r.example:5000":{"auth":"bWU6cGE6c3M="},
            "https://index.docker.io/v1/":{"identitytoken":"id-tok"}}}"#,
    );
    let o = ok(&h, &["seal", "docker", "--all"]);
    assert!(!o.stdout_str().contains("pa:ss") && !o.stdout_str().contains("id-tok"));
    let got = docker_get(&h, "r.example:5000");
    assert!(got.success(), "{}", got.describe());
    let v: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    assert_eq!(
        (v["Username"].as_str(), v["Secret"].as_str()),
        (Some("me"), Some("pa:ss"))
    );
    let hub = docker_get(&h, "docker.io");
    let v: serde_json::Value = serde_json::from_slice(&hub.stdout).expect("json");
    assert_eq!(
        (v["Username"].as_str(), v["Secret"].as_str()),
        (Some("<token>"), Some("id-tok"))
    );
    let bytes = std::fs::read(h.vault()).expect("vault");
    assert!(!bytes.windows(5).any(|w| w == b"pa:ss"));
}

#[test]
fn seal_docker_asks_the_hosts_credential_helper() {
    let Some(mut h) = host() else { return };
    let fake = FakeHelper::new("hoststore", "helper-user", "helper-secret");
    h.prepend_path(fake.bin_dir());
    write_docker_config(&h, r#"{"credsStore":"hoststore","auths":{"ghcr.io":{}}}"#);
    ok(&h, &["seal", "docker", "--registry", "ghcr.io"]);
    assert!(fake.ops().contains(&"get".to_string()), "{:?}", fake.ops());
    let got = docker_get(&h, "ghcr.io");
    let v: serde_json::Value = serde_json::from_slice(&got.stdout).expect("json");
    assert_eq!(
        v["Secret"].as_str(),
        Some("helper-secret"),
        "{}",
        got.describe()
    );
}

#[test]
fn seal_docker_refuses_when_a_named_registry_has_nothing() {
    let Some(h) = host() else { return };
    write_docker_config(&h, r#"{"auths":{"a.example":{"auth":"dTpw"}}}"#);
    let before = std::fs::read(h.vault()).expect("vault");
    let o = h.cli(
        &[
            "seal",
            "docker",
            "--registry",
            "a.example",
            "--registry",
            "b.example",
        ],
        None,
    );
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(o.stderr_str().contains("b.example"), "{}", o.describe());
    assert_eq!(o.stderr_str().lines().count(), 1, "{}", o.describe());
    assert!(
        std::fs::read(h.vault()).expect("vault") == before,
        "the vault changed"
    );
}

#[test]
fn seal_git_takes_what_the_hosts_git_answers() {
    let Some(git) = require_tool("git", "the host's git answers `credential fill`") else {
        return;
    };
    let Some(mut h) = host() else { return };
    h.prepend_path(git.parent().expect("git dir"));
    h.dir()
        .write("home/.gitconfig", "[credential]\n\thelper = store\n", 0o600);
    h.dir().write(
        "home/.git-credentials",
        "https://alice:s3cr%3At@git.example.com\n",
        0o600,
    );
    let o = ok(
        &h,
        &[
            "seal",
            "git",
            "--protocol",
            "https",
            "--host",
            "git.example.com",
        ],
    );
    assert!(o.stdout_str().contains("alice"), "{}", o.describe());
    let get = h.git_helper_run(&["get"], Some(b"protocol=https\nhost=git.example.com\n\n"));
    assert!(
        get.stdout_str()
            .contains("username=alice\npassword=s3cr:t\n"),
        "{}",
        get.describe()
    );
    // Nothing on the host for another host: a clear error, no prompt.
    let miss = h.cli(
        &[
            "seal",
            "git",
            "--protocol",
            "https",
            "--host",
            "nothing.example",
        ],
        None,
    );
    assert_eq!(miss.code(), Some(1), "{}", miss.describe());
    assert!(
        miss.stderr_str().contains("no credential"),
        "{}",
        miss.describe()
    );
}

#[test]
fn an_ecr_password_is_not_handed_out_after_its_own_expiration() {
    use base64::Engine as _;
    let Some(mut h) = host() else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // What docker-credential-ecr-login hands out: base64 of a JSON object
    // whose `expiration` says when it dies (here: a minute ago, well within
    // the 12 hours ecr-login's tokens may live at most).
    let password = |expiration: u64| {
        base64::engine::general_purpose::STANDARD.encode(format!(
            r#"{{"payload":"cGF5bG9hZA==","datakey":"ZGF0YWtleQ==","version":"2","type":"DATA_KEY","expiration":{expiration}}}"#
        ))
    };
    let dead = password(now - 60);
    let fake = FakeHelper::new("ecr-login", "AWS", &dead);
    h.prepend_path(fake.bin_dir());
    write_docker_config(&h, r#"{"credHelpers":{"ecr.example":"ecr-login"}}"#);
    ok(&h, &["seal", "docker", "--registry", "ecr.example"]);
    let got = docker_get(&h, "ecr.example");
    assert!(!got.success(), "{}", got.describe());
    assert!(
        got.stdout_str().contains("credentials not found")
            && got.stderr_str().contains("ecr.example")
            && got.stderr_str().contains("expired"),
        "{}",
        got.describe()
    );
    assert!(!got.stdout_str().contains(&dead) && !got.stderr_str().contains(&dead));
}
