//! An open vault: the master key, the slots and the decrypted entries.
//! Every change is in memory until `seal` (usually through `Store`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::access::{AccessKeys, Authority};
use crate::entry::{DockerEntry, GitEntry, GitQuery, Payload, Stored};
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

/// Copies the fields of `old` that `new` lacks (unknown fields a newer
/// version wrote), so a refresh keeps them.
fn carry_extra(
    new: &mut serde_json::Map<String, serde_json::Value>,
    old: &serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in old {
        new.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// A decrypted vault.
#[derive(Debug)]
pub struct Vault {
    id: VaultId,
    created: u64,
    slots: Vec<Slot>,
    authority: Authority,
    payload: Payload,
    /// Something changed since it was opened: [`crate::Store::update`]
    /// writes only then.
    changed: bool,
}

/// The vault's one upsert rule, for either entry type: the entry replaces
/// every stored entry in its place (keeping the first one's creation time);
/// when exactly one is there and holds the same credential, nothing changes.
fn upsert<E: Stored>(list: &mut Vec<E>, mut entry: E, t: u64) -> Result<Upsert> {
    entry.check()?;
    let same: Vec<&E> = list.iter().filter(|e| e.same_place(&entry)).collect();
    if let [only] = same.as_slice()
        && only.same_secret(&entry)
    {
        return Ok(Upsert::Unchanged);
    }
    let outcome = if same.is_empty() {
        Upsert::Added
    } else {
        Upsert::Replaced
    };
    let created = same.first().map_or(t, |e| e.created());
    entry.stamp(created, t);
    list.retain(|e| !e.same_place(&entry));
    list.push(entry);
    Ok(outcome)
}

/// What storing an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// A new entry was added.
    Added,
    /// An entry for the same registry (docker) or slot (git) was replaced.
    Replaced,
    /// The same credential was already stored; nothing changed.
    Unchanged,
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
            authority: Authority::Master(MasterKey::generate()),
            payload: Payload::default(),
            changed: true,
        }
    }

    pub(crate) fn from_parts(
        id: VaultId,
        created: u64,
        slots: Vec<Slot>,
        authority: Authority,
        payload: Payload,
    ) -> Vault {
        Vault {
            id,
            created,
            slots,
            authority,
            payload,
            changed: false,
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
    /// The master key, when a key file or a passphrase opened the vault;
    /// keys from an agent or a cache never include it.
    pub fn master_key(&self) -> Result<&MasterKey> {
        match &self.authority {
            Authority::Master(vmk) => Ok(vmk),
            Authority::Delegated(_) => Err(Error::NeedsMasterKey),
        }
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
        self.changed = true;
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
        self.master_key()?;
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::TooManySlots);
        }
        let id = slot.id;
        self.slots.push(slot);
        self.changed = true;
        Ok(id)
    }

    /// Adds a slot opened by a key-file secret (or, with `SlotKind::Agent`, an agent secret).
    pub fn add_secret_slot(&mut self, kind: SlotKind, secret: &KeySecret) -> Result<SlotId> {
        let slot = Slot::for_secret(kind, &self.id, self.master_key()?, secret);
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
        // The file's total derivation work is checked before any is done.
        let existing: u64 = self
            .slots
            .iter()
            .filter_map(|s| match s.kind {
                SlotKind::Passphrase(c) => Some(c.work()),
                _ => None,
            })
            .sum();
        if existing + cost.work() > Argon2Cost::MAX_FILE_WORK {
            return Err(Error::ExcessiveWork {
                what: format!(
                    "this slot would bring the vault's argon2id work to {} KiB-passes, over the {} a vault may ask; use a lower --kdf-cost",
                    existing + cost.work(),
                    Argon2Cost::MAX_FILE_WORK
                ),
            });
        }
        let slot = Slot::for_passphrase(&self.id, self.master_key()?, passphrase, cost)?;
        self.push_slot(slot)
    }

    /// Removes a slot, and replaces the master key in the same change, so
    /// that the removed slot's key, with any older copy of the file, opens
    /// no later version. Every remaining slot is re-made under the new
    /// master key with the keys in `keys` (key files keep their secrets,
    /// passphrases their values); a remaining slot whose key is missing makes
    /// the call fail, naming it, unless `drop_locked`. Refuses to remove the
    /// last slot.
    ///
    /// `id` is a slot id, or `kind:id` (e.g. `agent:0123456789abcdef`): a
    /// key-file and an agent slot made from the same secret share an id, and
    /// an ambiguous id is refused rather than guessed.
    pub fn remove_slot(
        &mut self,
        id: &str,
        keys: &RotateKeys,
        drop_locked: bool,
    ) -> Result<Rotated> {
        let pos = self.find_slot(id)?;
        if self.slots.len() == 1 {
            return Err(Error::LastSlot);
        }
        self.rekey(keys, false, Some(pos), drop_locked)
    }

    fn find_slot(&self, id: &str) -> Result<usize> {
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
        match matches.as_slice() {
            [] => Err(unknown()),
            [one] => Ok(*one),
            _ => Err(Error::InvalidEntry {
                reason: format!(
                    "slot id {hex} names more than one slot; say which, e.g. keyfile:{hex} or agent:{hex}"
                ),
            }),
        }
    }

    /// Stores a docker entry by the vault's rule: it replaces every entry
    /// for the same registry (see [`DockerEntry::same_registry`]). Storing
    /// the credential already held changes nothing.
    pub fn upsert_docker(&mut self, entry: DockerEntry) -> Result<Upsert> {
        let t = now();
        let outcome = upsert(&mut self.payload.docker, entry, t)?;
        self.note(outcome, t);
        Ok(outcome)
    }

    /// The docker entry that best answers a request for `query`: the best
    /// [`Match`](crate::registry::Match), then the most recently updated.
    pub fn find_docker(&self, query: &str) -> Option<&DockerEntry> {
        self.payload
            .docker
            .iter()
            .filter_map(|e| e.answers(query).map(|m| (e, m)))
            // On a full tie the later entry (the newer store) wins: `max_by` keeps the last.
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.updated.cmp(&b.0.updated)))
            .map(|(e, _)| e)
    }

    /// [`Vault::find_docker`] among the entries that have not expired at
    /// `now` (see [`DockerEntry::is_expired`]).
    pub fn find_docker_at(&self, query: &str, now: u64) -> Option<&DockerEntry> {
        self.payload
            .docker
            .iter()
            .filter(|e| !e.is_expired(now))
            .filter_map(|e| e.answers(query).map(|m| (e, m)))
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.updated.cmp(&b.0.updated)))
            .map(|(e, _)| e)
    }

    /// Stores a freshly re-resolved host entry, but only in place of one that
    /// came from the host: `None` (nothing changed) when no entry for its
    /// registry is left (a `docker logout` in the container removed it) or
    /// when one was stored inside the container (no source), which a
    /// refresh never replaces.
    /// Fields a newer version wrote into the old entry (or its source) are
    /// carried over.
    pub fn refresh_docker(&mut self, mut entry: DockerEntry) -> Result<Option<Upsert>> {
        let same: Vec<&DockerEntry> = self
            .payload
            .docker
            .iter()
            .filter(|e| e.same_registry(&entry))
            .collect();
        let Some(old) = same.last() else {
            return Ok(None);
        };
        if same.iter().any(|e| e.source.is_none()) {
            return Ok(None);
        }
        carry_extra(&mut entry.extra, &old.extra);
        if let (Some(new), Some(old)) = (&mut entry.source, &old.source) {
            carry_extra(&mut new.extra, &old.extra);
        }
        self.upsert_docker(entry).map(Some)
    }

    /// [`Vault::refresh_docker`] for git: only in place of the same slot's
    /// host entry.
    pub fn refresh_git(&mut self, mut entry: GitEntry) -> Result<Option<Upsert>> {
        let Some(old) = self.payload.git.iter().find(|e| e.same_slot(&entry)) else {
            return Ok(None);
        };
        let Some(old_source) = &old.source else {
            return Ok(None);
        };
        carry_extra(&mut entry.extra, &old.extra);
        if let Some(new) = &mut entry.source {
            carry_extra(&mut new.extra, &old_source.extra);
        }
        self.upsert_git(entry).map(Some)
    }

    /// Removes every docker entry that a request for `query` could be
    /// answered with (so that after `docker logout HOST` no read of that
    /// registry succeeds); returns how many.
    pub fn remove_docker(&mut self, query: &str) -> usize {
        let before = self.payload.docker.len();
        self.payload.docker.retain(|e| e.answers(query).is_none());
        self.removed(before - self.payload.docker.len())
    }

    /// Stores a git entry by the vault's rule: it replaces the entry for the
    /// same slot (see [`GitEntry::same_slot`]). Storing the credential
    /// already held changes nothing.
    pub fn upsert_git(&mut self, entry: GitEntry) -> Result<Upsert> {
        let t = now();
        let outcome = upsert(&mut self.payload.git, entry, t)?;
        self.note(outcome, t);
        Ok(outcome)
    }

    /// Marks the payload changed at `t` unless nothing was.
    fn note(&mut self, outcome: Upsert, t: u64) {
        if outcome != Upsert::Unchanged {
            self.payload.updated = t;
            self.changed = true;
        }
    }

    /// The git entry a `get` answers with: among entries the query matches
    /// that have not expired at `now`, the most recently stored. `None` for
    /// a query without protocol and host.
    pub fn find_git(&self, query: &GitQuery<'_>, now: u64) -> Option<&GitEntry> {
        if !query.is_scoped() {
            return None;
        }
        self.payload
            .git
            .iter()
            .filter(|e| query.matches(e) && !e.is_expired(now))
            // max_by_key keeps the last of equal keys: the later entry wins a tie.
            .max_by_key(|e| e.updated)
    }

    /// Removes every git entry the query matches, its password included when
    /// one is given; returns how many. A query without protocol and host
    /// removes nothing.
    pub fn remove_git(&mut self, query: &GitQuery<'_>) -> usize {
        if !query.is_scoped() {
            return 0;
        }
        let before = self.payload.git.len();
        self.payload.git.retain(|e| !query.matches_with_password(e));
        self.removed(before - self.payload.git.len())
    }

    fn removed(&mut self, n: usize) -> usize {
        if n > 0 {
            self.payload.updated = now();
            self.changed = true;
        }
        n
    }

    /// Replaces every entry that came from the host (has a [`Source`](crate::Source)) with
    /// `docker` and `git`, keeping the entries stored inside the container
    /// unless a new entry takes their place. When the host's set is what the
    /// vault already holds (the same credentials from the same sources),
    /// nothing changes and nothing is written.
    pub fn replace_host_entries(
        &mut self,
        docker: Vec<DockerEntry>,
        git: Vec<GitEntry>,
    ) -> Result<()> {
        for e in &docker {
            e.validate()?;
        }
        for e in &git {
            e.validate()?;
        }
        let from = |s: &Option<crate::Source>| s.as_ref().map(|s| (s.kind.clone(), s.from.clone()));
        let held_docker: Vec<&DockerEntry> = self
            .payload
            .docker
            .iter()
            .filter(|e| e.source.is_some())
            .collect();
        let held_git: Vec<&GitEntry> = self
            .payload
            .git
            .iter()
            .filter(|e| e.source.is_some())
            .collect();
        let unchanged = held_docker.len() == docker.len()
            && held_git.len() == git.len()
            && docker.iter().all(|n| {
                held_docker.iter().any(|o| {
                    o.server_url == n.server_url
                        && o.same_credential(n)
                        && from(&o.source) == from(&n.source)
                })
            })
            && git.iter().all(|n| {
                held_git.iter().any(|o| {
                    o.same_slot(n) && o.same_credential(n) && from(&o.source) == from(&n.source)
                })
            });
        if unchanged {
            return Ok(());
        }
        self.payload.docker.retain(|e| e.source.is_none());
        self.payload.git.retain(|e| e.source.is_none());
        self.changed = true;
        for e in docker {
            self.upsert_docker(e)?;
        }
        for e in git {
            self.upsert_git(e)?;
        }
        Ok(())
    }

    /// Replaces the master key. Every slot that a supplied key opens is
    /// re-made under the new key (key files get new secrets, passphrases
    /// fresh salts); other slots make the call fail unless `drop_locked`.
    pub fn rotate(&mut self, keys: &RotateKeys, drop_locked: bool) -> Result<Rotated> {
        self.rekey(keys, true, None, drop_locked)
    }

    /// A new master key; every slot but `skip` re-made under it with the
    /// supplied keys, key files with new secrets when `renew_key_files`.
    fn rekey(
        &mut self,
        keys: &RotateKeys,
        renew_key_files: bool,
        skip: Option<usize>,
        drop_locked: bool,
    ) -> Result<Rotated> {
        self.master_key()?;
        let new_vmk = MasterKey::generate();
        let opens = |secret: &KeySecret| {
            self.slots
                .iter()
                .any(|slot| slot.unwrap_secret(&self.id, secret).is_some())
        };
        // Each supplied key-file secret that opens a slot, and what replaces it.
        let replacements: Vec<Option<KeySecret>> = keys
            .secrets
            .iter()
            .map(|s| {
                opens(s).then(|| {
                    if renew_key_files {
                        KeySecret::generate()
                    } else {
                        s.clone()
                    }
                })
            })
            .collect();

        let mut new_slots = Vec::new();
        let mut dropped = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let remade = match slot.kind {
                SlotKind::KeyFile | SlotKind::Agent => keys
                    .secrets
                    .iter()
                    .zip(&replacements)
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
        self.authority = Authority::Master(new_vmk);
        self.changed = true;
        Ok(Rotated {
            new_secrets: if renew_key_files {
                replacements
            } else {
                vec![None; keys.secrets.len()]
            },
            dropped,
        })
    }

    /// Whether anything changed since the vault was opened.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// Encrypts the vault into file bytes under a fresh salt: drawn here
    /// with the master key, or by the agent or cache that opened the vault.
    pub fn seal(&self) -> Result<Vec<u8>> {
        if self.slots.is_empty() {
            return Err(Error::LastSlot);
        }
        let keys = match &self.authority {
            Authority::Master(vmk) => AccessKeys::fresh(vmk),
            Authority::Delegated(service) => service.write_keys(&self.id, &self.slots)?,
        };
        let json = self.payload.to_json();
        format::seal(&self.id, self.created, &self.slots, &keys, &json)
    }
}
