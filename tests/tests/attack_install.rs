//! `install` against a docker config that holds credentials in clear
//! (issue 8, "Prove it"): `auth`, `identitytoken` and `password` entries in
//! `config.json`, and a `config.json.bak` an older version left with one in
//! clear. Afterwards no file in the docker config directory holds a secret
//! in any encoding, the docker helper returns each from the vault, and
//! `doctor` reports the plaintext before (exit 1) and not after; it also
//! reports a non-empty `~/.git-credentials`.

use std::fs;
use std::path::Path;

use devc_vault_tests::fixture::{Fixture, assert_no_secret};
use devc_vault_tests::registry::base64;

/// The secrets, with characters that JSON and Go escape differently.
const AUTH_USER: &str = "alice";
const AUTH_SECRET: &str = "p@ss<w>rd&\"a\\1/x";
const TOKEN: &str = "idtok-<b>&-2b7e151628aed2a6";
const PASSWORD_USER: &str = "carol";
const PASSWORD: &str = "pw-c/3 \"quoted\" <&>";
const OLD_BAK_SECRET: &str = "old-backup-secret-9f86d081";

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("list").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// No file in the docker config directory holds any of the secrets, nor
/// `user:secret`, in any encoding.
#[track_caller]
fn assert_dir_clean(dir: &Path) {
    let forms = [
        AUTH_SECRET.to_owned(),
        format!("{AUTH_USER}:{AUTH_SECRET}"),
        TOKEN.to_owned(),
        PASSWORD.to_owned(),
        format!("{PASSWORD_USER}:{PASSWORD}"),
        OLD_BAK_SECRET.to_owned(),
        format!("erin:{OLD_BAK_SECRET}"),
    ];
    let all = files(dir);
    assert!(all.len() >= 3, "{all:?}");
    for f in all {
        let bytes = fs::read(&f).expect("read");
        for s in &forms {
            assert_no_secret(&bytes, s, &f.display().to_string());
        }
    }
}

#[test]
fn install_moves_every_plaintext_credential_and_doctor_tells() {
    let Some(env) = Fixture::new("atk-install") else {
        return;
    };
    let dir = env.docker_config();
    let config = serde_json::json!({
        "auths": {
            "a.example": {"auth": base64(format!("{AUTH_USER}:{AUTH_SECRET}").as_bytes())},
            "b.example": {"identitytoken": TOKEN},
            "c.example": {"username": PASSWORD_USER, "password": PASSWORD},
            "d.example": {}
        },
        "psFormat": "table {{.ID}}"
    });
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).expect("json"),
    )
    .expect("write config.json");
    // What an older version left: a backup with a credential in clear.
    let old = serde_json::json!({"auths": {"e.example": {
        "auth": base64(format!("erin:{OLD_BAK_SECRET}").as_bytes())
    }}});
    fs::write(dir.join("config.json.bak"), old.to_string()).expect("write the backup");

    // doctor names both files, exits 1, and prints no secret.
    let before = env.cli(&["doctor"], None);
    assert_eq!(before.code(), Some(1), "{}", before.describe());
    let text = before.stdout_str();
    for needle in [
        "PROBLEM  plaintext: ",
        "config.json holds credentials in clear for a.example, b.example, c.example",
        "config.json.bak holds credentials in clear for e.example",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
    for s in [AUTH_SECRET, TOKEN, PASSWORD, OLD_BAK_SECRET] {
        assert_no_secret(&before.stdout, s, "doctor's output");
        assert_no_secret(&before.stderr, s, "doctor's errors");
    }

    let out = env.cli_ok(&["install"], None);
    for s in [AUTH_SECRET, TOKEN, PASSWORD, OLD_BAK_SECRET] {
        assert_no_secret(&out.stdout, s, "install's output");
    }
    assert_dir_clean(&dir);
    // The registries stay (as `docker login` leaves them), the other keys too.
    let now: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).expect("read")).expect("json");
    for r in ["a.example", "b.example", "c.example", "d.example"] {
        assert!(now["auths"].get(r).is_some(), "{r} lost: {now}");
    }
    assert_eq!(now["psFormat"], "table {{.ID}}");
    assert_eq!(now["credsStore"], "devc-encrypted");

    // The helper gives each credential back from the vault.
    for (server, user, secret) in [
        ("a.example", AUTH_USER, AUTH_SECRET),
        ("b.example", "<token>", TOKEN),
        ("c.example", PASSWORD_USER, PASSWORD),
    ] {
        let got = env.docker_get(server);
        assert_eq!(got["Username"], user, "{server}");
        assert_eq!(got["Secret"], secret, "{server}");
    }

    // doctor has no plaintext to report now.
    let after = env.cli(&["doctor"], None);
    assert!(
        !after.stdout_str().contains("plaintext"),
        "{}",
        after.describe()
    );
    assert_eq!(after.code(), Some(0), "{}", after.describe());
    // A second install changes nothing and keeps it clean.
    env.cli_ok(&["install"], None);
    assert_dir_clean(&dir);

    // git's `store` helper file: reported, without its content.
    let creds = env.home().join(".git-credentials");
    fs::write(&creds, "https://me:git-store-secret-1@git.example\n").expect("write");
    let git = env.cli(&["doctor"], None);
    assert_eq!(git.code(), Some(1), "{}", git.describe());
    assert!(
        git.stdout_str().contains(&format!(
            "PROBLEM  plaintext: {} holds git credentials in clear",
            creds.display()
        )),
        "{}",
        git.describe()
    );
    assert_no_secret(&git.stdout, "git-store-secret-1", "doctor's output");
    // An empty one is not a problem.
    fs::write(&creds, "").expect("truncate");
    assert_eq!(env.cli(&["doctor"], None).code(), Some(0));
}
