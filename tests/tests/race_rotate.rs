//! Rotates racing readers and each other, with real processes:
//!
//! - a reader loop (the docker helper's `get`, configured with the key
//!   file) during 100 sequential `devc-vault rotate --key-file K`: not one
//!   read fails, though each rotate replaces the vault and the key file;
//! - four `devc-vault rotate --key-file K` started at once all succeed
//!   (each takes the lock in turn and reads the key on disk), and the key
//!   file alone opens the result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use devc_vault::{Key, Store, keyfile, pending_key_path};
use devc_vault_tests::fixture::Fixture;
use devc_vault_tests::fixture::sample::{EXPECTED, SERVER};
use devc_vault_tests::process::Outcome;

const ROTATES: usize = 100;

/// The key file alone (no `K.next`) opens the vault, which holds the sample.
#[track_caller]
fn key_file_opens(f: &Fixture) {
    let sealed = Store::new(f.vault()).read().expect("read");
    let key = keyfile::read(&f.key()).expect("key file");
    let vault = sealed
        .open(&Key::Secret(key))
        .expect("the key file opens the vault");
    assert_eq!(vault.docker().len(), 1);
    assert!(!pending_key_path(&f.key()).exists(), "K.next left behind");
}

#[test]
fn reader_loop_during_100_rotates_never_fails() {
    let Some(f) = Fixture::build("race-read").sample_entry().create() else {
        return;
    };
    let first = keyfile::read(&f.key()).expect("key");
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (reads, failures) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0usize;
            let mut failures: Vec<Outcome> = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let out = f.docker_helper("get", SERVER);
                if !out.success() || out.stdout_str() != format!("{EXPECTED}\n") {
                    failures.push(out);
                }
                reads += 1;
            }
            (reads, failures)
        });
        for _ in 0..ROTATES {
            f.cli_ok(&["rotate", &f.key_arg()], None);
        }
        stop.store(true, Ordering::Release);
        reader.join().expect("reader thread")
    });
    eprintln!(
        "[race] {ROTATES} rotates, {reads} reads, {} failed, {:.1} s",
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {reads} reads failed; the first:\n{}",
        failures.len(),
        failures[0].describe()
    );
    // The loop overlapped the rotates: dozens of reads at least.
    assert!(reads >= ROTATES / 4, "only {reads} reads ran");
    key_file_opens(&f);
    assert_ne!(
        keyfile::read(&f.key()).expect("key").expose(),
        first.expose(),
        "the rotates changed the key"
    );
}

#[test]
fn four_concurrent_rotates_all_succeed() {
    let Some(f) = Fixture::build("race-rotate").sample_entry().create() else {
        return;
    };
    let first = keyfile::read(&f.key()).expect("key");
    let outs: Vec<Outcome> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| f.cli(&["rotate", &f.key_arg()], None)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("rotate thread"))
            .collect()
    });
    for out in &outs {
        out.assert_success("one of four concurrent rotates");
        assert!(
            out.stdout_str().contains("replaced the secret in"),
            "{}",
            out.describe()
        );
    }
    key_file_opens(&f);
    assert_ne!(
        keyfile::read(&f.key()).expect("key").expose(),
        first.expose()
    );
    assert_eq!(
        f.docker_helper("get", SERVER).stdout_str(),
        format!("{EXPECTED}\n")
    );
}
