//! `devc-vault install`: make the container's clients use the vault's helpers.

use std::path::PathBuf;

use devc_host::docker::config::{self, InstallError};
use devc_vault::Store;

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock::Keys;

/// Point docker (config.json: credsStore and credHelpers) at the vault's helpers.
///
/// Idempotent. Credentials that config.json holds in clear (an `auths`
/// entry's auth, identitytoken or password) are moved into the vault and
/// removed from config.json; one that cannot be moved stops install before
/// anything changes. The previous credsStore is recorded in the vault, and
/// `get` asks it when the vault has no entry; the previous config.json,
/// without credentials, is kept as config.json.bak. git: `devc-encrypted`
/// goes first in the global credential.helper list, any helpers configured
/// before stay after it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The docker config directory [default: $DOCKER_CONFIG, else ~/.docker]
    #[arg(long, value_name = "DIR")]
    docker_config: Option<PathBuf>,
}

/// Runs `install`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let docker_dir = a
        .docker_config
        .unwrap_or_else(devc_keydelivery::environment::docker_config_dir);
    // The vault lives in the docker config directory unless named explicitly.
    // (`--vault` also carries `DEVC_VAULT`.)
    let vault = g
        .vault
        .clone()
        .unwrap_or_else(|| docker_dir.join(devc_keydelivery::environment::VAULT_FILE_NAME));
    let store = Store::new(vault);
    let keys = Keys::load(g)?;
    docker(&docker_dir, &store, &keys)?;
    let git = devc_host::git::config::configure_git(&Default::default());
    println!("git: {}", git.map_err(|e| CliError::Usage(e.to_string()))?);
    Ok(())
}

fn docker(dir: &std::path::Path, store: &Store, keys: &Keys) -> CliResult {
    let done = match config::install(dir, store, |s| keys.open(s)) {
        Ok(done) => done,
        // No key yet (a container created before its passphrase is typed or
        // its agent serves it): set up what needs none, say what is left.
        Err(InstallError::Unlock(CliError::Unlock(e))) if e.is_miss() => {
            let Some(done) = config::install_without_key(dir).map_err(CliError::Usage)? else {
                return Err(CliError::Unlock(e));
            };
            eprintln!(
                "devc-vault: install: {e}; docker and git are set up, and `devc-vault install` run again once a key opens the vault adds the credHelpers that skopeo and podman read (`devc-vault doctor` says what is missing)"
            );
            done
        }
        Err(e) => {
            return Err(match e {
                InstallError::Unlock(e) => e,
                InstallError::Vault(e) => CliError::Vault(e),
                other => CliError::Usage(other.to_string()),
            });
        }
    };
    let path = done.config.display();
    if done.changed {
        println!("docker: {path} now uses credsStore \"devc-encrypted\"");
    } else {
        println!("docker: {path} already uses credsStore \"devc-encrypted\"");
    }
    if !done.registries.is_empty() {
        println!("docker: credHelpers for {}", done.registries.join(", "));
    }
    if !done.moved.is_empty() {
        println!(
            "docker: moved the credentials for {} from {path} into the vault",
            done.moved.join(", ")
        );
    }
    if let Some(b) = &done.backup {
        println!("docker: the previous config is saved as {}", b.display());
    }
    if let Some(prev) = &done.chained {
        println!("docker: registries not in the vault are asked of docker-credential-{prev}");
    }
    Ok(())
}
