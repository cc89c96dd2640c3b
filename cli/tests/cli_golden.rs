//! Golden tests of what `devc-vault` prints: every command's `--help`, its
//! `--version`, and typical successes and errors, compared by `trycmd` with
//! the case files in `tests/cmd/` (one `.toml` per command line).
//!
//! After changing a help text or a message, regenerate the expected output,
//! then read the diff before committing it:
//!
//! ```text
//! TRYCMD=overwrite cargo test -p devc-vault-cli --test cli_golden
//! git diff cli/tests/cmd
//! ```
//!
//! Overwriting keeps every `[..]` elision that still matches. One case alone:
//! `cargo test -p devc-vault-cli --test cli_golden -- golden trycmd=list-json`.
//!
//! - `tests/cmd/help/`: `--help` of every command and subcommand, and
//!   `--version`, in an empty environment (`env.inherit = false`), so that
//!   clap's `[env: DEVC_VAULT=]` shows no inherited value.
//! - `tests/cmd/vault/`: commands that touch a vault, each in a fresh
//!   sandbox (`fs.sandbox = true`) with `DEVC_VAULT`, `DEVC_VAULT_KEY_FILE`,
//!   `HOME`, `XDG_CONFIG_HOME` and `XDG_RUNTIME_DIR` relative to it (so the
//!   paths printed are the same on every run), `DEVC_VAULT_KEY_ORDER=file`,
//!   and nothing inherited (no `DEVC_VAULT_CONFIG`, no `DOCKER_CONFIG`).
//!   Most start from a copy of `tests/cmd/vault/fixture/` (`fs.base`): a
//!   vault holding one docker and one git entry, its key file, the key file
//!   of another vault, and a copy of the right key that must be 0644.
//!
//! Git keeps no file modes, so [`fix_fixture_modes`] sets the fixture's
//! before each run, and [`check_case_files`] refuses a case file that would
//! check nothing or leak the caller's environment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CASES: &str = "tests/cmd";
const FIXTURE: &str = "tests/cmd/vault/fixture";

#[test]
fn golden() {
    fix_fixture_modes();
    let n = check_case_files();
    assert!(n > 0, "no case files under {CASES}");
    trycmd::TestCases::new()
        .register_bin("devc-vault", Path::new(env!("CARGO_BIN_EXE_devc-vault")))
        .timeout(Duration::from_secs(60))
        .case(format!("{CASES}/**/*.toml"))
        .run();
}

/// Key files must be 0600 to be accepted; `loose-key` is the 0644 case.
fn fix_fixture_modes() {
    for (name, mode) in [
        ("secrets/devc-vault-key", 0o600),
        ("secrets/other-key", 0o600),
        ("secrets/loose-key", 0o644),
    ] {
        let path = Path::new(FIXTURE).join(name);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
    }
}

/// Checks every case file and returns how many there are. `trycmd` silently
/// skips a case whose binary it cannot resolve and does not compare a stream
/// that has no expected value; a case without `env.inherit = false` would see
/// the caller's `DEVC_VAULT*` variables; `fs.base` without a sandbox would
/// run in (and could change) the fixture itself.
fn check_case_files() -> usize {
    let mut files = Vec::new();
    toml_files(Path::new(CASES), &mut files);
    for path in &files {
        let text = fs::read_to_string(path).expect("read case file");
        let case: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: not TOML: {e}", path.display()));
        let get = |dotted: &str| lookup(&case, dotted);
        let at = path.display();
        assert_eq!(
            get("bin.name").and_then(toml::Value::as_str),
            Some("devc-vault"),
            "{at}: bin.name must be \"devc-vault\""
        );
        for stream in ["stdout", "stderr"] {
            assert!(
                get(stream).is_some() || path.with_extension(stream).exists(),
                "{at}: no expected {stream} (write {stream} = \"\" if it must be empty)"
            );
        }
        assert_eq!(
            get("env.inherit").and_then(toml::Value::as_bool),
            Some(false),
            "{at}: needs env.inherit = false"
        );
        if get("fs.base").is_some() {
            assert_eq!(
                get("fs.sandbox").and_then(toml::Value::as_bool),
                Some(true),
                "{at}: fs.base needs fs.sandbox = true"
            );
        }
    }
    files.len()
}

/// The value at a dotted key such as `env.inherit`.
fn lookup<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let (tables, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut t = table;
    for k in tables.split('.').filter(|k| !k.is_empty()) {
        t = t.get(k)?.as_table()?;
    }
    t.get(key)
}

/// Every `.toml` file under `dir`, recursively.
fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}
