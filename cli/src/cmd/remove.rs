//! `devc-vault remove docker|git`: delete credentials.

use devc_vault::GitQuery;

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock;

/// Remove credentials.
#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// The registry credential for a server (every spelling of it, as `docker logout` erases)
    Docker {
        /// Registry address, e.g. ghcr.io or https://index.docker.io/v1/
        #[arg(long)]
        server: String,
    },
    /// Git credentials for a protocol and host (all users unless --username)
    Git {
        #[command(flatten)]
        target: super::GitTarget,
        /// Only this user's credential
        #[arg(long)]
        username: Option<String>,
    },
}

/// Runs `remove`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let store = g.store();
    let (what, n) = match a {
        Args::Docker { server } => {
            let what = format!("docker credential for {server}");
            let n = store.update(
                |s| unlock::open(s, g),
                |v| nonzero(v.remove_docker(&server), &what),
            )?;
            (what, n)
        }
        Args::Git {
            target:
                super::GitTarget {
                    protocol,
                    host,
                    path,
                },
            username,
        } => {
            let what = format!("git credentials for {protocol}://{host}");
            let n = store.update(
                |s| unlock::open(s, g),
                |v| {
                    let query = GitQuery {
                        protocol: Some(&protocol),
                        host: Some(&host),
                        path: path.as_deref(),
                        username: username.as_deref(),
                        password: None,
                    };
                    nonzero(v.remove_git(&query), &what)
                },
            )?;
            (what, n)
        }
    };
    println!("removed {n} {what}");
    Ok(())
}

/// Fails (so nothing is written) when nothing was removed.
fn nonzero(n: usize, what: &str) -> CliResult<usize> {
    if n == 0 {
        return Err(CliError::Usage(format!(
            "no {what} in the vault; see `devc-vault list`"
        )));
    }
    Ok(n)
}
