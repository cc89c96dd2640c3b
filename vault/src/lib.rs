//! devc-vault: the vault file format and its store, as a library.
//!
//! A vault is one file holding docker and git credentials under AES-256-GCM.
//! Its master key is wrapped by keyslots (key file, passphrase, agent); any
//! one slot opens it. `docs/FORMAT.md` in the repository specifies the bytes.
//!
//! Two levels of use:
//!
//! - [`Project`]: what a dev-container manager needs — create a project's
//!   vault with a key file, replace its credentials with a freshly resolved
//!   set in one atomic write, rotate its key — without format details.
//! - [`Store`], [`SealedVault`], [`Vault`]: read, open, change and write a
//!   vault step by step (what the credential helpers and the CLI do).
//!
//! ```no_run
//! use devc_vault::{Key, Store, keyfile};
//! let store = Store::new("/home/me/.docker/.credentials.enc");
//! let key = Key::Secret(keyfile::read("/run/secrets/devc-vault-key".as_ref())?);
//! let vault = store.read()?.open(&key)?;
//! if let Some(entry) = vault.find_docker("ghcr.io") {
//!     println!("{} {}", entry.server_url, entry.username);
//! }
//! # Ok::<(), devc_vault::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
pub mod clock;
mod entry;
mod error;
pub mod file;
mod format;
pub mod hex;
pub mod keyfile;
mod lock;
mod primitives;
mod project;
pub mod registry;
mod secret;
mod slot;
mod store;
mod vault;

pub use access::{ACCESS_KEYS_LEN, AccessKeys, KeyService, SALT_LEN};
pub use entry::{Chain, DockerEntry, GitEntry, GitQuery, MAX_SECRET_LEN, Payload, Source};
pub use error::{Error, Result};
pub use format::{FORMAT_VERSION, Key, MAX_FILE_LEN, MAX_SLOTS, SealedVault, VaultId};
pub use primitives::Argon2Cost;
pub use project::Project;
pub use secret::{KeySecret, MasterKey, Passphrase, ReadCappedError, Secret, read_capped};
pub use slot::{Slot, SlotId, SlotKind};
pub use store::{Store, pending_key_path};
pub use vault::{RotateKeys, Rotated, Upsert, Vault, now};
