//! Keeping sealed entries fresh on the host: each entry that came from a
//! host source (it has a [`Source`]) is asked for again from that source —
//! the same docker credential helper, the same `config.json`, or the host's
//! `git credential fill` — on demand (`devc-vault seal --refresh`) or when
//! it is due (the agent's `--refresh-every`, or a user timer running
//! `devc-vault seal --refresh --due`). Entries stored inside the container
//! (no source) are never touched, and an entry the container replaced or
//! removed meanwhile is left as the container left it.
//!
//! An entry is due when its source's interval has passed since it was
//! fetched, or, when its expiry is known, once a fifth of the life it had
//! when fetched is left (at most 15 minutes before, at least 1 second).
//! The helpers are asked outside the vault's write lock, in parallel, each
//! with a deadline; one failing source is reported, keeps its old entry,
//! and is not asked again for [`RETRY_AFTER_FAILURE`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use devc_keydelivery::environment::RefreshConfig;
use devc_vault::{DockerEntry, GitEntry, SealedVault, Source, Store, Vault, clock};

use crate::docker::import::{self, KIND_HELPER};
use crate::git::import::{self as git_import, Query};
use crate::token;

/// A source that failed is asked again at the earliest this long after
/// (or after its interval, when that is shorter).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The most that is left of an entry's life when it is refreshed early.
pub const MAX_LEAD: u64 = 15 * 60;

/// The name a source's schedule is found by: the helper's name for a
/// docker credential helper (`ecr-login`), else its kind (`docker-config`,
/// `git`).
pub fn source_name(s: &Source) -> &str {
    if s.kind == KIND_HELPER {
        &s.from
    } else {
        &s.kind
    }
}

/// How a source is shown to people: `docker-credential-ecr-login`,
/// `docker-config /home/me/.docker/config.json`, `git credential fill`.
pub fn describe(s: &Source) -> String {
    match s.kind.as_str() {
        KIND_HELPER => format!("docker-credential-{}", s.from),
        _ if s.from.is_empty() => s.kind.clone(),
        "git" => s.from.clone(),
        _ => format!("{} {}", s.kind, s.from),
    }
}

/// When entries are due, and what a source's secrets are known to live.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The interval of sources without one of their own.
    pub default_every: Duration,
    /// `[refresh]` from the config file (per-source intervals, lifetimes).
    pub config: RefreshConfig,
}

impl Schedule {
    /// The schedule from the config file, with `every` (`--refresh-every`)
    /// over the file's `[refresh] every` over the built-in default.
    pub fn new(config: RefreshConfig, every: Option<Duration>) -> Schedule {
        let default_every = every
            .or(config.every)
            .unwrap_or(devc_keydelivery::environment::DEFAULT_REFRESH_EVERY);
        Schedule {
            default_every,
            config,
        }
    }

    /// The interval and the known lifetime of `s`'s secrets.
    pub fn of(&self, s: &Source) -> (Duration, Option<Duration>) {
        self.config.schedule(source_name(s), self.default_every)
    }

    /// The known expiry of a secret fetched from `s`: what it carries (a
    /// JWT's `exp`, an ECR password's `expiration`), else the most the
    /// source's secrets live after the fetch.
    pub fn expiry(&self, secret: &str, s: &Source) -> Option<u64> {
        token::expiry(secret).or_else(|| {
            self.of(s)
                .1
                .map(|life| s.fetched.saturating_add(life.as_secs()))
        })
    }

    /// When an entry fetched from `s` that expires at `expires` is due.
    pub fn due_at(&self, s: &Source, expires: Option<u64>) -> u64 {
        let by_interval = s.fetched.saturating_add(self.of(s).0.as_secs().max(1));
        match expires {
            Some(exp) if exp > s.fetched => {
                let lead = ((exp - s.fetched) / 5).clamp(1, MAX_LEAD);
                by_interval.min(exp - lead)
            }
            Some(exp) => by_interval.min(exp),
            None => by_interval,
        }
    }

    /// `entry` with its known expiry set from its secret and source.
    pub fn stamp(&self, mut entry: DockerEntry) -> DockerEntry {
        if let Some(s) = &entry.source {
            entry.expires = self.expiry(entry.secret.expose(), s);
        }
        entry
    }
}

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Replaced with what its source answers now.
    Refreshed {
        /// The secret differs from the one it replaced.
        changed: bool,
        /// Its known expiry now.
        expires: Option<u64>,
    },
    /// Its source failed (why); the entry stays as it was.
    Failed(String),
    /// Replaced or removed inside the container meanwhile: left alone.
    LeftAlone,
}

/// One entry's line in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Which entry: `docker HOST` or `git PROTOCOL://USER@HOST[/PATH]`.
    pub entry: String,
    /// Its source, for people ([`describe`]).
    pub from: String,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Refreshed { changed, expires } => {
                write!(
                    f,
                    "refreshed {} from {} ({}",
                    self.entry,
                    self.from,
                    if *changed {
                        "new secret"
                    } else {
                        "same secret"
                    }
                )?;
                if let Some(t) = expires {
                    write!(f, ", expires {}", clock::utc(*t))?;
                }
                f.write_str(")")
            }
            Outcome::Failed(why) => {
                write!(
                    f,
                    "could not refresh {} from {}: {why}",
                    self.entry, self.from
                )
            }
            Outcome::LeftAlone => write!(
                f,
                "left {} alone: it was replaced or removed inside the container",
                self.entry
            ),
        }
    }
}

/// What one refresh pass did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// One line per entry asked for again.
    pub lines: Vec<Line>,
    /// The host entries in the vault (whether asked or not).
    pub host_entries: usize,
    /// When the next entry is due (unix seconds), if any came from the host.
    pub next_due: Option<u64>,
}

impl Report {
    /// How many entries could not be refreshed.
    pub fn failures(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l.outcome, Outcome::Failed(_)))
            .count()
    }
}

/// Which entries a pass asks for again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Every host entry.
    All,
    /// Those due now (and not held back after a failure).
    Due,
}

/// A host entry to ask for again: no secret, only where to ask.
#[derive(Debug, Clone)]
enum Job {
    Docker { server_url: String, source: Source },
    Git { query: Query, source: Source },
}

/// What a source answered (holds secrets; lives only in memory).
enum Fresh {
    Docker(DockerEntry),
    Git(GitEntry),
}

fn docker_key(e: &DockerEntry) -> String {
    format!("docker {}", e.server_url)
}

fn git_key(protocol: &str, username: &str, host: &str, path: Option<&str>) -> String {
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("git {protocol}://{username}@{host}{path}")
}

/// Refreshes vaults on a schedule, remembering which sources failed.
#[derive(Debug)]
pub struct Refresher {
    schedule: Schedule,
    /// Entry key → not asked again before (unix seconds).
    held: HashMap<String, u64>,
}

impl Refresher {
    /// A refresher with no failures remembered.
    pub fn new(schedule: Schedule) -> Refresher {
        Refresher {
            schedule,
            held: HashMap::new(),
        }
    }

    /// The schedule in use.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// One pass over the vault at `store`: opens it with `open` to see its
    /// host entries, asks the selected ones' sources (outside the lock, in
    /// parallel), then writes what they answered in one locked update,
    /// opened with `open` again. Nothing is written when nothing was asked.
    pub fn run<E>(
        &mut self,
        store: &Store,
        open: impl Fn(&SealedVault) -> Result<Vault, E>,
        which: Which,
    ) -> Result<Report, E>
    where
        E: From<devc_vault::Error>,
    {
        let now = devc_vault::now();
        let vault = open(&store.read()?)?;
        let (jobs, host_entries) = self.jobs(&vault, which, now);
        let next_due = self.next_due(&vault);
        drop(vault);
        if jobs.is_empty() {
            return Ok(Report {
                lines: Vec::new(),
                host_entries,
                next_due,
            });
        }
        let schedule = &self.schedule;
        let answers = import::in_parallel(jobs, |job| {
            let (key, from) = match &job {
                Job::Docker { server_url, source } => {
                    (format!("docker {server_url}"), describe(source))
                }
                Job::Git { query, source } => (
                    git_key(
                        &query.protocol,
                        query.username.as_deref().unwrap_or_default(),
                        &query.host,
                        query.path.as_deref(),
                    ),
                    describe(source),
                ),
            };
            (key, from, ask(schedule, job))
        });
        let mut report = store.update(&open, |v| {
            let mut lines = Vec::new();
            for (key, from, answer) in answers {
                let outcome = match answer {
                    Err(why) => Outcome::Failed(why),
                    Ok(fresh) => apply(v, fresh)?,
                };
                lines.push(Line {
                    entry: key,
                    from,
                    outcome,
                });
            }
            Ok::<_, E>(Report {
                lines,
                host_entries,
                next_due: None,
            })
        })?;
        let now = devc_vault::now();
        for l in &report.lines {
            match l.outcome {
                Outcome::Failed(_) => {
                    let wait = RETRY_AFTER_FAILURE.min(self.schedule.default_every);
                    self.held
                        .insert(l.entry.clone(), now + wait.as_secs().max(1));
                }
                _ => {
                    self.held.remove(&l.entry);
                }
            }
        }
        // The next due time, from the vault as written.
        report.next_due = match store.read().map_err(E::from).and_then(|s| open(&s)) {
            Ok(v) => self.next_due(&v),
            Err(_) => Some(now + 1),
        };
        Ok(report)
    }

    /// The jobs of a pass, and how many host entries there are.
    fn jobs(&self, v: &Vault, which: Which, now: u64) -> (Vec<Job>, usize) {
        let mut jobs = Vec::new();
        let mut host = 0;
        for (key, due, job) in self.host_entries(v) {
            host += 1;
            if which == Which::All || due <= now {
                jobs.push((key, job));
            }
        }
        (jobs.into_iter().map(|(_, j)| j).collect(), host)
    }

    /// When the first host entry of `v` is due, failures held back included.
    pub fn next_due(&self, v: &Vault) -> Option<u64> {
        self.host_entries(v)
            .into_iter()
            .map(|(_, due, _)| due)
            .min()
    }

    /// Every host entry of `v`: its key, when it is due, and its job.
    fn host_entries(&self, v: &Vault) -> Vec<(String, u64, Job)> {
        let mut out = Vec::new();
        for e in v.docker() {
            let Some(s) = &e.source else { continue };
            let key = docker_key(e);
            let due = self.held_until(&key, self.schedule.due_at(s, e.expires));
            let job = Job::Docker {
                server_url: e.server_url.clone(),
                source: s.clone(),
            };
            out.push((key, due, job));
        }
        for e in v.git() {
            let Some(s) = &e.source else { continue };
            let key = git_key(&e.protocol, &e.username, &e.host, e.path.as_deref());
            let due = self.held_until(&key, self.schedule.due_at(s, e.password_expiry_utc));
            let job = Job::Git {
                query: Query {
                    protocol: e.protocol.clone(),
                    host: e.host.clone(),
                    path: e.path.clone(),
                    username: Some(e.username.clone()),
                },
                source: s.clone(),
            };
            out.push((key, due, job));
        }
        out
    }

    fn held_until(&self, key: &str, due: u64) -> u64 {
        self.held.get(key).map_or(due, |&t| due.max(t))
    }
}

/// Asks one entry's source again.
fn ask(schedule: &Schedule, job: Job) -> Result<Fresh, String> {
    match job {
        Job::Docker { server_url, source } => {
            import::resolve_again(&server_url, &source).map(|e| Fresh::Docker(schedule.stamp(e)))
        }
        Job::Git { query, source } => {
            if source.kind != git_import::KIND_GIT {
                return Err(format!(
                    "its source {:?} is not one devc-vault can ask again",
                    source.kind
                ));
            }
            git_import::fill("git", &query).map(Fresh::Git)
        }
    }
}

/// Writes one answer into the vault, in place of a host entry only.
fn apply(v: &mut Vault, fresh: Fresh) -> devc_vault::Result<Outcome> {
    match fresh {
        Fresh::Docker(e) => {
            let changed = !v
                .docker()
                .iter()
                .any(|o| o.same_registry(&e) && o.secret == e.secret && o.username == e.username);
            let expires = e.expires;
            Ok(match v.refresh_docker(e)? {
                Some(_) => Outcome::Refreshed { changed, expires },
                None => Outcome::LeftAlone,
            })
        }
        Fresh::Git(e) => {
            let changed = !v
                .git()
                .iter()
                .any(|o| o.same_slot(&e) && o.password == e.password);
            let expires = e.password_expiry_utc;
            Ok(match v.refresh_git(e)? {
                Some(_) => Outcome::Refreshed { changed, expires },
                None => Outcome::LeftAlone,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(toml_sources: &[(&str, u64, Option<u64>)], every: u64) -> Schedule {
        let mut config = RefreshConfig::default();
        for (name, e, life) in toml_sources {
            config.sources.insert(
                (*name).to_owned(),
                devc_keydelivery::environment::SourceSchedule {
                    every: Some(Duration::from_secs(*e)),
                    lifetime: life.map(Duration::from_secs),
                },
            );
        }
        Schedule::new(config, Some(Duration::from_secs(every)))
    }

    #[test]
    fn due_by_interval_or_before_expiry() {
        let s = schedule(&[("fast", 60, None)], 3600);
        let helper = |name: &str, fetched| Source::new(KIND_HELPER, name, fetched);
        // The default interval, a per-source one, a well-known helper's.
        assert_eq!(s.due_at(&helper("pass", 1000), None), 4600);
        assert_eq!(s.due_at(&helper("fast", 1000), None), 1060);
        assert_eq!(s.due_at(&helper("gcloud", 1000), None), 1000 + 1800);
        // Expiry known: a fifth of the life left, at most 15 min, at least 1 s.
        assert_eq!(s.due_at(&helper("pass", 1000), Some(1500)), 1400);
        assert_eq!(
            s.due_at(&helper("pass", 1000), Some(1000 + 86_400)),
            1000 + 3600
        );
        let s_long = schedule(&[], 86_400 * 7);
        assert_eq!(
            s_long.due_at(&helper("pass", 0), Some(86_400)),
            86_400 - MAX_LEAD
        );
        assert_eq!(s.due_at(&helper("pass", 1000), Some(1003)), 1002);
        // Already expired when fetched: due now.
        assert_eq!(s.due_at(&helper("pass", 1000), Some(900)), 900);
        // Kinds other than helpers go by kind.
        let file = Source::new("docker-config", "/h/config.json", 1000);
        assert_eq!(source_name(&file), "docker-config");
        assert_eq!(describe(&file), "docker-config /h/config.json");
        assert_eq!(
            describe(&helper("ecr-login", 0)),
            "docker-credential-ecr-login"
        );
    }

    #[test]
    fn expiry_from_the_token_or_the_sources_lifetime() {
        let s = schedule(&[("short", 60, Some(600))], 3600);
        let src = Source::new(KIND_HELPER, "short", 1000);
        assert_eq!(s.expiry("opaque", &src), Some(1600));
        assert_eq!(
            s.expiry("opaque", &Source::new(KIND_HELPER, "pass", 1000)),
            None
        );
        assert_eq!(
            s.expiry("opaque", &Source::new(KIND_HELPER, "ecr-login", 1000)),
            Some(1000 + 12 * 3600)
        );
        // {"exp":2000}
        assert_eq!(s.expiry("e30.eyJleHAiOjIwMDB9.c2ln", &src), Some(2000));
    }
}
