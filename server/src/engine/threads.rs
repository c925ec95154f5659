//! The worker-threads model: N OS threads in the server process, each doing
//! one share of the workload and reporting over a channel.
//!
//! This is the counterpart of Node's `new Worker()` + `postMessage`: each
//! thread sends a first message as soon as it runs (its start latency is
//! spawn → that message's arrival), then progress, then its result. The
//! coordinator is a plain blocking thread rather than an async task, so the
//! arrival times it records are not delayed by the async scheduler.
//!
//! When more than one worker ran, the same workload then runs on a single
//! thread, so the reported speedup is a measurement, not `workers × 1`.

use super::catalogue::Share;
use super::measure::{current_tid, thread_cpu_time};
use super::report::{Reporter, Tally, WorkerReport};
use super::spawn::lower_this_thread;
use super::{EventSink, ModelRun, Pass, Stop};
use app::protocol::{RunId, Workload};
use std::sync::mpsc;
use std::time::Instant;

/// Run `workload` on `workers` fresh threads, streaming events for run `id`,
/// then measure the one-thread baseline when it is worth comparing.
pub async fn run(
    id: RunId,
    workload: Workload,
    workers: u32,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, String> {
    let (events, stop) = (events.clone(), stop.clone());
    tokio::task::spawn_blocking(move || {
        let mut reporter = Reporter::new(id, workers, events.clone(), stop.clone());
        let pass = run_pass(&workload, workers, &stop, |worker, report| {
            reporter.report(worker, report)
        })?;
        pass.with_baseline(id, workers, &events, &stop, || {
            run_pass(&workload, 1, &stop, |_, _| {})
        })
    })
    .await
    .map_err(|e| format!("the thread coordinator failed: {e}"))?
}

/// Spawn the workers, pass their reports to `observe` stamped with the time
/// since that worker was spawned, and join them all.
fn run_pass(
    workload: &Workload,
    workers: u32,
    stop: &Stop,
    mut observe: impl FnMut(u32, WorkerReport),
) -> Result<Pass, String> {
    let (tx, rx) = mpsc::channel();
    let mut tally = Tally::new(workers);
    let mut spawned_at = Vec::with_capacity(workers as usize);
    let mut handles = Vec::with_capacity(workers as usize);
    for worker in 0..workers {
        let share = Share::new(workload.clone(), worker, workers);
        let (worker_tx, worker_stop) = (tx.clone(), stop.clone());
        spawned_at.push(Instant::now());
        let handle = std::thread::Builder::new()
            .name(format!("spawnlab-worker-{worker}"))
            .spawn(move || worker_main(share, worker_tx, worker_stop));
        match handle {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                // Stop the ones already running before giving up.
                stop.request(super::StopReason::Cancelled);
                drop(tx);
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(format!("could not start worker thread {worker}: {e}"));
            }
        }
    }
    drop(tx);

    // The loop ends when every worker has dropped its sender. Arrival times
    // are stamped here, where the messages land.
    for (worker, mut report) in rx {
        let since_spawn = spawned_at[worker as usize].elapsed();
        match &mut report {
            WorkerReport::Ready { latency, .. } => *latency = since_spawn,
            WorkerReport::Done { wall, .. } => *wall = since_spawn,
            _ => {}
        }
        tally.note(worker, &report);
        observe(worker, report);
    }
    for handle in handles {
        handle
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
    }
    Ok(tally.finish())
}

/// The body of one worker thread.
fn worker_main(share: Share, tx: mpsc::Sender<(u32, WorkerReport)>, stop: Stop) {
    let worker = share.worker;
    // Below the site's own threads, so pages stay fast while a lab runs.
    lower_this_thread();
    let cpu_start = thread_cpu_time();
    // A send fails only if the coordinator is gone; then nobody needs the work.
    // The coordinator fills in the times when the message arrives.
    let _ = tx.send((
        worker,
        WorkerReport::Ready {
            latency: Default::default(),
            pid: std::process::id(),
            tid: Some(current_tid()),
        },
    ));
    let result = share.run(
        || stop.is_requested(),
        |done, total| {
            let _ = tx.send((worker, WorkerReport::Progress { done, total }));
        },
    );
    let _ = tx.send((
        worker,
        WorkerReport::Done {
            result: result.ok(),
            cpu: thread_cpu_time() - cpu_start,
            memory: None,
            wall: Default::default(),
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StopReason;
    use app::protocol::{ServerEvent, WorkResult};
    use std::time::Duration;
    use tokio::sync::mpsc::unbounded_channel;

    async fn collect(workload: Workload, workers: u32, stop: Stop) -> (ModelRun, Vec<ServerEvent>) {
        let (tx, mut rx) = unbounded_channel();
        let run = run(9, workload, workers, &tx, &stop).await.unwrap();
        drop(tx);
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        (run, events)
    }

    #[tokio::test]
    async fn every_worker_reports_spawn_progress_and_result() {
        let (run, events) = collect(Workload::Primes { below: 200_000 }, 3, Stop::new()).await;
        let spawned: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::WorkerSpawned { worker, tid, .. } => Some((*worker, tid.unwrap())),
                _ => None,
            })
            .collect();
        assert_eq!(spawned.len(), 3);
        let tids: std::collections::HashSet<_> = spawned.iter().map(|(_, t)| t).collect();
        assert_eq!(tids.len(), 3, "each worker is its own thread");
        let total: u64 = run
            .results
            .iter()
            .map(|r| match r {
                Some(WorkResult::Primes { count }) => *count,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(total, 17_984, "primes below 200,000");
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::BaselineFinished { .. })));
        assert!(run.baseline_wall.is_some());
        assert!(events.iter().all(|e| e.run() == Some(9)));
    }

    #[tokio::test]
    async fn a_stopped_run_ends_promptly_without_a_result() {
        let stop = Stop::new();
        let stopper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stop.request(StopReason::Cancelled);
            })
        };
        let started = Instant::now();
        // Ten seconds of sleeping, split over two workers: only a prompt
        // stop ends this within the bound below.
        let (run, events) = collect(Workload::Sleep { ms: 10_000 }, 2, stop).await;
        stopper.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(run.results, vec![None, None]);
        assert_eq!(run.baseline_wall, None);
        assert!(!events
            .iter()
            .any(|e| matches!(e, ServerEvent::BaselineStarted { .. })));
    }
}
