//! `devc-vault seal docker|git`: on the host, copy credentials the host
//! already has (docker's config and helpers, git's helpers) into the vault.

use std::path::{Path, PathBuf};

use devc_host::docker::import::{self as docker_import, Selection};
use devc_host::git::import::{self as git_import, Query};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock;

/// Copy credentials the host already resolves into the vault (run on the host).
#[derive(clap::Subcommand, Debug)]
pub enum Args {
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
        /// Every registry the config names; those that give nothing are reported and skipped
        #[arg(long, conflicts_with = "registries")]
        all: bool,
    },
    /// A git credential, as the host's own `git credential fill` answers it
    /// (its configured helpers; prompts are disabled)
    Git {
        /// Protocol, e.g. https
        #[arg(long)]
        protocol: String,
        /// Host, with :port if not the default
        #[arg(long)]
        host: String,
        /// Repository path (for credential.useHttpPath setups)
        #[arg(long)]
        path: Option<String>,
        /// User name, when the host has several for this host
        #[arg(long)]
        username: Option<String>,
    },
}

/// Runs `seal`.
pub fn run(g: &Global, a: Args) -> CliResult {
    g.store().read()?;
    match a {
        Args::Docker {
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
        Args::Git {
            protocol,
            host,
            path,
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
    let entries = found.entries;
    let names: Vec<String> = entries
        .iter()
        .map(|e| format!("{} ({})", e.server_url, e.username))
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
