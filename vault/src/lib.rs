//! devc-vault: the vault file format and its store.
//!
//! A vault is one file holding docker and git credentials under AES-256-GCM.
//! Its master key is wrapped by keyslots (key file, passphrase, agent); any
//! one slot opens it. `docs/FORMAT.md` specifies the bytes.
//!
//! ```no_run
//! use devc_vault::{Key, Store, keyfile};
//! let store = Store::new("/home/me/.docker/.credentials.enc");
//! let key = Key::Secret(keyfile::read("/run/secrets/devc-vault-key".as_ref())?);
//! let vault = store.read()?.open(&key)?;
//! for entry in vault.docker() {
//!     println!("{} {}", entry.server_url, entry.username);
//! }
//! # Ok::<(), devc_vault::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod atomic;
pub mod entry;
pub mod error;
pub mod format;
pub mod hex;
pub mod keyfile;
pub mod lock;
pub mod paths;
pub mod primitives;
pub mod secret;
pub mod slot;
pub mod store;
pub mod vault;

pub use entry::{Chain, DockerEntry, GitEntry, Payload};
pub use error::{Error, Result};
pub use format::{Key, SealedVault, VaultId};
pub use primitives::Argon2Cost;
pub use secret::{KeySecret, MasterKey, Passphrase, Secret};
pub use slot::{Slot, SlotId, SlotKind};
pub use store::{RotateKeyFile, Store};
pub use vault::{RotateKeys, Rotated, Vault};
