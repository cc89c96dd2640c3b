//! Docker secrets of any text: line breaks, tabs, NUL, any Unicode.
//!
//! - through the helper's `store` and `get`, byte for byte, for secrets
//!   that JSON encoders spell in different ways (Go escapes `<`, `>`, `&`,
//!   U+2028 and U+2029; a 64 KiB multi-line secret);
//! - with the real docker CLI: `docker login -u _json_key --password-stdin`
//!   with a multi-line JSON key against a real registry that knows that
//!   password, then `docker manifest inspect` of an image there, with only
//!   our helper configured.

use std::fs;

use devc_vault_tests::docker::Docker;
use devc_vault_tests::fixture::{Fixture, assert_no_secret};
use devc_vault_tests::image::OciImage;
use devc_vault_tests::registry::Registry;
use devc_vault_tests::skopeo::Skopeo;

/// A service-account key as `gcloud` writes one, shortened to what
/// htpasswd takes (255 bytes). bcrypt compares the first 72 bytes only, so
/// the line breaks, tabs and non-ASCII text the registry must see are
/// there.
const JSON_KEY: &str = "{\n\t\"type\": \"service_account\",\n\t\"note\": \"Zoë 名前 😀\u{2028}\",\n\t\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n\",\n\t\"client_email\": \"ci@devc.iam.example\"\n}";

#[test]
fn secrets_of_any_text_round_trip_through_store_and_get() {
    let Some(f) = Fixture::new("json-roundtrip") else {
        return;
    };
    let big: String = "a line of a long key\n".repeat(3121) + "end"; // 65 544 bytes
    let big = big[..devc_vault::MAX_SECRET_LEN].to_owned();
    let secrets = [
        "line one\nline two\r\nline three\n".to_owned(),
        "\ttabs\tand\u{b}vertical\u{c}feeds\t".to_owned(),
        "NUL\u{0}inside and \u{7f} \u{1b}[0m escapes".to_owned(),
        "separators \u{2028} and \u{2029}, BOM \u{feff}, override \u{202e}".to_owned(),
        "Zoë, e\u{301}, 名前, Ελληνικά, עברית, 😀👩‍👩‍👧".to_owned(),
        "html <script> & \"quotes\" \\ backslash /slash".to_owned(),
        "  spaces at both ends  ".to_owned(),
        JSON_KEY.to_owned(),
        big,
    ];
    for (i, secret) in secrets.iter().enumerate() {
        let server = format!("rt{i}.example");
        f.docker_store(&server, "_json_key", secret);
        let got = f.docker_get(&server);
        assert_eq!(
            got["Secret"].as_str(),
            Some(secret.as_str()),
            "secret {i} changed on the way"
        );
        assert_eq!(got["Username"], "_json_key");
    }
    // As Go's encoder spells them (the docker CLI's own store requests).
    let go = r#"{"ServerURL":"go.example","Username":"u","Secret":"a\u003cb\u003e\u0026\u2028\u2029\ud83d\ude00\t\n"}"#;
    let out = f.docker_helper("store", go);
    out.assert_success("store with Go's escapes");
    assert_eq!(
        f.docker_get("go.example")["Secret"],
        "a<b>&\u{2028}\u{2029}😀\t\n"
    );
    let vault = fs::read(f.vault()).expect("vault");
    for secret in &secrets[..8] {
        assert_no_secret(&vault, secret, "the vault file");
    }
}

fn unauthorized(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["401", "unauthorized", "authentication required"]
        .iter()
        .any(|s| t.contains(s))
}

#[test]
fn docker_login_with_a_multi_line_json_key_then_inspect_through_the_vault() {
    if !(Registry::available()
        && OciImage::available()
        && Skopeo::available()
        && Docker::available())
    {
        return;
    }
    let Some(v) = Fixture::new("json-key") else {
        return;
    };
    let first_72 = &JSON_KEY.as_bytes()[..72];
    assert!(JSON_KEY.len() <= 255, "{}", JSON_KEY.len());
    assert!(first_72.contains(&b'\n') && first_72.contains(&b'\t') && !first_72.is_ascii());

    let reg = Registry::start("_json_key", JSON_KEY);
    let img = OciImage::busybox();
    let reference = img.push(&reg, "devc/json-key");
    let host = reg.host().to_owned();

    let mut docker = Docker::new();
    docker.prepend_path(v.bin_dir());
    docker.envs(v.vars());
    v.run(
        v.cli_cmd(&["install", "--docker-config"])
            .arg(docker.config_dir()),
        None,
    )
    .assert_success("devc-vault install");

    // The registry checks what the line break and the emoji are: a key
    // with either changed is refused, and nothing is stored.
    for wrong in [
        JSON_KEY.replacen('\n', " ", 1),
        JSON_KEY.replacen('\t', "    ", 1),
        JSON_KEY.replacen('😀', "😁", 1),
    ] {
        let out = docker.login(&host, "_json_key", &wrong);
        assert!(
            !out.success() && unauthorized(&out.stderr_str()),
            "{}",
            out.describe()
        );
    }
    assert!(v.list_docker().is_empty(), "{:?}", v.list_docker());

    docker
        .login(&host, "_json_key", JSON_KEY)
        .assert_success("docker login with the JSON key");
    assert_eq!(v.list_docker(), [(host.clone(), "_json_key".to_owned())]);
    let got = v.docker_get(&host);
    assert_eq!(
        got["Secret"].as_str(),
        Some(JSON_KEY),
        "stored byte for byte"
    );
    assert_no_secret(&fs::read(v.vault()).expect("vault"), JSON_KEY, "the vault");
    assert_no_secret(
        &fs::read(docker.config_path()).expect("config.json"),
        JSON_KEY,
        "config.json",
    );

    let out = docker.manifest_inspect(&reference);
    out.assert_success("docker manifest inspect with the JSON key from the vault");
    assert!(
        out.stdout_str().contains("schemaVersion"),
        "{}",
        out.describe()
    );
}
