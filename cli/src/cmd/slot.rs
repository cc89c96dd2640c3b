//! `devc-vault slot list|add|remove`: manage the keyslots.

use std::path::PathBuf;

use devc_vault::{Argon2Cost, KeySecret, SlotKind, keyfile};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::{input, unlock};

/// Manage keyslots (any one slot opens the vault).
#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Show each slot's id, kind and costs
    List,
    /// Add a slot
    #[command(subcommand)]
    Add(AddArgs),
    /// Remove a slot, and replace the master key so the removed key opens nothing written after
    ///
    /// A key that was removed could still open a copy of the vault made
    /// before, and with the master key it unwraps, every version after it.
    /// So removing a slot also replaces the master key in the same write:
    /// every remaining slot is re-made under the new one, which needs each
    /// remaining slot's key (--key-file and --with-key-file for key-file and
    /// agent slots, --passphrase-fd for a passphrase slot). A slot whose key
    /// is missing makes it refuse, naming the slot, unless
    /// --drop-locked-slots. The last slot is never removed.
    Remove {
        /// The slot id from `slot list`, or KIND:ID when a key-file and an agent slot share an id
        id: String,
        /// Another key file whose slot stays (repeatable)
        #[arg(long, value_name = "PATH")]
        with_key_file: Vec<PathBuf>,
        /// Drop remaining slots whose keys were not supplied instead of refusing
        #[arg(long)]
        drop_locked_slots: bool,
    },
}

/// Which kind of slot to add.
#[derive(clap::Subcommand, Debug)]
pub enum AddArgs {
    /// A key-file slot; PATH is created with a fresh secret unless it exists
    Keyfile {
        /// The key file for the new slot
        path: PathBuf,
    },
    /// An agent slot: the running agent wraps the master key under a key it never hands out
    Agent(super::agent::SlotArgs),
    /// A passphrase slot
    Passphrase {
        /// Read the new passphrase from this file descriptor instead of prompting twice
        #[arg(long, value_name = "N")]
        new_passphrase_fd: Option<u32>,
        /// Argon2id cost, as m=KiB,t=N,p=N
        #[arg(long, value_name = "COST", value_parser = super::parse_cost)]
        kdf_cost: Option<Argon2Cost>,
    },
}

/// Runs `slot`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let store = g.store();
    match a {
        Args::List => {
            let sealed = store.read()?;
            for s in &sealed.slots {
                match s.kind {
                    SlotKind::Passphrase(c) => {
                        println!(
                            "{}  passphrase  argon2id m={} t={} p={}",
                            s.id, c.m_kib, c.t, c.p
                        )
                    }
                    k => println!("{}  {}", s.id, k.name()),
                }
            }
        }
        Args::Add(AddArgs::Keyfile { path }) => {
            store.read()?;
            let created = !path.exists();
            let secret = if created {
                let s = KeySecret::generate();
                keyfile::create(&path, &s)?;
                s
            } else {
                keyfile::read(&path)?
            };
            let id = store
                .update(
                    |s| unlock::open(s, g),
                    |v| Ok(v.add_secret_slot(SlotKind::KeyFile, &secret)?),
                )
                .inspect_err(|_| {
                    // A key file for a slot that was never added would only mislead.
                    if created {
                        let _ = std::fs::remove_file(&path);
                    }
                })?;
            println!("added key-file slot {id} for {}", path.display());
        }
        Args::Add(AddArgs::Passphrase {
            new_passphrase_fd,
            kdf_cost,
        }) => {
            store.read()?;
            let p = match new_passphrase_fd {
                Some(fd) => input::passphrase_from_fd(fd)?,
                None => input::new_passphrase_from_tty()?,
            };
            let cost = kdf_cost.unwrap_or(Argon2Cost::DEFAULT);
            let id = store.update(
                |s| unlock::open(s, g),
                |v| Ok(v.add_passphrase_slot(&p, cost)?),
            )?;
            println!("added passphrase slot {id}");
        }
        Args::Add(AddArgs::Agent(a)) => super::agent::add_slot(g, &store, a)?,
        Args::Remove {
            id,
            with_key_file,
            drop_locked_slots,
        } => {
            let keys = unlock::Keys::load(g)?;
            // The remaining slots' keys, read under the lock with the vault they re-make.
            let rekey = std::cell::RefCell::new(None);
            let done = store.update(
                |s| {
                    *rekey.borrow_mut() = Some(keys.for_rekey(&with_key_file, s)?);
                    keys.open(s)
                },
                |v| {
                    let rekey = rekey.borrow_mut().take().unwrap_or_default();
                    Ok::<_, CliError>(v.remove_slot(&id, &rekey, drop_locked_slots)?)
                },
            )?;
            println!("removed slot {id}; the master key was replaced");
            for dropped in done.dropped {
                println!("dropped slot {dropped}");
            }
        }
    }
    Ok(())
}
