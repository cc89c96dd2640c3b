//! `devc-vault doctor`: check a setup end to end and say what to fix.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use devc_host::docker::config as docker_config;
use devc_host::git::config::{self as git_config, GitConfig};
use devc_host::refresh::{self, Schedule};
use devc_keydelivery::environment as env;
use devc_keydelivery::{Config, PromptPolicy, SourceKind, UnlockError, unlock_with_source};
use devc_vault::{Store, Vault, clock};
use serde_json::Value;

use crate::Global;
use crate::error::{CliError, CliResult};

/// Check the vault file, the key sources, docker's and git's configuration,
/// and the helpers on PATH; print what to fix. Never prompts, never prints a
/// secret; exits 1 when something is broken.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The docker config directory [default: $DOCKER_CONFIG, else ~/.docker]
    #[arg(long, value_name = "DIR")]
    docker_config: Option<PathBuf>,
}

#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("ok       {what}: {}", detail.as_ref());
    }
    fn warn(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("warning  {what}: {}", detail.as_ref());
    }
    fn problem(&mut self, what: &str, detail: impl AsRef<str>) {
        self.problems += 1;
        println!("PROBLEM  {what}: {}", detail.as_ref());
    }
}

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Runs `doctor`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let mut r = Report::default();
    let vault = check_vault(g, &mut r);
    if let Some(v) = &vault {
        check_freshness(v, &mut r);
    }
    check_agent_uid(vault.is_some(), &mut r);
    let docker_dir = a
        .docker_config
        .unwrap_or_else(devc_keydelivery::environment::docker_config_dir);
    check_docker(&docker_dir, vault.as_ref(), &mut r);
    check_plaintext(&docker_dir, &mut r);
    check_git(&mut r);
    for (bin, needed_by) in [
        (
            "docker-credential-devc-encrypted",
            "docker, skopeo and podman",
        ),
        ("git-credential-devc-encrypted", "git"),
    ] {
        match on_path(bin) {
            Some(p) => r.ok("helper", p.display().to_string()),
            None => r.problem(
                "helper",
                format!("{bin} is not on PATH, so {needed_by} cannot use the vault; install it"),
            ),
        }
    }
    if r.problems > 0 {
        return Err(CliError::Usage(format!(
            "{} problem(s) found; see the PROBLEM lines above",
            r.problems
        )));
    }
    println!("all checks passed");
    Ok(())
}

fn check_vault(g: &Global, r: &mut Report) -> Option<Vault> {
    let path = g.vault_path();
    let sealed = match Store::new(&path).read() {
        Ok(s) => s,
        Err(e) => {
            let dir = devc_vault::file::parent_dir(&path);
            match not_yours(&dir) {
                Some(hint) => r.problem("vault", format!("{e}; {hint}")),
                None => r.problem("vault", e.to_string()),
            }
            return None;
        }
    };
    let kinds: Vec<&str> = sealed.slots.iter().map(|s| s.kind.name()).collect();
    r.ok(
        "vault",
        format!(
            "{} (id {}, slots: {})",
            path.display(),
            sealed.id,
            kinds.join(", ")
        ),
    );
    if mode(&path).is_some_and(|m| m & 0o077 != 0) {
        r.warn(
            "vault",
            format!("group or others can read it: chmod 600 {}", path.display()),
        );
    }
    let dir = devc_vault::file::parent_dir(&path);
    if mode(&dir).is_some_and(|m| m & 0o077 != 0) {
        r.warn(
            "vault",
            format!(
                "its directory is open to group or others: chmod 700 {}",
                dir.display()
            ),
        );
    }

    let mut cfg = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            r.problem("keys", e.to_string());
            return None;
        }
    };
    if let Some(k) = &g.key_file {
        cfg.key_file = k.clone();
    }
    cfg.prompt = PromptPolicy::Never;
    check_pending_rotate(&cfg.key_file, &sealed, r);
    match unlock_with_source(&sealed, &cfg) {
        Ok((v, source)) => {
            r.ok(
                "keys",
                format!(
                    "the {source} source opens it ({} docker, {} git credentials)",
                    v.docker().len(),
                    v.git().len()
                ),
            );
            Some(v)
        }
        Err(UnlockError::NoKey(attempts)) => {
            let has_passphrase = sealed
                .slots
                .iter()
                .any(|s| matches!(s.kind, devc_vault::SlotKind::Passphrase(_)));
            let e = UnlockError::NoKey(attempts);
            if has_passphrase {
                r.warn("keys", format!("{e}; the first pull will ask for the passphrase (or run `devc-vault unlock` now)"));
            } else {
                r.problem(
                    "keys",
                    format!(
                        "{e}; mount the key file at {} or point DEVC_VAULT_AGENT_SOCK at an agent",
                        cfg.key_file.display()
                    ),
                );
            }
            None
        }
        Err(e) => {
            r.problem("keys", e.to_string());
            None
        }
    }
}

/// Every entry sealed from a host source: where it came from, when, and
/// whether it is stale (not fetched within its source's interval) or
/// expired or about to expire.
fn check_freshness(v: &Vault, r: &mut Report) {
    let refresh = Config::load().map(|c| c.refresh).unwrap_or_default();
    let schedule = Schedule::new(refresh, None);
    let now = devc_vault::now();
    let docker = v.docker().iter().filter_map(|e| {
        let s = e.source.as_ref()?;
        Some((format!("docker {}", e.server_url), s, e.expires))
    });
    let git = v.git().iter().filter_map(|e| {
        let s = e.source.as_ref()?;
        let path = e
            .path
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let name = format!("git {}://{}{path}", e.protocol, e.host);
        Some((name, s, e.password_expiry_utc))
    });
    let fix = "refresh with `devc-vault seal --refresh` on the host, and keep it fresh with `devc-vault agent --refresh-every 15m` or `devc-vault seal --refresh --write-timer 15m`";
    for (name, s, expires) in docker.chain(git) {
        let name = crate::cmd::list::terminal_safe(&name);
        let from = crate::cmd::list::terminal_safe(&refresh::describe(s));
        let desc = format!(
            "{name} from {from}, fetched {} ago",
            clock::span(now.saturating_sub(s.fetched))
        );
        let every = schedule.of(s).0.as_secs();
        match expires {
            Some(t) if t <= now => r.warn(
                "freshness",
                format!(
                    "{desc}, EXPIRED {} ago ({}): {fix}",
                    clock::span(now - t),
                    clock::utc(t)
                ),
            ),
            Some(t) if schedule.due_at(s, Some(t)) <= now => r.warn(
                "freshness",
                format!(
                    "{desc}, expires in {} ({}): {fix}",
                    clock::span(t - now),
                    clock::utc(t)
                ),
            ),
            _ if s.fetched.saturating_add(every) < now => r.warn(
                "freshness",
                format!(
                    "{desc}: stale, its source's interval is {}{}: {fix}",
                    clock::span(every),
                    expires
                        .map(|t| format!("; expires in {}", clock::span(t - now)))
                        .unwrap_or_default()
                ),
            ),
            Some(t) => r.ok(
                "freshness",
                format!("{desc}, expires in {}", clock::span(t - now)),
            ),
            None => r.ok("freshness", desc),
        }
    }
}

/// A `K.next` beside the key file: a rotate that a crash interrupted.
fn check_pending_rotate(key_file: &Path, sealed: &devc_vault::SealedVault, r: &mut Report) {
    use devc_vault::keyfile;
    let next = devc_vault::pending_key_path(key_file);
    let Ok(pending) = keyfile::read(&next) else {
        return;
    };
    let k_opens = keyfile::read(key_file).is_ok_and(|k| keyfile::opens(&k, sealed));
    if keyfile::opens(&pending, sealed) && !k_opens {
        r.warn(
            "keys",
            format!(
                "a rotate was interrupted after replacing the vault: {} opens it and {} does not; the helpers use it meanwhile; finish with `mv {} {}` (or any devc-vault command that writes with --key-file {})",
                next.display(),
                key_file.display(),
                next.display(),
                key_file.display(),
                key_file.display()
            ),
        );
    } else if k_opens && !keyfile::opens(&pending, sealed) {
        r.warn(
            "keys",
            format!(
                "{} is left from a rotate that stopped before replacing the vault and opens nothing; remove it",
                next.display()
            ),
        );
    }
}

fn check_docker(dir: &Path, vault: Option<&Vault>, r: &mut Report) {
    let path = dir.join(docker_config::CONFIG_FILE);
    let config = match docker_config::read_config(&path) {
        Ok(Some((_, config))) => config,
        Ok(None) => {
            r.problem(
                "docker",
                format!("no {}: run `devc-vault install`", path.display()),
            );
            return;
        }
        Err(why) => {
            r.problem("docker", format!("{}: {why}", path.display()));
            return;
        }
    };
    if docker_config::uses_helper(&config) {
        r.ok(
            "docker",
            format!("{} uses credsStore \"devc-encrypted\"", path.display()),
        );
    } else {
        let current = config.get("credsStore").and_then(Value::as_str);
        r.problem(
            "docker",
            format!("credsStore is {current:?}, not \"devc-encrypted\": run `devc-vault install`"),
        );
    }
    let Some(vault) = vault else { return };
    let missing = docker_config::missing_cred_helpers(&config, &docker_config::registries(vault));
    if missing.is_empty() {
        r.ok(
            "docker",
            "credHelpers name devc-encrypted for every registry in the vault",
        );
    } else {
        r.warn(
            "docker",
            format!(
                "skopeo and podman read only credHelpers, which lack {}: run `devc-vault install`",
                missing.join(", ")
            ),
        );
    }
}

/// Credentials in clear next to the vault: docker's config (and its
/// backups) and git's `store` helper files.
fn check_plaintext(docker_dir: &Path, r: &mut Report) {
    for (path, registries) in docker_config::plaintext_files(docker_dir) {
        r.problem(
            "plaintext",
            format!(
                "{} holds credentials in clear for {}: run `devc-vault install`, which moves them into the vault",
                path.display(),
                registries.join(", ")
            ),
        );
    }
    for path in git_config::store_files() {
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            r.problem(
                "plaintext",
                format!(
                    "{} holds git credentials in clear (git's `store` helper): add them with `devc-vault add git` (or `devc-vault seal git` on the host), then delete the file",
                    path.display()
                ),
            );
        }
    }
}

fn check_git(r: &mut Report) {
    let list = match GitConfig::default().effective_helpers() {
        Ok(Some(list)) => list,
        Ok(None) => {
            r.ok("git", "git is not installed; nothing to check");
            return;
        }
        Err(e) => {
            r.warn(
                "git",
                format!("cannot read git's credential.helper list: {e}"),
            );
            return;
        }
    };
    match list.first().map(String::as_str) {
        Some(git_config::HELPER_NAME) => r.ok(
            "git",
            format!(
                "credential.helper asks devc-encrypted first ({})",
                list.join(", ")
            ),
        ),
        _ => r.warn(
            "git",
            format!(
                "credential.helper is [{}], not devc-encrypted first: run `devc-vault install`",
                list.join(", ")
            ),
        ),
    }
}

/// The uid that `uid` in this user namespace is outside it, from the
/// `uid_map` text (`inside outside count` lines), or `None` if unmapped.
pub fn outside_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let uid = u64::from(uid);
        (inside <= uid && uid < inside + count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

/// Why a vault directory another uid owns is closed to this user, and the
/// fix. In a user namespace (rootless podman without keep-id, userns-remap)
/// the host user's 0700 directory shows as another uid's.
fn not_yours(dir: &Path) -> Option<String> {
    let owner = std::fs::metadata(dir).ok()?.uid();
    let me = env::uid();
    if owner == me || me == 0 {
        return None;
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let namespaced = !map.trim().is_empty() && !is_identity_map(&map);
    let fix = if namespaced {
        format!(
            "this container maps users (/proc/self/uid_map): start it with --userns=keep-id, or on the host give the directory to your container uid (rootless podman: podman unshare chown -R {me}:{me} <host dir>)"
        )
    } else {
        format!("give it to your uid on the host (chown -R {me} <host dir>)")
    };
    Some(format!(
        "{} belongs to uid {owner} and you are uid {me}: {fix}",
        dir.display()
    ))
}

/// Whether a `uid_map` is the initial namespace's identity map.
pub fn is_identity_map(uid_map: &str) -> bool {
    let f: Vec<&str> = uid_map.split_whitespace().collect();
    f == ["0", "0", "4294967295"]
}

/// The agent road in a container whose user is not the agent's: the
/// agent must be told to serve this user's uid as the host sees it
/// (`--allow-uid`), which `/proc/self/uid_map` gives when the container
/// runs in a user namespace (rootless podman without keep-id, userns-remap).
fn check_agent_uid(opened: bool, r: &mut Report) {
    let Ok(cfg) = Config::load() else { return };
    if !cfg.order.contains(&SourceKind::Agent) {
        return;
    }
    let me = env::uid();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let outside = if map.trim().is_empty() {
        Some(me)
    } else {
        outside_uid(&map, me)
    };
    let Some((sock, owner)) = cfg.agent_sockets.iter().find_map(|s| {
        let dir = devc_keydelivery::endpoint::socket_dir(s);
        std::fs::metadata(&dir).ok().map(|m| (s.clone(), m.uid()))
    }) else {
        return;
    };
    let dir = devc_keydelivery::endpoint::socket_dir(&sock);
    if owner == me {
        r.ok(
            "agent",
            format!(
                "{} belongs to you (uid {me}): the agent serves you without --allow-uid",
                dir.display()
            ),
        );
        return;
    }
    let Some(host_uid) = outside else {
        r.problem(
            "agent",
            format!("your uid {me} is not mapped outside this container (/proc/self/uid_map), so no host agent can serve it"),
        );
        return;
    };
    let seen = if is_identity_map(&map) || map.trim().is_empty() {
        format!("you are uid {me}")
    } else {
        format!(
            "you are uid {me} here and uid {host_uid} outside this user namespace (/proc/self/uid_map)"
        )
    };
    let fix = format!(
        "the agent on the host must run with --allow-uid {host_uid} (devc-vault agent --key-file KEY --allow-uid {host_uid})"
    );
    if opened {
        r.ok(
            "agent",
            format!(
                "{} belongs to uid {owner} here and {seen}: {fix}, as it does",
                dir.display()
            ),
        );
    } else {
        r.problem(
            "agent",
            format!(
                "{} belongs to uid {owner} here and {seen}: {fix}",
                dir.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_maps() {
        let rootless = "         0       1001          1\n         1     100000      65536\n";
        assert_eq!(outside_uid(rootless, 0), Some(1001));
        assert_eq!(outside_uid(rootless, 1000), Some(100999));
        assert_eq!(outside_uid(rootless, 65537), None);
        assert!(!is_identity_map(rootless));
        let init = "         0          0 4294967295\n";
        assert!(is_identity_map(init));
        assert_eq!(outside_uid(init, 1000), Some(1000));
        assert_eq!(outside_uid("garbage\n", 1), None);
    }
}
