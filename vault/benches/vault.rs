//! Vault-core speed: open + look up one entry (key file) at 1, 100 and
//! 10,000 entries; add one entry to a 10,000-entry vault on disk; an
//! Argon2id unlock at the default cost. Figures go in docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use devc_vault::*;
use std::hint::black_box;

fn entry(i: usize) -> DockerEntry {
    DockerEntry::new(
        format!("registry{i}.example.com:5000"),
        format!("user{i}"),
        Secret::new(format!("token-{i}-{}", "x".repeat(40))),
    )
}

fn vault_with(n: usize, key: &KeySecret) -> Vault {
    let mut v = Vault::create();
    v.add_secret_slot(SlotKind::KeyFile, key).expect("slot");
    for i in 0..n {
        // Push without the replace scan: building the fixture is not measured.
        v.payload_mut().docker.push(entry(i));
    }
    v
}

fn open_and_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("open+lookup (key file)");
    for n in [1usize, 100, 10_000] {
        let key = KeySecret::generate();
        let store = Store::new(dir.path().join(format!("{n}.enc")));
        store.create(&vault_with(n, &key)).expect("create");
        let want = format!("registry{}.example.com:5000", n / 2);
        // What a helper does: read the file, open it, find one entry.
        g.bench_with_input(BenchmarkId::from_parameter(n), &store, |b, store| {
            b.iter(|| {
                let v = store
                    .read()
                    .and_then(|s| s.open(&Key::Secret(key.clone())))
                    .expect("open");
                let e = v
                    .docker()
                    .iter()
                    .find(|e| e.server_url == want)
                    .expect("found");
                black_box(e.secret.expose().len())
            })
        });
    }
    g.finish();
}

fn add_to_large_vault(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".credentials.enc");
    let key = KeySecret::generate();
    Store::new(&path)
        .create(&vault_with(10_000, &key))
        .expect("create");
    let store = Store::new(&path);
    let mut i = 0usize;
    c.bench_function(
        "add one entry to a 10,000-entry vault (locked, atomic, fsync)",
        |b| {
            b.iter(|| {
                i += 1;
                let e = entry(1_000_000 + i);
                store
                    .update::<_, Error>(
                        |s| s.open(&Key::Secret(key.clone())),
                        |v| v.upsert_docker(e),
                    )
                    .expect("update");
            })
        },
    );
}

fn argon2_unlock(c: &mut Criterion) {
    let p = Passphrase::new("correct horse battery staple".into());
    let mut v = Vault::create();
    v.add_passphrase_slot(&p, Argon2Cost::DEFAULT)
        .expect("slot");
    let sealed = SealedVault::parse((v.seal().expect("seal")).to_vec()).expect("parse");
    let mut g = c.benchmark_group("passphrase");
    g.sample_size(10);
    g.bench_function("argon2id unlock (m=64 MiB, t=3, p=4)", |b| {
        b.iter(|| sealed.open(&Key::Passphrase(p.clone())).expect("open"))
    });
    g.finish();
}

criterion_group!(benches, open_and_lookup, add_to_large_vault, argon2_unlock);
criterion_main!(benches);
