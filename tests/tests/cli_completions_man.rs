//! Shell completions and manual pages as a user installs them: the bash
//! script loads into a real bash and completes a subcommand, zsh and fish
//! scripts are generated, and every manual page (`devc-vault man`, and the
//! helpers' hand-written pages in `docs/man/`) renders with man-db's `man`
//! without warnings and lists what it documents.

use std::path::{Path, PathBuf};

use devc_vault_tests::fixture::{DOCKER_HELPER, Fixture, GIT_HELPER};
use devc_vault_tests::process::Outcome;
use devc_vault_tests::tools::require_tool;

/// Every visible subcommand of `devc-vault`.
const SUBCOMMANDS: &[&str] = &[
    "init",
    "add",
    "remove",
    "list",
    "rotate",
    "seal",
    "slot",
    "demo",
    "doctor",
    "install",
    "agent",
    "unlock",
    "lock",
    "status",
    "completions",
    "man",
];

fn fixture() -> Option<Fixture> {
    Fixture::build("docs").no_vault().create()
}

#[test]
fn bash_completion_loads_and_completes_a_subcommand() {
    let Some(bash) = require_tool("bash", "loads the completion script") else {
        return;
    };
    let Some(f) = fixture() else { return };
    // What the README tells users to do, then one completion of `devc-vault sl`
    // through the function the script registered. `devc-vault` is on the
    // fixture's PATH.
    let script = r#"source <(devc-vault completions bash) && complete -p devc-vault || exit 1
fn=$(complete -p devc-vault | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_WORDS=(devc-vault sl); COMP_CWORD=1; COMP_LINE='devc-vault sl'; COMP_POINT=${#COMP_LINE}
"$fn" devc-vault sl devc-vault
printf 'reply: %s\n' "${COMPREPLY[@]}""#;
    let mut cmd = f.command(bash);
    cmd.args(["-c", script]);
    let out = f.run(&mut cmd, None);
    out.assert_success("bash sourcing the completion script");
    let text = out.stdout_str();
    let complete = text.lines().next().unwrap_or_default();
    assert!(
        complete.starts_with("complete ") && complete.ends_with(" devc-vault"),
        "{}",
        out.describe()
    );
    let replies: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("reply: "))
        .collect();
    assert_eq!(replies, ["slot"], "{}", out.describe());
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    let Some(f) = fixture() else { return };
    for (shell, marker) in [
        ("zsh", "#compdef devc-vault"),
        ("fish", "complete -c devc-vault"),
    ] {
        let out = f.cli_ok(&["completions", shell], None);
        let text = out.stdout_str();
        assert!(text.contains(marker), "{shell}: no {marker:?}\n{text}");
        // Every subcommand is offered.
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell}: no {sub}");
        }
    }
    let out = f.cli(&["completions", "powershell"], None);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
}

/// `man --warnings -l FILE` (`-` for stdin) in plain ASCII, its words
/// joined by single spaces; fails the test on any warning.
fn render(f: &Fixture, man: &Path, file: &str, stdin: Option<&[u8]>) -> String {
    let mut cmd = f.command(man);
    cmd.args(["--warnings", "-l", file])
        .env("LC_ALL", "C")
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat");
    let out: Outcome = f.run(&mut cmd, stdin);
    out.assert_success(&format!("man -l {file}"));
    assert_eq!(out.stderr_str(), "", "warnings\n{}", out.describe());
    // Justified text: runs of spaces become one.
    out.stdout_str()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn devc_vault_man_page_renders_and_lists_the_subcommands() {
    let Some(man) = require_tool("man", "renders the manual page (apt: man-db)") else {
        return;
    };
    let Some(f) = fixture() else { return };
    let page = f.cli_ok(&["man"], None).stdout;
    assert!(
        page.starts_with(b".ie "),
        "not roff: {:?}",
        &page[..40.min(page.len())]
    );
    let text = render(&f, &man, "-", Some(&page));
    assert!(text.contains("devc-vault - Encrypted registry"), "{text}");
    assert!(text.contains("SUBCOMMANDS"), "{text}");
    for sub in SUBCOMMANDS {
        assert!(
            text.contains(&format!("devc-vault-{sub}(1)")),
            "no {sub}\n{text}"
        );
    }
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

/// `docs/man/NAME.1`.
fn page_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/man/{name}.1"))
}

#[test]
fn helper_man_pages_render_and_name_their_verbs() {
    let Some(man) = require_tool("man", "renders the manual pages (apt: man-db)") else {
        return;
    };
    let Some(f) = fixture() else { return };
    for (name, verbs) in [
        (
            DOCKER_HELPER,
            &["get", "store", "erase", "list", "version"][..],
        ),
        (GIT_HELPER, &["get", "store", "erase"][..]),
    ] {
        let path = page_path(name);
        let text = render(&f, &man, &path.display().to_string(), None);
        assert!(text.contains(&format!("{name} - ")), "{name}\n{text}");
        for verb in verbs {
            assert!(text.contains(verb), "{name}: no {verb}\n{text}");
        }
        for var in ["DEVC_VAULT", "DEVC_VAULT_KEY_FILE", "DEVC_VAULT_KEY_ORDER"] {
            assert!(text.contains(var), "{name}: no {var}\n{text}");
        }
        assert!(
            text.contains("devc-vault(1)"),
            "{name}: no SEE ALSO\n{text}"
        );
    }
}
