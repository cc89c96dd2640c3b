//! `devc-vault add docker|git`: store a credential (secret read from stdin or the terminal).

use devc_vault::{DockerEntry, GitEntry};

use crate::Global;
use crate::error::CliResult;
use crate::{input, unlock};

/// Add or replace a credential; the secret comes from stdin (or a prompt on /dev/tty).
#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// A registry credential, as `docker login` would store it
    Docker {
        /// Registry address, e.g. ghcr.io or https://index.docker.io/v1/
        #[arg(long)]
        server: String,
        /// User name (`<token>` for an identity token)
        #[arg(long)]
        username: String,
    },
    /// A git credential, as `git credential approve` would store it
    Git {
        #[command(flatten)]
        target: super::GitTarget,
        /// User name
        #[arg(long)]
        username: String,
        /// Password expiry, unix seconds
        #[arg(long, value_name = "UNIX_SECONDS")]
        password_expiry_utc: Option<u64>,
    },
}

/// Runs `add`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let store = g.store();
    // Read the sealed vault first so a missing vault fails before a prompt.
    store.read()?;
    match a {
        Args::Docker { server, username } => {
            let secret = input::secret_from_stdin_or_tty("secret")?;
            let entry = DockerEntry::new(&server, username, secret);
            store.update(|s| unlock::open(s, g), |v| Ok(v.upsert_docker(entry)?))?;
            println!("stored docker credential for {server}");
        }
        Args::Git {
            target:
                super::GitTarget {
                    protocol,
                    host,
                    path,
                },
            username,
            password_expiry_utc,
        } => {
            let password = input::secret_from_stdin_or_tty("password")?;
            let entry = GitEntry::new(&protocol, &host, &username, password)
                .with_path(path)
                .with_expiry(password_expiry_utc);
            store.update(|s| unlock::open(s, g), |v| Ok(v.upsert_git(entry)?))?;
            println!("stored git credential for {protocol}://{username}@{host}");
        }
    }
    Ok(())
}
