//! `devc-vault init`: a new, empty vault with one keyslot.

use devc_vault::{Argon2Cost, KeySecret, SlotKind, Store, Vault, keyfile};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::input;

/// Create an empty vault opened by a key file or a passphrase.
///
/// With --key-file K, K is created (a fresh secret, mode 0600) unless it
/// exists, and the vault gets one key-file slot. With --passphrase-fd N, or
/// on a terminal with neither flag, it gets one passphrase slot. An existing
/// vault is never overwritten.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Argon2id cost for a passphrase slot, as m=KiB,t=N,p=N
    #[arg(long, value_name = "COST", value_parser = super::parse_cost)]
    kdf_cost: Option<Argon2Cost>,
}

/// Runs `init`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let path = g.vault_path();
    if path.exists() {
        return Err(devc_vault::Error::AlreadyExists { path }.into());
    }
    let mut vault = Vault::create();
    let described = if let Some(fd) = g.passphrase_fd {
        let p = input::passphrase_from_fd(fd)?;
        let id = vault.add_passphrase_slot(&p, a.kdf_cost.unwrap_or(Argon2Cost::DEFAULT))?;
        format!("passphrase slot {id}")
    } else if let Some(k) = &g.key_file {
        let (secret, created) = if k.exists() {
            (keyfile::read(k)?, false)
        } else {
            let s = KeySecret::generate();
            keyfile::create(k, &s)?;
            (s, true)
        };
        let id = vault.add_secret_slot(SlotKind::KeyFile, &secret)?;
        format!(
            "key-file slot {id} ({} key file {})",
            if created { "new" } else { "existing" },
            k.display()
        )
    } else if input::have_tty() {
        let p = input::new_passphrase_from_tty()?;
        let id = vault.add_passphrase_slot(&p, a.kdf_cost.unwrap_or(Argon2Cost::DEFAULT))?;
        format!("passphrase slot {id}")
    } else {
        return Err(CliError::Usage(
            "init needs a key: pass --key-file PATH (created if missing) or --passphrase-fd N"
                .into(),
        ));
    };
    Store::new(&path).create(&vault)?;
    println!(
        "created vault {} (id {}) with {described}",
        path.display(),
        vault.id()
    );
    Ok(())
}
