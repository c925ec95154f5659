//! How the worker-threads model scales on this machine: the same job on 1, 2,
//! 4 and 8 threads, each run measuring its own one-thread baseline, printed
//! as a table. Compare the ratios within one run; absolute times depend on
//! whatever else the machine is doing.
//!
//! `cargo bench -p server --bench threads [-- <primes below>]`

use protocol::{ModelSpec, RunSpec, Runtime, ServerEvent, Workload};
use spawnlab::engine::host::describe;
use spawnlab::engine::{Budget, Engine, Learner, Limits};
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let below: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000_000);
    let host = describe();
    println!(
        "primes below {below} on {} ({} logical CPUs){}",
        host.cpu_model,
        host.logical_cores,
        if host.busy {
            ", machine busy at start"
        } else {
            ""
        }
    );
    println!(
        "{:>7} {:>12} {:>12} {:>14} {:>9} {:>16}",
        "threads", "wall ms", "cpu ms", "baseline ms", "speedup", "spawn→ready µs"
    );
    let budget = Budget {
        max_runs: 1,
        max_live_workers: 17,
        max_memory_mib: 1 << 16,
        max_queue: 0,
    };
    let engine = Arc::new(Engine::new(Limits::default(), budget));
    for workers in [1, 2, 4, 8] {
        let spec = RunSpec {
            runtime: Runtime::Rust,
            model: ModelSpec::Threads {
                strategy: Default::default(),
                sharing: Default::default(),
            },
            workload: Workload::Primes { below },
            workers,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (_handle, run) = engine
            .prepare(&Learner::new("bench"), workers as u64, spec, tx)
            .await
            .expect("a valid spec");
        let summary = run.execute().await.expect("the run is admitted");
        let mut latencies = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            if let ServerEvent::WorkerSpawned {
                start_latency_us, ..
            } = ev
            {
                latencies.push(start_latency_us);
            }
        }
        latencies.sort_unstable();
        println!(
            "{:>7} {:>12.1} {:>12.1} {:>14.1} {:>9} {:>16}",
            workers,
            summary.wall_us as f64 / 1e3,
            summary.cpu_us as f64 / 1e3,
            summary.baseline_wall_us.unwrap_or(0) as f64 / 1e3,
            summary
                .speedup
                .map_or("-".to_string(), |s| format!("{s:.2}x")),
            latencies.get(latencies.len() / 2).copied().unwrap_or(0),
        );
    }
}
