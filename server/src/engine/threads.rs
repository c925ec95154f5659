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

use super::catalogue::{Share, Stopped};
use super::measure::{current_tid, micros, thread_cpu_time};
use super::{EventSink, ModelRun, Stop};
use app::protocol::{RunId, ServerEvent, WorkResult, Workload};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a worker thread tells its coordinator.
enum WorkerMessage {
    /// First thing a thread does: "I am running".
    Ready {
        worker: u32,
        tid: u32,
    },
    Progress {
        worker: u32,
        done: u64,
        total: u64,
    },
    Done {
        worker: u32,
        cpu: Duration,
        result: Result<WorkResult, Stopped>,
    },
}

/// Workers report after every step (hundreds a second); the page needs a
/// few updates a second to draw smooth bars. This lets through a worker's
/// progress at most every [`PROGRESS_EVERY`], and always its last step.
struct ProgressGate {
    last: Vec<Option<Instant>>,
}

/// Shortest gap between two progress events of one worker.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

impl ProgressGate {
    fn new(workers: u32) -> Self {
        ProgressGate {
            last: vec![None; workers as usize],
        }
    }

    fn pass(&mut self, worker: u32, last_step: bool) -> bool {
        let slot = &mut self.last[worker as usize];
        let due = slot.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due || last_step {
            *slot = Some(Instant::now());
        }
        due || last_step
    }
}

/// What one pass over the workers measured.
struct Pass {
    wall: Duration,
    cpu: Duration,
    results: Vec<Option<WorkResult>>,
}

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
        let send = |ev| {
            let _ = events.send(ev);
        };
        let mut progress = ProgressGate::new(workers);
        let pass = run_pass(&workload, workers, &stop, |msg, latency| match msg {
            WorkerMessage::Ready { worker, tid } => send(ServerEvent::WorkerSpawned {
                run: id,
                worker,
                start_latency_us: micros(latency),
                pid: std::process::id(),
                tid: Some(tid),
            }),
            WorkerMessage::Progress {
                worker,
                done,
                total,
            } => {
                if progress.pass(worker, done == total) {
                    send(ServerEvent::Progress {
                        run: id,
                        worker,
                        done,
                        total,
                    })
                }
            }
            WorkerMessage::Done {
                worker,
                cpu,
                result,
            } => send(ServerEvent::WorkerFinished {
                run: id,
                worker,
                wall_us: micros(latency),
                cpu_us: micros(cpu),
                memory: None,
                result: result.unwrap_or(WorkResult::Incomplete),
            }),
        })?;

        let complete = pass.results.iter().all(Option::is_some);
        let baseline_wall = if workers == 1 {
            // One worker is its own baseline.
            Some(pass.wall)
        } else if complete && !stop.is_requested() {
            send(ServerEvent::BaselineStarted { run: id });
            let baseline = run_pass(&workload, 1, &stop, |_, _| {})?;
            if baseline.results.iter().all(Option::is_some) {
                send(ServerEvent::BaselineFinished {
                    run: id,
                    wall_us: micros(baseline.wall),
                    cpu_us: micros(baseline.cpu),
                });
                Some(baseline.wall)
            } else {
                None
            }
        } else {
            None
        };
        Ok(ModelRun {
            wall: pass.wall,
            cpu: pass.cpu,
            results: pass.results,
            baseline_wall,
        })
    })
    .await
    .map_err(|e| format!("the thread coordinator failed: {e}"))?
}

/// Spawn the workers, relay their messages to `observe` together with the
/// time since that worker was spawned, and join them all.
fn run_pass(
    workload: &Workload,
    workers: u32,
    stop: &Stop,
    mut observe: impl FnMut(WorkerMessage, Duration),
) -> Result<Pass, String> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
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

    let mut results = vec![None; workers as usize];
    let mut cpu = Duration::ZERO;
    let mut ended = None;
    // The loop ends when every worker has dropped its sender.
    for msg in rx {
        let worker = match &msg {
            WorkerMessage::Ready { worker, .. }
            | WorkerMessage::Progress { worker, .. }
            | WorkerMessage::Done { worker, .. } => *worker as usize,
        };
        if let WorkerMessage::Done {
            cpu: used, result, ..
        } = &msg
        {
            cpu += *used;
            results[worker] = result.clone().ok();
            ended = Some(Instant::now());
        }
        observe(msg, spawned_at[worker].elapsed());
    }
    for handle in handles {
        handle
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
    }
    Ok(Pass {
        wall: ended.unwrap_or_else(Instant::now) - started,
        cpu,
        results,
    })
}

/// The body of one worker thread.
fn worker_main(share: Share, tx: mpsc::Sender<WorkerMessage>, stop: Stop) {
    let worker = share.worker;
    let cpu_start = thread_cpu_time();
    // A send fails only if the coordinator is gone; then nobody needs the work.
    let _ = tx.send(WorkerMessage::Ready {
        worker,
        tid: current_tid(),
    });
    let result = share.run(
        || stop.is_requested(),
        |done, total| {
            let _ = tx.send(WorkerMessage::Progress {
                worker,
                done,
                total,
            });
        },
    );
    let _ = tx.send(WorkerMessage::Done {
        worker,
        cpu: thread_cpu_time() - cpu_start,
        result,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StopReason;
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

    #[test]
    fn progress_is_thinned_but_the_last_step_always_passes() {
        let mut gate = ProgressGate::new(2);
        assert!(gate.pass(0, false), "the first report passes");
        assert!(!gate.pass(0, false), "an immediate second one does not");
        assert!(gate.pass(1, false), "workers are gated separately");
        assert!(gate.pass(0, true), "the last step always passes");
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
