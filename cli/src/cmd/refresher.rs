//! The agent's refresher: a thread beside `devc-vault agent` that keeps the
//! vaults it is given fresh, re-resolving each host entry from its source
//! when due (`devc_host::refresh`). It opens and writes the vaults through
//! the agent's own owner endpoint, so it works with whatever keys the agent
//! holds (key files, a key command, a passphrase-opened vault) and stops
//! while the agent is locked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devc_host::refresh::{Outcome, Refresher, Schedule, Which};
use devc_keydelivery::{Config, PromptPolicy, SourceKind, UnlockError};
use devc_vault::Store;

/// The longest the refresher sleeps, so a vault changed by hand (a new
/// `seal`) is looked at again soon.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// After an error that concerns the whole vault (locked agent, no vault).
const ERROR_SLEEP: Duration = Duration::from_secs(10);

/// Starts the refresher thread for `vaults`, opening them through the agent
/// listening on `socket` (its owner endpoint).
pub fn spawn(socket: PathBuf, vaults: Vec<PathBuf>, schedule: Schedule, log: bool) {
    let say = move |msg: String| {
        if log {
            eprintln!("devc-vault agent: refresh: {msg}");
        }
    };
    say(format!(
        "keeping {} fresh (default interval {})",
        vaults
            .iter()
            .map(|v| v.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        devc_vault::clock::span(schedule.default_every.as_secs())
    ));
    let spawned = thread::Builder::new()
        .name("refresh".into())
        .spawn(move || run(socket, vaults, schedule, say));
    if let Err(e) = spawned {
        eprintln!("devc-vault agent: refresh: cannot start its thread: {e}; not refreshing");
    }
}

fn run(socket: PathBuf, vaults: Vec<PathBuf>, schedule: Schedule, say: impl Fn(String)) {
    let mut keys = Config::defaults();
    keys.order = vec![SourceKind::Agent];
    keys.agent_sockets = vec![socket.clone()];
    keys.prompt = PromptPolicy::Never;
    keys.start_cache = false;
    // The agent binds its sockets after this thread starts.
    let owner = devc_keydelivery::environment::owner_socket(&socket);
    for _ in 0..200 {
        if owner.exists() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let mut state: Vec<(Store, Refresher)> = vaults
        .into_iter()
        .map(|v| (Store::new(v), Refresher::new(schedule.clone())))
        .collect();
    let mut last_error: HashMap<PathBuf, String> = HashMap::new();
    loop {
        let mut wake = SystemTime::now() + MAX_SLEEP;
        for (store, refresher) in &mut state {
            let open = |s: &devc_vault::SealedVault| devc_keydelivery::unlock(s, &keys);
            match refresher.run(store, open, Which::Due) {
                Ok(report) => {
                    if last_error.remove(store.path()).is_some() {
                        say(format!("{}: opens again", store.path().display()));
                    }
                    for l in &report.lines {
                        let failed = matches!(l.outcome, Outcome::Failed(_));
                        say(format!(
                            "{}{}: {l}",
                            if failed { "warning: " } else { "" },
                            store.path().display()
                        ));
                    }
                    if let Some(t) = report.next_due {
                        wake = wake.min(UNIX_EPOCH + Duration::from_secs(t));
                    }
                }
                Err(e) => {
                    let msg = describe(&e);
                    // Said once, not every round.
                    if last_error.get(store.path()) != Some(&msg) {
                        say(format!(
                            "cannot refresh {}: {msg}; trying again every {}s",
                            store.path().display(),
                            ERROR_SLEEP.as_secs()
                        ));
                        last_error.insert(store.path().to_path_buf(), msg);
                    }
                    wake = wake.min(SystemTime::now() + ERROR_SLEEP);
                }
            }
        }
        // At least a second between rounds: an entry whose source still
        // answers the token that is about to expire is asked again then.
        let now = SystemTime::now();
        let pause = wake
            .duration_since(now)
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        thread::sleep(pause);
    }
}

fn describe(e: &UnlockError) -> String {
    e.to_string()
}
