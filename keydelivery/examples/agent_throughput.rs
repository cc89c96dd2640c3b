//! Agent throughput: N client threads ask a running agent for the keys of a
//! vault's current version for a fixed time; prints requests per second.
//!
//! ```text
//! cargo run --release -p devc-keydelivery --example agent_throughput -- SOCKET VAULT [CLIENTS] [SECONDS] [reconnect]
//! ```
//! With `reconnect`, every request uses a fresh connection (as a helper
//! process does); otherwise each client keeps one connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use devc_keydelivery::client::AgentClient;
use devc_keydelivery::endpoint::Trust;
use devc_vault::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, vault, rest @ ..] = args.as_slice() else {
        return Err("usage: agent_throughput SOCKET VAULT [CLIENTS] [SECONDS] [reconnect]".into());
    };
    let clients: usize = rest.first().map_or(Ok(16), |s| s.parse())?;
    let secs: u64 = rest.get(1).map_or(Ok(5), |s| s.parse())?;
    let reconnect = rest.get(2).is_some_and(|s| s == "reconnect");
    let socket = PathBuf::from(socket);
    let sealed = Arc::new(Store::new(vault).read()?);
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (socket, sealed, done, count) = (
                socket.clone(),
                Arc::clone(&sealed),
                Arc::clone(&done),
                Arc::clone(&count),
            );
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = AgentClient::connect(&socket, Trust::ContainerFacing)
                    .map_err(|e| e.to_string())?;
                while !done.load(Ordering::Relaxed) {
                    if reconnect {
                        c = AgentClient::connect(&socket, Trust::ContainerFacing)
                            .map_err(|e| e.to_string())?;
                    }
                    c.open(&sealed).map_err(|e| e.to_string())?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    done.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "client thread panicked")??;
    }
    let n = count.load(Ordering::Relaxed);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "{clients} clients, {}: {n} key requests in {:.1}s = {rate:.0} requests/s",
        if reconnect {
            "new connection per request"
        } else {
            "persistent connections"
        },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
