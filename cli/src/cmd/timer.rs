//! The user timer that keeps a vault fresh without an agent: a systemd user
//! service and timer running `devc-vault seal --refresh --due` every so
//! often, written by `devc-vault seal --refresh --write-timer DURATION`,
//! and the same schedule as a cron line for hosts without systemd.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devc_keydelivery::environment::{self, ENV_CONFIG, ENV_DOCKER_CONFIG, ENV_KEY_ORDER};

use crate::Global;
use crate::error::{CliError, CliResult};

/// Environment variables the refresh needs as the user's shell has them:
/// where the host's helpers are, docker's config, devc-vault's config. None
/// of them holds a secret.
const PASSED_ENV: &[&str] = &["PATH", ENV_DOCKER_CONFIG, ENV_CONFIG, ENV_KEY_ORDER];

/// Writes `devc-vault-refresh-<vault id>.service` and `.timer` and prints
/// how to enable them, and the cron line that does the same.
pub fn write(g: &Global, every: Duration, dir: Option<PathBuf>) -> CliResult {
    if every.as_secs() < 60 {
        return Err(CliError::Usage(
            "--write-timer needs at least 1m; for shorter intervals run `devc-vault agent --refresh-every`".into(),
        ));
    }
    if g.passphrase_fd.is_some() {
        return Err(CliError::Usage(
            "a timer cannot type a passphrase: give --key-file, or run `devc-vault agent --refresh-every` instead".into(),
        ));
    }
    let vault = absolute(&g.vault_path());
    let id = g.store().read()?.id.to_string();
    let name = format!("devc-vault-refresh-{}", &id[..8]);
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Usage(format!("cannot find this program's path: {e}")))?;
    let mut argv: Vec<OsString> = vec![exe.into(), "--vault".into(), vault.clone().into()];
    match &g.key_file {
        Some(k) => argv.extend(["--key-file".into(), absolute(k).into()]),
        None => eprintln!(
            "devc-vault: no --key-file given: the timer will open the vault with the configured key sources (an agent, or the config file's key_command); it cannot prompt"
        ),
    }
    argv.extend(["seal", "--refresh", "--due"].map(OsString::from));
    let env: Vec<(&str, OsString)> = PASSED_ENV
        .iter()
        .filter_map(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(|v| (*k, v))
        })
        .collect();

    let dir = dir.unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let service = dir.join(format!("{name}.service"));
    let timer = dir.join(format!("{name}.timer"));
    write_file(&service, &service_unit(&vault, &argv, &env))?;
    write_file(&timer, &timer_unit(&vault, &name, every))?;
    println!("wrote {} and {}", service.display(), timer.display());
    println!(
        "start it: systemctl --user daemon-reload && systemctl --user enable --now {name}.timer"
    );
    println!("or, without systemd, add this line with `crontab -e`:");
    println!("{}", cron_line(every, &argv, &env));
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn default_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| environment::home_dir().join(".config"))
        .join("systemd")
        .join("user")
}

fn write_file(path: &Path, text: &str) -> CliResult {
    std::fs::write(path, text)
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

/// One word of a unit's command line or `Environment=`: quoted when it
/// needs to be, `%` doubled (systemd's specifiers), `\` and `"` escaped.
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return s;
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A word for `sh` (cron runs lines with it): single-quoted.
fn sh_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn lossy(s: &OsString) -> String {
    s.to_string_lossy().into_owned()
}

fn service_unit(vault: &Path, argv: &[OsString], env: &[(&str, OsString)]) -> String {
    let mut out = format!(
        "# Written by `devc-vault seal --refresh --write-timer`.\n[Unit]\nDescription=devc-vault: refresh the credentials sealed from this host into {}\n\n[Service]\nType=oneshot\n",
        vault.display()
    );
    for (k, v) in env {
        out.push_str(&format!(
            "Environment={}\n",
            systemd_word(&format!("{k}={}", lossy(v)))
        ));
    }
    let words: Vec<String> = argv.iter().map(|a| systemd_word(&lossy(a))).collect();
    out.push_str(&format!("ExecStart={}\n", words.join(" ")));
    out
}

fn timer_unit(vault: &Path, name: &str, every: Duration) -> String {
    let secs = every.as_secs();
    format!(
        "# Written by `devc-vault seal --refresh --write-timer`.\n[Unit]\nDescription=devc-vault: refresh {} every {}\n\n[Timer]\nOnStartupSec=1min\nOnUnitActiveSec={secs}s\nAccuracySec=30s\nUnit={name}.service\n\n[Install]\nWantedBy=timers.target\n",
        vault.display(),
        devc_vault::clock::span(secs),
    )
}

/// The cron schedule nearest to `every`: every M minutes below an hour,
/// every H hours below a day, else daily.
fn cron_schedule(every: Duration) -> String {
    let m = (every.as_secs() / 60).max(1);
    if m < 60 {
        format!("*/{m} * * * *")
    } else if m < 24 * 60 {
        format!("0 */{} * * *", m / 60)
    } else {
        "0 0 * * *".into()
    }
}

fn cron_line(every: Duration, argv: &[OsString], env: &[(&str, OsString)]) -> String {
    let mut words: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", sh_word(&lossy(v))))
        .collect();
    words.extend(argv.iter().map(|a| sh_word(&lossy(a))));
    format!("{} {}", cron_schedule(every), words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_schedules() {
        assert_eq!(systemd_word("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(systemd_word("/a b/50%"), "\"/a b/50%%\"");
        assert_eq!(systemd_word("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(sh_word("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sh_word("it's here"), "'it'\\''s here'");
        assert_eq!(cron_schedule(Duration::from_secs(15 * 60)), "*/15 * * * *");
        assert_eq!(cron_schedule(Duration::from_secs(2 * 3600)), "0 */2 * * *");
        assert_eq!(cron_schedule(Duration::from_secs(3 * 86_400)), "0 0 * * *");
    }
}
