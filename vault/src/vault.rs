//! An open vault: the master key, the slots and the decrypted entries.
//! Every change is in memory until `seal` (usually through `Store`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::entry::{DockerEntry, GitEntry, Payload};
use crate::error::{Error, Result};
use crate::format::{self, MAX_SLOTS, VaultId};
use crate::primitives::Argon2Cost;
use crate::secret::{KeySecret, MasterKey, Passphrase};
use crate::slot::{Slot, SlotId, SlotKind};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A decrypted vault.
#[derive(Debug)]
pub struct Vault {
    id: VaultId,
    created: u64,
    slots: Vec<Slot>,
    vmk: MasterKey,
    payload: Payload,
}

/// Keys supplied to `rotate`: each opens zero or more slots, which are re-made under the new master key.
#[derive(Debug, Default)]
pub struct RotateKeys {
    /// Key-file secrets; each gets a fresh replacement secret.
    pub secrets: Vec<KeySecret>,
    /// Passphrases; each keeps its value and gets a fresh salt.
    pub passphrases: Vec<Passphrase>,
}

/// What `rotate` did.
#[derive(Debug)]
pub struct Rotated {
    /// For each supplied key-file secret (same order), its replacement, if it opened a slot.
    pub new_secrets: Vec<Option<KeySecret>>,
    /// Slots that were dropped because no supplied key opened them.
    pub dropped: Vec<SlotId>,
}

impl Vault {
    /// A new, empty vault with a fresh id and master key and no slots yet.
    pub fn create() -> Vault {
        Vault {
            id: VaultId::generate(),
            created: now(),
            slots: Vec::new(),
            vmk: MasterKey::generate(),
            payload: Payload::default(),
        }
    }

    pub(crate) fn from_parts(
        id: VaultId,
        created: u64,
        slots: Vec<Slot>,
        vmk: MasterKey,
        payload: Payload,
    ) -> Vault {
        Vault {
            id,
            created,
            slots,
            vmk,
            payload,
        }
    }

    /// The vault's id.
    pub fn id(&self) -> VaultId {
        self.id
    }
    /// Creation time, unix seconds.
    pub fn created(&self) -> u64 {
        self.created
    }
    /// The master key (handed to a cache agent after a passphrase unlock).
    pub fn master_key(&self) -> &MasterKey {
        &self.vmk
    }
    /// The keyslots.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    /// The decrypted payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }
    /// The payload, for changes that have no dedicated method (chain settings).
    pub fn payload_mut(&mut self) -> &mut Payload {
        &mut self.payload
    }
    /// The docker entries.
    pub fn docker(&self) -> &[DockerEntry] {
        &self.payload.docker
    }
    /// The git entries.
    pub fn git(&self) -> &[GitEntry] {
        &self.payload.git
    }

    fn push_slot(&mut self, slot: Slot) -> Result<SlotId> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::TooManySlots);
        }
        let id = slot.id;
        self.slots.push(slot);
        Ok(id)
    }

    /// Adds a slot opened by a key-file secret (or, with `SlotKind::Agent`, an agent secret).
    pub fn add_secret_slot(&mut self, kind: SlotKind, secret: &KeySecret) -> Result<SlotId> {
        let slot = Slot::for_secret(kind, &self.id, &self.vmk, secret);
        if self.slots.iter().any(|s| s.id == slot.id && s.kind == kind) {
            return Err(Error::InvalidEntry {
                reason: format!("a {} slot for key {} already exists", kind.name(), slot.id),
            });
        }
        self.push_slot(slot)
    }

    /// Adds a slot built elsewhere, e.g. by an agent that wrapped the master
    /// key under a secret it never hands out (`SlotKind::Agent`). The vault
    /// cannot check such a slot itself: the caller must (for an agent slot,
    /// by asking the agent to unwrap it back) before sealing.
    pub fn add_slot(&mut self, slot: Slot) -> Result<SlotId> {
        if self
            .slots
            .iter()
            .any(|s| s.id == slot.id && s.kind == slot.kind)
        {
            return Err(Error::InvalidEntry {
                reason: format!(
                    "a {} slot for key {} already exists",
                    slot.kind.name(),
                    slot.id
                ),
            });
        }
        self.push_slot(slot)
    }

    /// Adds a passphrase slot.
    pub fn add_passphrase_slot(
        &mut self,
        passphrase: &Passphrase,
        cost: Argon2Cost,
    ) -> Result<SlotId> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::TooManySlots);
        }
        let slot = Slot::for_passphrase(&self.id, &self.vmk, passphrase, cost)?;
        self.push_slot(slot)
    }

    /// Removes a slot by id; refuses to remove the last one.
    ///
    /// `id` is a slot id, or `kind:id` (e.g. `agent:0123456789abcdef`): a
    /// key-file and an agent slot made from the same secret share an id, and
    /// an ambiguous id is refused rather than guessed.
    pub fn remove_slot(&mut self, id: &str) -> Result<()> {
        let (kind, hex) = match id.split_once(':') {
            Some((k, h)) => (Some(k), h),
            None => (None, id),
        };
        let unknown = || Error::UnknownSlot { id: id.to_owned() };
        let wanted = SlotId::parse(hex).ok_or_else(unknown)?;
        let matches: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.id == wanted && kind.is_none_or(|k| k == s.kind.name())
            })
            .collect();
        let pos = match matches.as_slice() {
            [] => return Err(unknown()),
            [one] => *one,
            _ => {
                return Err(Error::InvalidEntry {
                    reason: format!(
                        "slot id {hex} names more than one slot; say which, e.g. keyfile:{hex} or agent:{hex}"
                    ),
                });
            }
        };
        if self.slots.len() == 1 {
            return Err(Error::LastSlot);
        }
        self.slots.remove(pos);
        Ok(())
    }

    /// Adds a docker entry, replacing every entry for which `same` is true.
    pub fn upsert_docker(
        &mut self,
        mut entry: DockerEntry,
        same: impl Fn(&DockerEntry) -> bool,
    ) -> Result<()> {
        entry.validate()?;
        let t = now();
        let created = self
            .payload
            .docker
            .iter()
            .find(|e| same(e))
            .map(|e| e.created);
        self.payload.docker.retain(|e| !same(e));
        entry.created = created.unwrap_or(t);
        entry.updated = t;
        self.payload.docker.push(entry);
        self.payload.updated = t;
        Ok(())
    }

    /// Removes every docker entry for which `matches` is true; returns how many.
    pub fn remove_docker(&mut self, matches: impl Fn(&DockerEntry) -> bool) -> usize {
        let before = self.payload.docker.len();
        self.payload.docker.retain(|e| !matches(e));
        let n = before - self.payload.docker.len();
        if n > 0 {
            self.payload.updated = now();
        }
        n
    }

    /// Adds a git entry, replacing every entry for which `same` is true.
    pub fn upsert_git(
        &mut self,
        mut entry: GitEntry,
        same: impl Fn(&GitEntry) -> bool,
    ) -> Result<()> {
        entry.validate()?;
        let t = now();
        let created = self.payload.git.iter().find(|e| same(e)).map(|e| e.created);
        self.payload.git.retain(|e| !same(e));
        entry.created = created.unwrap_or(t);
        entry.updated = t;
        self.payload.git.push(entry);
        self.payload.updated = t;
        Ok(())
    }

    /// Removes every git entry for which `matches` is true; returns how many.
    pub fn remove_git(&mut self, matches: impl Fn(&GitEntry) -> bool) -> usize {
        let before = self.payload.git.len();
        self.payload.git.retain(|e| !matches(e));
        let n = before - self.payload.git.len();
        if n > 0 {
            self.payload.updated = now();
        }
        n
    }

    /// Replaces the master key. Every slot that a supplied key opens is
    /// re-made under the new key (key files get new secrets, passphrases
    /// fresh salts); other slots make the call fail unless `drop_locked`.
    pub fn rotate(&mut self, keys: &RotateKeys, drop_locked: bool) -> Result<Rotated> {
        let new_vmk = MasterKey::generate();
        let new_secrets: Vec<Option<KeySecret>> = keys
            .secrets
            .iter()
            .map(|s| {
                self.slots
                    .iter()
                    .any(|slot| slot.unwrap_secret(&self.id, s).is_some())
                    .then(KeySecret::generate)
            })
            .collect();

        let mut new_slots = Vec::new();
        let mut dropped = Vec::new();
        for slot in &self.slots {
            let remade = match slot.kind {
                SlotKind::KeyFile | SlotKind::Agent => keys
                    .secrets
                    .iter()
                    .zip(&new_secrets)
                    .find(|(old, _)| slot.unwrap_secret(&self.id, old).is_some())
                    .and_then(|(_, new)| new.as_ref())
                    .map(|new| Slot::for_secret(slot.kind, &self.id, &new_vmk, new)),
                SlotKind::Passphrase(cost) => {
                    let mut remade = None;
                    for p in &keys.passphrases {
                        if slot.unwrap_passphrase(&self.id, p)?.is_some() {
                            remade = Some(Slot::for_passphrase(&self.id, &new_vmk, p, cost)?);
                            break;
                        }
                    }
                    remade
                }
            };
            match remade {
                Some(s) => new_slots.push(s),
                None => dropped.push(slot),
            }
        }
        if !dropped.is_empty() && !drop_locked {
            return Err(Error::LockedSlots {
                slots: dropped
                    .iter()
                    .map(|s| format!("{} ({})", s.id, s.kind.name()))
                    .collect(),
            });
        }
        if new_slots.is_empty() {
            return Err(Error::LastSlot);
        }
        let dropped = dropped.iter().map(|s| s.id).collect();
        self.slots = new_slots;
        self.vmk = new_vmk;
        Ok(Rotated {
            new_secrets,
            dropped,
        })
    }

    /// Encrypts the vault into file bytes with a fresh salt.
    pub fn seal(&self) -> Result<Vec<u8>> {
        if self.slots.is_empty() {
            return Err(Error::LastSlot);
        }
        let json = self.payload.to_json();
        format::seal(&self.id, self.created, &self.slots, &self.vmk, &json)
    }
}
