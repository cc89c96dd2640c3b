//! git's credential-helper list: `devc-vault install` puts `devc-encrypted`
//! first in the user's list, keeping every helper already configured after
//! it, and `devc-vault doctor` reads the list git will use, with this code.
//!
//! How git builds the list: every `credential.helper` value from system,
//! global and repository config is appended in that order, and an empty
//! value clears what came before. Helpers are asked in list order until one
//! answers. So, in the global file, this writes
//! `["" if the system config has helpers], "devc-encrypted", <the helpers
//! that were in effect before>`: the reset keeps a system-level helper from
//! being asked first, and re-listing it afterwards keeps it working.
//! URL-scoped `credential.<url>.helper` keys, helpers in files the global
//! config `[include]`s, and repository config are left alone. Running it
//! again changes nothing.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The helper name as it appears in git config.
pub const HELPER_NAME: &str = "devc-encrypted";

/// How to run git for the config edits.
#[derive(Clone, Debug)]
pub struct GitConfig {
    /// The git program.
    pub program: PathBuf,
    /// Extra environment for git (tests point `GIT_CONFIG_GLOBAL` and
    /// `GIT_CONFIG_SYSTEM` at scratch files).
    pub envs: Vec<(OsString, OsString)>,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            program: PathBuf::from("git"),
            envs: Vec::new(),
        }
    }
}

/// What [`configure_git`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitInstalled {
    /// The global config already had the wanted list; nothing was written.
    AlreadyConfigured,
    /// The global `credential.helper` list was rewritten to this.
    Configured(Vec<String>),
    /// git is not installed, so there is nothing to configure (a container
    /// may well use docker only; `install` goes on).
    GitMissing,
}

impl fmt::Display for GitInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitInstalled::AlreadyConfigured => {
                write!(f, "credential.helper already asks {HELPER_NAME} first")
            }
            GitInstalled::Configured(list) => {
                let shown: Vec<&str> = list
                    .iter()
                    .map(|h| if h.is_empty() { "(reset)" } else { h.as_str() })
                    .collect();
                write!(f, "global credential.helper is now: {}", shown.join(", "))
            }
            GitInstalled::GitMissing => write!(f, "git is not installed; nothing to configure"),
        }
    }
}

/// Why git could not be configured.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// git could not be started.
    Spawn(io::Error),
    /// A git command failed.
    Git {
        /// The command, without the program name.
        args: String,
        /// git's exit status and first stderr line.
        detail: String,
    },
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Spawn(e) => write!(f, "cannot run git: {e}"),
            InstallError::Git { args, detail } => write!(f, "`git {args}` failed: {detail}"),
        }
    }
}

impl std::error::Error for InstallError {}

impl GitConfig {
    fn run(&self, args: &[&str]) -> Result<Output, InstallError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            // Outside any repository, so no repository config is read or written.
            .current_dir("/")
            .env_remove("GIT_DIR")
            .env_remove("GIT_CONFIG")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd.output().map_err(InstallError::Spawn)
    }

    fn failed(args: &[&str], out: &Output) -> InstallError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        InstallError::Git {
            args: args.join(" "),
            detail: format!("{} ({})", out.status, stderr.lines().next().unwrap_or("")),
        }
    }

    /// The value of environment variable `name` as git will see it.
    fn env(&self, name: &str) -> Option<OsString> {
        match self.envs.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.clone()),
            None => std::env::var_os(name),
        }
    }

    /// `git config --system` reads the file even when `GIT_CONFIG_NOSYSTEM`
    /// tells every other git command to ignore it; honour the variable here.
    fn system_ignored(&self) -> bool {
        self.env("GIT_CONFIG_NOSYSTEM").is_some_and(|v| {
            matches!(
                v.to_string_lossy().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
    }

    /// All values of `credential.helper` in one scope; none is not an error.
    /// `includes` follows `[include]`d files: right for the system file as
    /// git reads it, wrong for the global file this module rewrites (an
    /// included file's values stay where the include is).
    fn helpers(&self, scope: &str, includes: bool) -> Result<Vec<String>, InstallError> {
        let include = if includes {
            "--includes"
        } else {
            "--no-includes"
        };
        let args = [
            "config",
            scope,
            include,
            "--null",
            "--get-all",
            "credential.helper",
        ];
        let out = self.run(&args)?;
        match out.status.code() {
            // NUL-terminated, so values with newlines cannot confuse the split.
            Some(0) => Ok(nul_separated(&out.stdout)),
            // 1: the key is not set (also when the file does not exist).
            Some(1) => Ok(Vec::new()),
            _ => Err(Self::failed(&args, &out)),
        }
    }

    fn run_ok(&self, args: &[&str], ok_codes: &[i32]) -> Result<(), InstallError> {
        let out = self.run(args)?;
        match out.status.code() {
            Some(c) if c == 0 || ok_codes.contains(&c) => Ok(()),
            _ => Err(Self::failed(args, &out)),
        }
    }
}

/// The files git's `store` helper keeps credentials in, in clear:
/// `~/.git-credentials` and `$XDG_CONFIG_HOME/git/credentials` (else
/// `~/.config/git/credentials`).
pub fn store_files() -> Vec<PathBuf> {
    let home = devc_keydelivery::environment::home_dir();
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    vec![
        home.join(".git-credentials"),
        xdg.join("git").join("credentials"),
    ]
}

/// Applies git's rule (an empty value clears the list) to a sequence of values.
pub fn effective(values: &[String]) -> Vec<String> {
    let mut list = Vec::new();
    for v in values {
        if v.is_empty() {
            list.clear();
        } else {
            list.push(v.clone());
        }
    }
    list
}

/// The global `credential.helper` values wanted, given the current system
/// and global values.
pub fn wanted_global(system: &[String], global: &[String]) -> Vec<String> {
    let system_effective = effective(system);
    let before: Vec<String> = [system, global].concat();
    let mut wanted = Vec::new();
    if !system_effective.is_empty() {
        wanted.push(String::new());
    }
    wanted.push(HELPER_NAME.to_owned());
    for h in effective(&before) {
        if h != HELPER_NAME && !wanted.contains(&h) {
            wanted.push(h);
        }
    }
    wanted
}

impl GitConfig {
    /// The helper list git uses here (system, global and repository config,
    /// includes followed, resets applied); `None` when git is not installed.
    pub fn effective_helpers(&self) -> Result<Option<Vec<String>>, InstallError> {
        let args = [
            "config",
            "--includes",
            "--null",
            "--get-all",
            "credential.helper",
        ];
        let out = match self.run(&args) {
            Err(InstallError::Spawn(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        match out.status.code() {
            Some(0) => Ok(Some(effective(&nul_separated(&out.stdout)))),
            Some(1) => Ok(Some(Vec::new())),
            _ => Err(Self::failed(&args, &out)),
        }
    }
}

/// Values printed by `git config --null`: each ends with a NUL.
fn nul_separated(out: &[u8]) -> Vec<String> {
    let mut values: Vec<String> = out
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    // Every value ends with a NUL, so the last piece is empty.
    values.pop();
    values
}

/// Configures the user's global git config so that git asks
/// `devc-encrypted` first and every previously configured helper after it.
/// Idempotent.
pub fn configure_git(git: &GitConfig) -> Result<GitInstalled, InstallError> {
    let system = match git.helpers("--system", true) {
        Err(InstallError::Spawn(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(GitInstalled::GitMissing);
        }
        _ if git.system_ignored() => Vec::new(),
        other => other?,
    };
    let global = git.helpers("--global", false)?;
    let wanted = wanted_global(&system, &global);
    if global == wanted {
        return Ok(GitInstalled::AlreadyConfigured);
    }
    // 5: nothing to unset.
    git.run_ok(
        &["config", "--global", "--unset-all", "credential.helper"],
        &[5],
    )?;
    for h in &wanted {
        git.run_ok(
            &["config", "--global", "--add", "credential.helper", h],
            &[],
        )?;
    }
    Ok(GitInstalled::Configured(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn effective_applies_resets() {
        assert_eq!(effective(&v(&["a", "", "b", "c"])), v(&["b", "c"]));
        assert_eq!(effective(&v(&["a", "b", ""])), v(&[]));
    }

    #[test]
    fn wanted_puts_ours_first_and_keeps_the_rest() {
        assert_eq!(wanted_global(&[], &[]), v(&[HELPER_NAME]));
        assert_eq!(
            wanted_global(&[], &v(&["cache --timeout=60"])),
            v(&[HELPER_NAME, "cache --timeout=60"])
        );
        assert_eq!(
            wanted_global(&v(&["store"]), &[]),
            v(&["", HELPER_NAME, "store"])
        );
        assert_eq!(
            wanted_global(&v(&["store"]), &v(&["", "cache"])),
            v(&["", HELPER_NAME, "cache"])
        );
        assert_eq!(
            wanted_global(&v(&["store"]), &v(&["cache"])),
            v(&["", HELPER_NAME, "store", "cache"])
        );
    }

    #[test]
    fn wanted_is_a_fixed_point() {
        for (sys, glob) in [
            (v(&[]), v(&[])),
            (v(&[]), v(&["cache", HELPER_NAME])),
            (v(&["store"]), v(&["cache"])),
            (v(&["store", ""]), v(&["osxkeychain"])),
        ] {
            let once = wanted_global(&sys, &glob);
            assert_eq!(wanted_global(&sys, &once), once, "{sys:?} {glob:?}");
        }
    }
}

/// Against a real git, with scratch system and global config files.
#[cfg(test)]
mod with_git {
    use std::fs;
    use std::path::Path;

    use super::*;

    fn git_program() -> Option<PathBuf> {
        ["/usr/local/bin/git", "/usr/bin/git"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    fn config(dir: &Path) -> Option<GitConfig> {
        let Some(program) = git_program() else {
            eprintln!("skipping: git not found");
            return None;
        };
        Some(GitConfig {
            program,
            envs: vec![
                ("HOME".into(), dir.into()),
                ("GIT_CONFIG_GLOBAL".into(), dir.join("global").into()),
                ("GIT_CONFIG_SYSTEM".into(), dir.join("system").into()),
                // The runner's environment may disable the system file.
                ("GIT_CONFIG_NOSYSTEM".into(), "0".into()),
            ],
        })
    }

    #[test]
    fn installs_first_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(git) = config(dir.path()) else {
            return;
        };
        fs::write(
            dir.path().join("global"),
            "[credential]\n\thelper = cache --timeout=60\n",
        )
        .expect("write global");
        assert_eq!(
            configure_git(&git).expect("configure"),
            GitInstalled::Configured(vec![HELPER_NAME.into(), "cache --timeout=60".into()])
        );
        let text = fs::read_to_string(dir.path().join("global")).expect("read global");
        assert!(text.contains("helper = devc-encrypted"), "{text}");
        assert_eq!(
            configure_git(&git).expect("again"),
            GitInstalled::AlreadyConfigured
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("global")).expect("read global"),
            text
        );
    }

    #[test]
    fn resets_system_helpers_and_lists_them_after_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(git) = config(dir.path()) else {
            return;
        };
        fs::write(
            dir.path().join("system"),
            "[credential]\n\thelper = store\n",
        )
        .expect("write system");
        configure_git(&git).expect("configure");
        // What git itself now resolves, across both files, in order.
        assert_eq!(
            git.effective_helpers().expect("git config"),
            Some(vec![HELPER_NAME.to_owned(), "store".to_owned()])
        );
        assert_eq!(
            configure_git(&git).expect("again"),
            GitInstalled::AlreadyConfigured
        );
    }

    #[test]
    fn a_missing_git_is_reported_not_fatal() {
        let git = GitConfig {
            program: PathBuf::from("/nonexistent/git"),
            envs: Vec::new(),
        };
        assert_eq!(
            configure_git(&git).expect("no error"),
            GitInstalled::GitMissing
        );
    }

    #[test]
    fn an_ignored_system_file_is_not_reset_or_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(mut git) = config(dir.path()) else {
            return;
        };
        fs::write(
            dir.path().join("system"),
            "[credential]\n\thelper = store\n",
        )
        .expect("write system");
        git.envs.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
        assert_eq!(
            configure_git(&git).expect("configure"),
            GitInstalled::Configured(vec![HELPER_NAME.into()])
        );
    }

    #[test]
    fn works_without_any_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(git) = config(dir.path()) else {
            return;
        };
        assert_eq!(
            configure_git(&git).expect("configure"),
            GitInstalled::Configured(vec![HELPER_NAME.into()])
        );
    }
}
