//! What the agent holds, and the rules for using it: TTLs, lock, the
//! vault allow-list, re-reading a key file that a rotate replaced, and what
//! it answers: the keys of one version of a vault, never its master key.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use devc_vault::{
    AccessKeys, KeySecret, MasterKey, SALT_LEN, Slot, SlotId, SlotKind, VaultId, keyfile,
    pending_key_path,
};

use crate::protocol::{ErrorCode, KeyInfo, Response, StatusInfo, VERSION};

/// Where a held key-file secret comes from, so it can be read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A key file.
    File(PathBuf),
    /// A command that prints the key file's content (`key_command`).
    Command {
        /// Its argv.
        argv: Vec<String>,
        /// Its time limit.
        timeout: Duration,
    },
}

impl SecretSource {
    fn load(&self) -> Result<KeySecret, String> {
        match self {
            SecretSource::File(p) => keyfile::read(p).map_err(|e| e.to_string()),
            SecretSource::Command { argv, timeout } => {
                crate::command::run(argv, *timeout, false).map_err(|e| e.to_string())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            SecretSource::File(p) => p.display().to_string(),
            SecretSource::Command { argv, .. } => argv.join(" "),
        }
    }
}

/// A key-file secret held by the agent.
#[derive(Debug)]
struct HeldSecret {
    secret: KeySecret,
    id: SlotId,
    source: SecretSource,
}

/// A vault master key held by the agent (passphrase cache, or `--passphrase`).
#[derive(Debug)]
struct HeldMaster {
    vault: VaultId,
    key: MasterKey,
    timers: Timers,
}

/// When a key (or set of keys) was loaded and last used.
#[derive(Clone, Copy, Debug)]
struct Timers {
    loaded: Instant,
    last_used: Instant,
}

impl Timers {
    fn new(now: Instant) -> Timers {
        Timers {
            loaded: now,
            last_used: now,
        }
    }
}

/// Why the agent holds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockReason {
    /// `devc-vault lock`.
    Locked,
    /// Unused for longer than the idle TTL.
    Idle,
    /// Held for longer than the max lifetime.
    MaxLifetime,
}

impl LockReason {
    fn name(self) -> &'static str {
        match self {
            LockReason::Locked => "lock",
            LockReason::Idle => "idle",
            LockReason::MaxLifetime => "max",
        }
    }

    fn message(self) -> &'static str {
        match self {
            LockReason::Locked => {
                "the agent is locked; its owner runs `devc-vault unlock` on the host"
            }
            LockReason::Idle => {
                "the agent's keys expired after its idle TTL; its owner runs `devc-vault unlock` on the host"
            }
            LockReason::MaxLifetime => {
                "the agent's keys reached their max lifetime; its owner runs `devc-vault unlock` on the host"
            }
        }
    }
}

/// Lifetimes and lists fixed at start.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Idle TTL for held keys.
    pub idle_ttl: Option<Duration>,
    /// Max lifetime for held keys.
    pub max_ttl: Option<Duration>,
    /// Vault ids served (empty: any).
    pub allow_vaults: Vec<VaultId>,
    /// Extra uids allowed on the container-facing socket.
    pub allow_uids: Vec<u32>,
    /// A passphrase cache agent (accepts `add_master`).
    pub cache: bool,
}

/// Everything the agent holds. Guarded by one mutex in the server.
#[derive(Debug)]
pub struct State {
    policy: Policy,
    sources: Vec<SecretSource>,
    secrets: Vec<HeldSecret>,
    secret_timers: Timers,
    masters: Vec<HeldMaster>,
    locked: Option<LockReason>,
    /// Set once anything was held; a cache agent exits when it is empty again.
    pub ever_held: bool,
}

/// A log line for the operator (never a secret).
pub type Log = Vec<String>;

impl State {
    /// Loads the key secrets (refusing unreadable, open-mode or malformed key files).
    pub fn new(
        policy: Policy,
        sources: Vec<SecretSource>,
        masters: Vec<(VaultId, MasterKey)>,
    ) -> Result<State, String> {
        let now = Instant::now();
        let mut st = State {
            policy,
            sources,
            secrets: Vec::new(),
            secret_timers: Timers::new(now),
            masters: masters
                .into_iter()
                .map(|(vault, key)| HeldMaster {
                    vault,
                    key,
                    timers: Timers::new(now),
                })
                .collect(),
            locked: None,
            ever_held: false,
        };
        st.load_secrets()?;
        st.ever_held = !st.is_empty();
        Ok(st)
    }

    fn load_secrets(&mut self) -> Result<(), String> {
        let mut secrets = Vec::new();
        for source in &self.sources {
            let secret = source.load()?;
            secrets.push(HeldSecret {
                id: SlotId::of_secret(&secret),
                secret,
                source: source.clone(),
            });
        }
        self.secrets = secrets;
        self.secret_timers = Timers::new(Instant::now());
        Ok(())
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.masters.is_empty()
    }

    /// Locked or expired, and holding nothing.
    pub fn is_locked(&self) -> bool {
        self.is_empty() && self.locked.is_some()
    }

    fn expired(&self, t: &Timers, now: Instant) -> Option<LockReason> {
        if self
            .policy
            .max_ttl
            .is_some_and(|m| now.duration_since(t.loaded) >= m)
        {
            return Some(LockReason::MaxLifetime);
        }
        if self
            .policy
            .idle_ttl
            .is_some_and(|i| now.duration_since(t.last_used) >= i)
        {
            return Some(LockReason::Idle);
        }
        None
    }

    /// Drops keys past their idle TTL or max lifetime.
    pub fn expire(&mut self, now: Instant) -> Log {
        let mut log = Vec::new();
        if !self.secrets.is_empty()
            && let Some(r) = self.expired(&self.secret_timers, now)
        {
            self.secrets.clear();
            self.locked = Some(r);
            log.push(format!("key secrets forgotten ({} TTL reached)", r.name()));
        }
        let before = self.masters.len();
        let policy = (self.policy.idle_ttl, self.policy.max_ttl);
        self.masters.retain(|m| {
            let t = &m.timers;
            let max = policy.1.is_some_and(|x| now.duration_since(t.loaded) >= x);
            let idle = policy
                .0
                .is_some_and(|x| now.duration_since(t.last_used) >= x);
            !(max || idle)
        });
        if self.masters.len() < before {
            log.push(format!(
                "{} held vault key(s) expired",
                before - self.masters.len()
            ));
            if self.is_empty() && self.locked.is_none() {
                self.locked = Some(LockReason::Idle);
            }
        }
        log
    }

    fn vault_allowed(&self, vault: &VaultId) -> Result<(), Response> {
        if self.policy.allow_vaults.is_empty() || self.policy.allow_vaults.contains(vault) {
            Ok(())
        } else {
            Err(Response::error(
                ErrorCode::VaultNotAllowed,
                format!("vault {vault} is not on this agent's --allow-vault list"),
            ))
        }
    }

    fn locked_error(&self) -> Response {
        Response::error(
            ErrorCode::Locked,
            self.locked
                .map_or("the agent holds no key", LockReason::message),
        )
    }

    /// The keys of the version of `vault` written with `salt` (`Some`), or
    /// of a new version under a fresh salt (`None`): found with a held
    /// master key, or by unwrapping one of `slots` with a held secret.
    pub fn keys(
        &mut self,
        vault: &VaultId,
        salt: Option<[u8; SALT_LEN]>,
        slots: &[Slot],
        now: Instant,
        log: &mut Log,
    ) -> Response {
        if let Err(r) = self.vault_allowed(vault) {
            return r;
        }
        let answer = |vmk: &MasterKey, via: String| {
            let keys = match salt {
                Some(salt) => AccessKeys::derive(vmk, salt),
                None => AccessKeys::fresh(vmk),
            };
            Response::keys(&keys, via)
        };
        if let Some(m) = self.masters.iter_mut().find(|m| m.vault == *vault) {
            m.timers.last_used = now;
            return answer(&m.key, format!("held key of vault {vault}"));
        }
        if self.secrets.is_empty() {
            return if self.locked.is_some() {
                self.locked_error()
            } else {
                Response::error(ErrorCode::NoKey, "this agent holds no key for this vault")
            };
        }
        if let Some((vmk, via)) = try_secrets(self.secrets.iter().map(|s| &s.secret), vault, slots)
        {
            self.secret_timers.last_used = now;
            return answer(&vmk, via);
        }
        // A rotate may have replaced a key file since it was loaded: look
        // again at each file and at its pending `.next` (written first by
        // rotate), and keep whatever changed.
        let mut fresh = Vec::new();
        for held in &mut self.secrets {
            let SecretSource::File(path) = held.source.clone() else {
                continue;
            };
            match keyfile::read(&path) {
                Ok(s) if SlotId::of_secret(&s) != held.id => {
                    log.push(format!(
                        "re-read {}: key {} replaces {}",
                        path.display(),
                        SlotId::of_secret(&s),
                        held.id
                    ));
                    held.id = SlotId::of_secret(&s);
                    held.secret = s;
                    fresh.push(held.secret.clone());
                }
                Ok(_) => {}
                Err(e) => log.push(format!("re-read failed: {e}")),
            }
            if let Ok(next) = keyfile::read(&pending_key_path(&path)) {
                fresh.push(next);
            }
        }
        if let Some((vmk, via)) = try_secrets(fresh.iter(), vault, slots) {
            self.secret_timers.last_used = now;
            return answer(&vmk, via);
        }
        Response::error(
            ErrorCode::NoKey,
            format!("no key held by this agent opens vault {vault}"),
        )
    }

    /// Wraps `key` under a held secret as a new agent slot of `vault`.
    pub fn wrap(
        &mut self,
        vault: &VaultId,
        key_id: Option<&str>,
        key: &MasterKey,
        now: Instant,
    ) -> Response {
        if let Err(r) = self.vault_allowed(vault) {
            return r;
        }
        if self.secrets.is_empty() {
            return self.locked_error();
        }
        let held = match key_id {
            Some(id) => self.secrets.iter().find(|s| s.id.to_string() == id),
            None if self.secrets.len() == 1 => self.secrets.first(),
            None => {
                return Response::error(
                    ErrorCode::Refused,
                    "the agent holds several keys; name one with --key-id (see `devc-vault status`)",
                );
            }
        };
        let Some(held) = held else {
            return Response::error(ErrorCode::NoKey, "the agent holds no key with that id");
        };
        let slot = Slot::for_secret(SlotKind::Agent, vault, key, &held.secret);
        self.secret_timers.last_used = now;
        Response::Slot {
            slot: slot.to_line(),
        }
    }

    /// Holds a vault's master key (cache agents only).
    pub fn add_master(&mut self, vault: VaultId, key: MasterKey, now: Instant) -> Response {
        if !self.policy.cache {
            return Response::error(ErrorCode::Refused, "this agent is not a passphrase cache");
        }
        if let Err(r) = self.vault_allowed(&vault) {
            return r;
        }
        self.masters.retain(|m| m.vault != vault);
        self.masters.push(HeldMaster {
            vault,
            key,
            timers: Timers::new(now),
        });
        self.locked = None;
        self.ever_held = true;
        Response::Ok
    }

    /// Forgets every held key.
    pub fn lock(&mut self) {
        self.secrets.clear();
        self.masters.clear();
        self.locked = Some(LockReason::Locked);
    }

    /// Reads the key secrets again; fails (staying locked) if one cannot be read.
    pub fn unlock(&mut self) -> Response {
        if self.sources.is_empty() {
            return Response::error(
                ErrorCode::Refused,
                "this agent has no key files to re-read; a passphrase comes back with `devc-vault unlock`",
            );
        }
        match self.load_secrets() {
            Ok(()) => {
                self.locked = None;
                Response::Ok
            }
            Err(e) => Response::error(ErrorCode::Refused, format!("unlock failed: {e}")),
        }
    }

    /// Re-reads held key files (SIGHUP); keeps the old secret if a file is unreadable.
    pub fn reload(&mut self) -> Log {
        let mut log = Vec::new();
        for held in &mut self.secrets {
            match held.source.load() {
                Ok(s) => {
                    let id = SlotId::of_secret(&s);
                    if id != held.id {
                        log.push(format!(
                            "re-read {}: key {id} replaces {}",
                            held.source.describe(),
                            held.id
                        ));
                    }
                    held.id = id;
                    held.secret = s;
                }
                Err(e) => log.push(format!("re-read failed, keeping the held key: {e}")),
            }
        }
        log
    }

    /// Describes the state (never a secret).
    pub fn status(&self, now: Instant, socket: Option<String>) -> StatusInfo {
        let left = |t: &Timers| {
            (
                self.policy
                    .idle_ttl
                    .map(|i| i.saturating_sub(now.duration_since(t.last_used)).as_secs()),
                self.policy
                    .max_ttl
                    .map(|m| m.saturating_sub(now.duration_since(t.loaded)).as_secs()),
            )
        };
        let mut keys = Vec::new();
        for s in &self.secrets {
            let (idle, max) = left(&self.secret_timers);
            keys.push(KeyInfo {
                kind: match s.source {
                    SecretSource::File(_) => "keyfile",
                    SecretSource::Command { .. } => "command",
                }
                .into(),
                id: s.id.to_string(),
                path: Some(s.source.describe()),
                idle_left_secs: idle,
                max_left_secs: max,
            });
        }
        for m in &self.masters {
            let (idle, max) = left(&m.timers);
            keys.push(KeyInfo {
                kind: "master".into(),
                id: m.vault.to_string(),
                path: None,
                idle_left_secs: idle,
                max_left_secs: max,
            });
        }
        StatusInfo {
            version: VERSION,
            pid: std::process::id(),
            cache: self.policy.cache,
            locked: self.is_locked(),
            locked_reason: self
                .locked
                .map(LockReason::name)
                .unwrap_or_default()
                .to_owned(),
            keys,
            allowed_vaults: self
                .policy
                .allow_vaults
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_uids: self.policy.allow_uids.clone(),
            socket,
        }
    }
}

/// Tries each secret on the slots, the slot named by its fingerprint first.
fn try_secrets<'a>(
    secrets: impl Iterator<Item = &'a KeySecret>,
    vault: &VaultId,
    slots: &[Slot],
) -> Option<(MasterKey, String)> {
    for secret in secrets {
        let id = SlotId::of_secret(secret);
        let ordered = slots
            .iter()
            .filter(|s| s.id == id)
            .chain(slots.iter().filter(|s| s.id != id));
        for slot in ordered {
            if let Some(k) = slot.unwrap_secret(vault, secret) {
                return Some((k, format!("{} slot {}", slot.kind.name(), slot.id)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn write_key(dir: &Path, name: &str, s: &KeySecret) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, keyfile::render(s).as_bytes()).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }

    /// The commitment of the keys answered, if keys were answered.
    fn got_keys(r: &Response) -> Option<AccessKeys> {
        match r {
            Response::Keys { keys, .. } => Some(AccessKeys::from_bytes(&keys.0)),
            _ => None,
        }
    }

    fn same(a: &AccessKeys, b: &AccessKeys) -> bool {
        a.to_bytes()[..] == b.to_bytes()[..]
    }

    fn code(r: &Response) -> Option<ErrorCode> {
        match r {
            Response::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn answers_version_keys_never_the_master_key() {
        let t = tempfile::tempdir().expect("tmp");
        let secret = KeySecret::generate();
        let k = write_key(t.path(), "k", &secret);
        let vault = VaultId([3; 16]);
        let vmk = MasterKey::generate();
        let slots = vec![
            Slot::for_secret(SlotKind::KeyFile, &vault, &vmk, &secret),
            Slot::for_secret(SlotKind::Agent, &vault, &vmk, &secret),
        ];
        let policy = Policy {
            idle_ttl: Some(Duration::from_secs(60)),
            ..Policy::default()
        };
        let mut st = State::new(policy, vec![SecretSource::File(k)], vec![]).expect("state");
        let now = Instant::now();
        let mut log = Vec::new();
        let salt = [9u8; SALT_LEN];
        for s in [&slots[..1], &slots[1..]] {
            let got = got_keys(&st.keys(&vault, Some(salt), s, now, &mut log)).expect("keys");
            assert!(same(&got, &AccessKeys::derive(&vmk, salt)));
            assert_ne!(&got.to_bytes()[..], vmk.expose(), "never the master key");
        }
        // A write: a fresh salt each time, keys that match the master key.
        let w1 = got_keys(&st.keys(&vault, None, &slots, now, &mut log)).expect("keys");
        let w2 = got_keys(&st.keys(&vault, None, &slots, now, &mut log)).expect("keys");
        assert_ne!(w1.salt(), w2.salt());
        assert!(same(&w1, &AccessKeys::derive(&vmk, *w1.salt())));
        // Another vault id: the AAD differs, nothing opens.
        assert_eq!(
            code(&st.keys(&VaultId([4; 16]), Some(salt), &slots, now, &mut log)),
            Some(ErrorCode::NoKey)
        );
        // Idle past the TTL.
        let later = now + Duration::from_secs(61);
        st.expire(later);
        assert_eq!(
            code(&st.keys(&vault, Some(salt), &slots, later, &mut log)),
            Some(ErrorCode::Locked)
        );
        assert!(matches!(st.unlock(), Response::Ok));
        assert!(got_keys(&st.keys(&vault, Some(salt), &slots, Instant::now(), &mut log)).is_some());
        st.lock();
        assert_eq!(
            code(&st.keys(&vault, Some(salt), &slots, Instant::now(), &mut log)),
            Some(ErrorCode::Locked)
        );
        assert!(st.status(Instant::now(), None).locked);
    }

    #[test]
    fn picks_up_rotated_key_file_and_pending_next() {
        let t = tempfile::tempdir().expect("tmp");
        let old = KeySecret::generate();
        let k = write_key(t.path(), "k", &old);
        let vault = VaultId([5; 16]);
        let mut st = State::new(
            Policy::default(),
            vec![SecretSource::File(k.clone())],
            vec![],
        )
        .expect("state");
        // Mid-rotate: the vault already uses the new key, K.next holds it.
        let new = KeySecret::generate();
        let vmk = MasterKey::generate();
        let slots = vec![Slot::for_secret(SlotKind::KeyFile, &vault, &vmk, &new)];
        let next = write_key(t.path(), "k.next", &new);
        let mut log = Vec::new();
        assert!(got_keys(&st.keys(&vault, None, &slots, Instant::now(), &mut log)).is_some());
        // Rotate finished: K.next renamed over K.
        std::fs::rename(&next, &k).expect("rename");
        assert!(got_keys(&st.keys(&vault, None, &slots, Instant::now(), &mut log)).is_some());
        assert!(log.iter().any(|l| l.contains("replaces")), "{log:?}");
        assert_eq!(
            st.status(Instant::now(), None).keys[0].id,
            SlotId::of_secret(&new).to_string()
        );
    }

    #[test]
    fn allow_list_cache_and_wrap() {
        let allowed = VaultId([1; 16]);
        let policy = Policy {
            allow_vaults: vec![allowed],
            cache: true,
            ..Policy::default()
        };
        let mut st = State::new(policy, vec![], vec![]).expect("state");
        let vmk = MasterKey::generate();
        let now = Instant::now();
        assert_eq!(
            code(&st.add_master(VaultId([2; 16]), vmk.clone(), now)),
            Some(ErrorCode::VaultNotAllowed)
        );
        assert!(matches!(
            st.add_master(allowed, vmk.clone(), now),
            Response::Ok
        ));
        let mut log = Vec::new();
        let got =
            got_keys(&st.keys(&allowed, Some([1; SALT_LEN]), &[], now, &mut log)).expect("keys");
        assert!(same(&got, &AccessKeys::derive(&vmk, [1; SALT_LEN])));
        assert_eq!(
            code(&st.wrap(&allowed, None, &vmk, now)),
            Some(ErrorCode::Locked)
        );
        // Not a cache: add_master refused.
        let mut plain = State::new(Policy::default(), vec![], vec![]).expect("state");
        assert_eq!(
            code(&plain.add_master(allowed, vmk, now)),
            Some(ErrorCode::Refused)
        );
    }
}
