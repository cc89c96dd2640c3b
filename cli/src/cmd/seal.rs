//! `devc-vault seal docker|git`: on the host, copy credentials the host
//! already has (docker's config and helpers, git's helpers) into the vault,
//! each remembering its source; `seal --refresh` asks those sources again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use devc_host::docker::import::{self as docker_import, Selection};
use devc_host::git::import::{self as git_import, Query};
use devc_host::refresh::{self, Outcome, Refresher, Schedule, Which};
use devc_keydelivery::Config;

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock::{self, Keys};

/// Copy credentials the host already resolves into the vault (run on the host)
///
/// Each entry remembers where it came from (which helper or file, and
/// when), inside the encrypted payload, so `seal --refresh` can ask that
/// source again; entries stored inside the container are never touched.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// Ask every host source again for the entries sealed from it (helpers in parallel, each with a deadline); a source that fails is reported and its entry kept
    #[arg(long)]
    refresh: bool,
    /// With --refresh: only the entries that are due (their source's interval has passed, or their known expiry is near; see [refresh] in the config file)
    #[arg(long, requires = "refresh")]
    due: bool,
    /// With --refresh: write a systemd user service and timer that run `seal --refresh --due` every DURATION (e.g. 15m), and print the same as a cron line
    #[arg(long, value_name = "DURATION", requires = "refresh", value_parser = crate::cmd::agent::duration)]
    write_timer: Option<Duration>,
    /// With --write-timer: where to write the units [default: $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user]
    #[arg(long, value_name = "DIR", requires = "write_timer")]
    timer_dir: Option<PathBuf>,
}

/// What to seal.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Registry credentials from the host's docker config: plain `auths`,
    /// identity tokens, and whatever its credsStore / credHelpers answer
    Docker {
        /// The host's docker config directory [default: $DOCKER_CONFIG, else ~/.docker]
        #[arg(long, value_name = "DIR")]
        docker_config: Option<PathBuf>,
        /// A registry to seal (repeatable); all of them must resolve, or nothing is written
        #[arg(
            long = "registry",
            value_name = "HOST",
            required_unless_present = "all"
        )]
        registries: Vec<String>,
        /// Every registry the config names and every server its credsStore lists; those that give nothing are reported and skipped
        #[arg(long, conflicts_with = "registries")]
        all: bool,
    },
    /// A git credential, as the host's own `git credential fill` answers it
    /// (its configured helpers; prompts are disabled)
    Git {
        #[command(flatten)]
        target: super::GitTarget,
        /// User name, when the host has several for this host
        #[arg(long)]
        username: Option<String>,
    },
}

/// Runs `seal`.
pub fn run(g: &Global, a: Args) -> CliResult {
    if a.refresh {
        if let Some(every) = a.write_timer {
            return crate::cmd::timer::write(g, every, a.timer_dir);
        }
        return run_refresh(g, a.due);
    }
    let Some(what) = a.what else {
        return Err(CliError::Usage(
            "say what to seal: `seal docker`, `seal git`, or `seal --refresh`".into(),
        ));
    };
    g.store().read()?;
    match what {
        What::Docker {
            docker_config,
            registries,
            all,
        } => {
            let dir =
                docker_config.unwrap_or_else(devc_keydelivery::environment::docker_config_dir);
            let selection = if all {
                Selection::All
            } else {
                Selection::Only(registries)
            };
            let sealed = docker(g, &dir, selection)?;
            for n in sealed.names {
                println!("sealed docker credential for {n}");
            }
            for m in sealed.missed {
                eprintln!("devc-vault: skipped {m}");
            }
        }
        What::Git {
            target:
                super::GitTarget {
                    protocol,
                    host,
                    path,
                },
            username,
        } => {
            let shown = git(
                g,
                Query {
                    protocol,
                    host,
                    path,
                    username,
                },
            )?;
            println!("sealed git credential for {shown}");
        }
    }
    Ok(())
}

/// `seal --refresh [--due]`: one pass of the host refresher over the vault.
fn run_refresh(g: &Global, due: bool) -> CliResult {
    let store = g.store();
    store.read()?;
    let keys = Keys::load(g)?;
    let mut refresher = Refresher::new(Schedule::new(Config::load()?.refresh, None));
    let which = if due { Which::Due } else { Which::All };
    let report = refresher.run(&store, |s| keys.open(s), which)?;
    if report.host_entries == 0 {
        println!(
            "no entry in {} came from a host source; nothing to refresh (seal some with `devc-vault seal docker|git`)",
            store.path().display()
        );
        return Ok(());
    }
    if report.lines.is_empty() {
        println!("nothing is due yet");
    }
    for l in &report.lines {
        match l.outcome {
            Outcome::Failed(_) => eprintln!("devc-vault: {l}"),
            _ => println!("{l}"),
        }
    }
    match report.failures() {
        0 => Ok(()),
        n => Err(CliError::Usage(format!(
            "{n} of {} entries could not be refreshed (see above); the others were written",
            report.lines.len()
        ))),
    }
}

/// What [`docker`] sealed: `registry (user)` for each entry, and one line
/// per registry that gave nothing.
#[derive(Debug, Default)]
pub struct Sealed {
    /// The entries written.
    pub names: Vec<String>,
    /// Registries skipped, each with why.
    pub missed: Vec<String>,
}

/// Resolves the selected registries from the host's docker config in `dir`
/// and writes them into the vault in one update. With a list, every one
/// must resolve; with [`Selection::All`], at least one.
pub fn docker(g: &Global, dir: &Path, selection: Selection) -> CliResult<Sealed> {
    let all = matches!(selection, Selection::All);
    let found =
        docker_import::resolve(dir, &selection).map_err(|e| CliError::Usage(e.to_string()))?;
    if found.entries.is_empty() || (!all && !found.missed.is_empty()) {
        return Err(CliError::Usage(format!(
            "nothing sealed: {}",
            found.missed.join("; ")
        )));
    }
    let schedule = Schedule::new(Config::load()?.refresh, None);
    let entries: Vec<_> = found
        .entries
        .into_iter()
        .map(|e| schedule.stamp(e))
        .collect();
    let names: Vec<String> = entries
        .iter()
        .map(|e| {
            let from = e.source.as_ref().map(refresh::describe).unwrap_or_default();
            format!("{} ({}) from {from}", e.server_url, e.username)
        })
        .collect();
    g.store().update(
        |s| unlock::open(s, g),
        |v| {
            for e in entries {
                v.upsert_docker(e)?;
            }
            Ok::<_, CliError>(())
        },
    )?;
    Ok(Sealed {
        names,
        missed: found.missed,
    })
}

/// Asks the host's git (`git credential fill`, no prompts) for one
/// credential and writes it into the vault; returns `proto://user@host`.
pub fn git(g: &Global, q: Query) -> CliResult<String> {
    let entry = git_import::fill("git", &q).map_err(CliError::Usage)?;
    let shown = format!("{}://{}@{}", entry.protocol, entry.username, entry.host);
    g.store().update(
        |s| unlock::open(s, g),
        |v| {
            v.upsert_git(entry)?;
            Ok::<_, CliError>(())
        },
    )?;
    Ok(shown)
}
