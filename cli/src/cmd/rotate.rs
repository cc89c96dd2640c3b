//! `devc-vault rotate`: a new master key; supplied slots re-made, key files re-keyed.

use std::path::PathBuf;

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::unlock;

/// Replace the vault's master key.
///
/// Every slot whose key you supply is re-made under the new master key: the
/// key file given with --key-file gets a new secret (replaced atomically, so
/// a container mounting its directory keeps working, and old copies stop
/// working); the passphrase given with --passphrase-fd keeps its value.
/// Slots whose keys are not supplied make rotate refuse, naming them, unless
/// --drop-locked-slots.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Another key file whose slot stays (repeatable); it gets a new secret too
    #[arg(long, value_name = "PATH")]
    with_key_file: Vec<PathBuf>,
    /// Drop slots whose keys were not supplied instead of refusing
    #[arg(long)]
    drop_locked_slots: bool,
}

/// Runs `rotate`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let keys = unlock::Keys::load(g)?;
    let key_files: Vec<PathBuf> = g.key_file.iter().chain(&a.with_key_file).cloned().collect();
    let passphrases: Vec<_> = keys.passphrase.iter().cloned().collect();
    if key_files.is_empty() && passphrases.is_empty() {
        return Err(CliError::Usage(
            "rotate needs the keys to keep: pass --key-file PATH and/or --passphrase-fd N".into(),
        ));
    }
    let store = g.store();
    let rotated = store.rotate(&key_files, passphrases, a.drop_locked_slots)?;
    println!("rotated the master key of {}", store.path().display());
    for (path, new) in key_files.iter().zip(&rotated.new_secrets) {
        if new.is_some() {
            println!("replaced the secret in {}", path.display());
        }
    }
    for id in &rotated.dropped {
        println!("dropped slot {id}");
    }
    Ok(())
}
