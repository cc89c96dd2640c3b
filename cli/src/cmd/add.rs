//! `devc-vault add docker|git`: store a credential (secret read from stdin or the terminal).

use devc_vault::{DockerEntry, GitEntry, Store};

use devc_helper::git::matching::same_slot;

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
        /// Protocol, e.g. https
        #[arg(long)]
        protocol: String,
        /// Host, with :port if not the default
        #[arg(long)]
        host: String,
        /// Repository path (only matched when git sends one: credential.useHttpPath)
        #[arg(long)]
        path: Option<String>,
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
    let store = Store::new(g.vault_path());
    // Read the sealed vault first so a missing vault fails before a prompt.
    store.read()?;
    match a {
        Args::Docker { server, username } => {
            let secret = input::secret_from_stdin_or_tty("secret")?;
            let entry = DockerEntry {
                server_url: server.clone(),
                username,
                secret,
                created: 0,
                updated: 0,
                extra: Default::default(),
            };
            store.update(
                |s| unlock::open(s, g),
                |v| {
                    Ok(v.upsert_docker(entry, |e| {
                        devc_helper::docker::server::same_entry(&server, &e.server_url)
                    })?)
                },
            )?;
            println!("stored docker credential for {server}");
        }
        Args::Git {
            protocol,
            host,
            path,
            username,
            password_expiry_utc,
        } => {
            let password = input::secret_from_stdin_or_tty("password")?;
            let entry = GitEntry {
                protocol: protocol.clone(),
                host: host.clone(),
                path: path.clone(),
                username: username.clone(),
                password,
                password_expiry_utc,
                oauth_refresh_token: None,
                created: 0,
                updated: 0,
                extra: Default::default(),
            };
            // Compared by the git helper's own rule, so `add git` and `store` agree.
            let key = entry.clone();
            store.update(
                |s| unlock::open(s, g),
                |v| Ok(v.upsert_git(entry, |e| same_slot(e, &key))?),
            )?;
            println!("stored git credential for {protocol}://{username}@{host}");
        }
    }
    Ok(())
}
