//! `docker-credential-devc-encrypted get` latency through each key path,
//! interleaved round-robin so machine noise hits every path alike; prints
//! the median and p90 of each and the ratio to the key-file median.
//!
//! ```text
//! get_latency HELPER URL_FILE RUNS NAME=ENV1=V1,ENV2=V2 ...
//! ```

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [helper, url, runs, modes @ ..] = args.as_slice() else {
        return Err("usage: get_latency HELPER URL_FILE RUNS NAME=K=V,K=V ...".into());
    };
    let runs: usize = runs.parse()?;
    let modes: Vec<(String, Vec<(String, String)>)> = modes
        .iter()
        .map(|m| {
            let (name, envs) = m.split_once('=').unwrap_or((m, ""));
            let envs = envs
                .split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect();
            (name.to_owned(), envs)
        })
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); modes.len()];
    for round in 0..runs + 10 {
        for (i, (name, envs)) in modes.iter().enumerate() {
            let start = Instant::now();
            let status = Command::new(helper)
                .arg("get")
                .envs(envs.iter().map(|(k, v)| (k, v)))
                .stdin(File::open(url)?)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            let took = start.elapsed();
            if !status.success() {
                return Err(format!("{name}: helper failed ({status})").into());
            }
            // The first rounds warm caches and are not counted.
            if round >= 10 {
                times[i].push(took);
            }
        }
    }
    let mut base = None;
    for ((name, _), t) in modes.iter().zip(&mut times) {
        t.sort();
        let median = t[t.len() / 2];
        let p90 = t[t.len() * 9 / 10];
        let base = *base.get_or_insert(median);
        println!(
            "{name:<18} median {:>6.3} ms  p90 {:>6.3} ms  {:.2}x key-file median",
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            median.as_secs_f64() / base.as_secs_f64()
        );
    }
    Ok(())
}
