//! The worker-threads model: N OS threads in the server process, each doing
//! one share of the workload.
//!
//! This is the counterpart of Node's `new Worker()` + `postMessage`. Two
//! choices mirror the ones a Node.js programmer makes:
//!
//! - **strategy**: spawn fresh threads for every run, or hand the shares to a
//!   pool of threads started once and kept (Node's docs advise a pool, since
//!   creating a worker costs more than a small task saves);
//! - **sharing**: report through messages on a channel (each a separate
//!   allocation handed across, like `postMessage`), or write progress and
//!   results into one shared board of atomics that the coordinator reads
//!   (like a `SharedArrayBuffer` with `Atomics`): no messages at all.
//!
//! Either way a worker's start latency is spawn (or hand-off to the pool) →
//! its first sign of life, and the coordinator — a plain blocking thread, so
//! the times it records are not delayed by the async scheduler — turns what
//! it learns into the same reports. When more than one worker ran, the same
//! workload then runs on a single worker of the same kind, so the speedup is
//! a measurement, not `workers × 1`.
//!
//! A worker that panics is caught where it runs: it reports itself lost
//! (with the panic's message), the run fails, and the server — and the
//! pool's thread — go on.

use super::catalogue::{Compute, Share};
use super::error::{panic_message, RunError};
use super::measure::{current_tid, memory_of_self, thread_cpu_time};
use super::pass::{measured, Pass, Which};
use super::report::{Tally, WorkerReport};
use super::spawn::lower_this_thread;
use super::{EventSink, ModelRun, Stop};
use protocol::{Memory, RunId, Sharing, ThreadStrategy, WorkResult};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the coordinator reads the shared board.
const BOARD_POLL: Duration = Duration::from_millis(5);

/// How a run's threads are started and how they report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub strategy: ThreadStrategy,
    pub sharing: Sharing,
}

/// The pool, started on first use with one thread per allowed worker and
/// kept for the life of the server. Workers catch their own panics; the
/// handler is the last line, so a panic that escapes one is logged rather
/// than aborting the server (rayon's default).
fn pool(size: u32) -> Result<&'static rayon::ThreadPool, RunError> {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(size.max(1) as usize)
        .thread_name(|i| format!("spawnlab-pool-{i}"))
        .start_handler(|_| lower_this_thread())
        .panic_handler(|payload| {
            tracing::error!("a pool thread panicked: {}", panic_message(payload));
        })
        .build()
        .map_err(|e| RunError::start("the worker pool", std::io::Error::other(e)))?;
    // Two runs may build one at once; the first to land is the pool.
    Ok(POOL.get_or_init(|| pool))
}

/// What every pass of a run does.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// The work, shared out between the workers.
    pub work: Compute,
    pub style: Style,
    /// Threads in the pool, the first time one is needed.
    pub pool_size: u32,
    /// Test builds only: every worker panics once it has started.
    pub panic_in_worker: bool,
}

/// Run `job` on `workers` threads, streaming events for run `id`, then
/// measure the one-worker baseline when it is worth comparing.
pub async fn run(
    id: RunId,
    job: Job,
    workers: u32,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, RunError> {
    let what = "the thread coordinator";
    measured(
        id,
        workers,
        true,
        events,
        stop,
        what,
        move |_: Which, n, stop, observe| run_pass(&job, n, stop, observe),
    )
    .await
}

/// Where a worker puts what it has to say.
#[derive(Clone)]
enum Outbox {
    Channel(mpsc::Sender<(u32, WorkerReport)>),
    Board(Arc<Board>),
}

/// The shared-memory variant's board: one row of atomics per worker,
/// written by that worker, read by the coordinator.
struct Board {
    rows: Vec<Row>,
    /// Results that do not fit in a number (digests), stored once, at the end.
    results: Vec<Mutex<Option<WorkResult>>>,
    /// Why a worker ended without a result (it panicked), stored before
    /// its row is marked finished.
    lost: Vec<Mutex<Option<String>>>,
}

#[derive(Default)]
struct Row {
    /// Nanoseconds from the run's epoch to the worker's first instruction,
    /// plus one (0 means "not yet").
    ready_ns: AtomicU64,
    tid: AtomicU64,
    done: AtomicU64,
    total: AtomicU64,
    cpu_ns: AtomicU64,
    stopped: AtomicBool,
    finished: AtomicBool,
}

impl Board {
    fn new(workers: u32) -> Self {
        Board {
            rows: (0..workers).map(|_| Row::default()).collect(),
            results: (0..workers).map(|_| Mutex::new(None)).collect(),
            lost: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }
}

/// One pass over the workers: start them, relay what they say to `observe`
/// (stamped with the time since that worker was started), wait for all.
fn run_pass(
    job: &Job,
    workers: u32,
    stop: &Stop,
    observe: &mut dyn FnMut(u32, WorkerReport),
) -> Result<Pass, RunError> {
    let mut tally = Tally::new(workers);
    let before = memory_of_self();
    let epoch = Instant::now();
    let (tx, rx) = mpsc::channel();
    let board = Arc::new(Board::new(workers));
    let outbox = match job.style.sharing {
        Sharing::Messages => Outbox::Channel(tx),
        Sharing::SharedMemory => Outbox::Board(board.clone()),
    };
    let mut started_at = Vec::with_capacity(workers as usize);
    let mut handles = Vec::new();
    let pool = match job.style.strategy {
        ThreadStrategy::Pool => Some(pool(job.pool_size)?),
        ThreadStrategy::Spawn => None,
    };
    for worker in 0..workers {
        let share = Share::new(job.work, worker, workers);
        let (worker_outbox, worker_stop) = (outbox.clone(), stop.clone());
        let panic = job.panic_in_worker;
        let body = move || worker_main(share, worker_outbox, worker_stop, epoch, panic);
        started_at.push(Instant::now());
        match pool {
            Some(pool) => pool.spawn(body),
            None => {
                let spawned = std::thread::Builder::new()
                    .name(format!("spawnlab-worker-{worker}"))
                    .spawn(body);
                match spawned {
                    Ok(handle) => handles.push(handle),
                    Err(e) => {
                        // Stop the ones already running before giving up.
                        stop.request(super::StopReason::Cancelled);
                        drop(outbox);
                        handles.into_iter().for_each(|h| drop(h.join()));
                        return Err(RunError::start(format!("worker thread {worker}"), e));
                    }
                }
            }
        }
    }
    drop(outbox);

    // Memory per worker, defined as for Node's Workers: the process's growth
    // in anonymous resident memory from before the first spawn to when all
    // are ready, divided by the number of workers.
    let mut ready = 0;
    let mut per_worker = None;
    let mut deliver = |worker: u32, mut report: WorkerReport, since_start: Duration| {
        match &mut report {
            WorkerReport::Ready { latency, .. } => {
                *latency = since_start;
                ready += 1;
                if ready == workers {
                    per_worker = growth_per_worker(before, workers);
                }
            }
            WorkerReport::Done { wall, memory, .. } => {
                *wall = since_start;
                *memory = per_worker;
            }
            WorkerReport::Lost { wall, .. } => *wall = since_start,
            _ => {}
        }
        tally.note(worker, &report);
        observe(worker, report);
    };
    match job.style.sharing {
        // Arrival times are stamped here, where the messages land; the loop
        // ends when every worker has dropped its sender.
        Sharing::Messages => {
            for (worker, report) in rx {
                deliver(worker, report, started_at[worker as usize].elapsed());
            }
        }
        Sharing::SharedMemory => {
            drop(rx);
            read_board(&board, epoch, &started_at, &mut deliver);
        }
    }
    for handle in handles {
        // Workers catch their own panics and report them as lost.
        let _ = handle.join();
    }
    Ok(tally.finish())
}

/// The process's growth in resident memory since `before`, per worker.
fn growth_per_worker(before: Option<Memory>, workers: u32) -> Option<Memory> {
    let (before, now) = (before?, memory_of_self()?);
    let per = |a: u64, b: u64| a.saturating_sub(b) / u64::from(workers.max(1));
    Some(Memory {
        rss_bytes: per(now.rss_bytes, before.rss_bytes),
        anon_bytes: per(now.anon_bytes, before.anon_bytes),
    })
}

/// Poll the board until every worker has finished, turning what changed
/// into reports. Times come from the board itself, so polling adds nothing
/// to the start latency it reports.
fn read_board(
    board: &Board,
    epoch: Instant,
    started_at: &[Instant],
    deliver: &mut impl FnMut(u32, WorkerReport, Duration),
) {
    let n = board.rows.len();
    let mut seen_ready = vec![false; n];
    let mut seen_done = vec![0u64; n];
    let mut finished = vec![false; n];
    while finished.iter().any(|f| !f) {
        std::thread::sleep(BOARD_POLL);
        for (w, row) in board.rows.iter().enumerate() {
            if finished[w] {
                continue;
            }
            let since_start = |ns_from_epoch: u64| {
                (epoch + Duration::from_nanos(ns_from_epoch))
                    .saturating_duration_since(started_at[w])
            };
            let ready = row.ready_ns.load(Ordering::Acquire);
            if ready > 0 && !seen_ready[w] {
                seen_ready[w] = true;
                let report = WorkerReport::Ready {
                    latency: Duration::ZERO,
                    pid: std::process::id(),
                    tid: Some(row.tid.load(Ordering::Relaxed) as u32),
                };
                deliver(w as u32, report, since_start(ready - 1));
            }
            let done = row.done.load(Ordering::Relaxed);
            if done != seen_done[w] {
                seen_done[w] = done;
                let total = row.total.load(Ordering::Relaxed);
                deliver(
                    w as u32,
                    WorkerReport::Progress { done, total },
                    Duration::ZERO,
                );
            }
            if row.finished.load(Ordering::Acquire) {
                finished[w] = true;
                let lost = board.lost[w]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some(why) = lost {
                    let report = WorkerReport::Lost {
                        wall: Duration::ZERO,
                        why,
                    };
                    deliver(w as u32, report, started_at[w].elapsed());
                    continue;
                }
                let result = (!row.stopped.load(Ordering::Relaxed))
                    .then(|| {
                        board.results[w]
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .take()
                    })
                    .flatten();
                let report = WorkerReport::Done {
                    result,
                    cpu: Duration::from_nanos(row.cpu_ns.load(Ordering::Relaxed)),
                    memory: None,
                    wall: Duration::ZERO,
                    messages: Some(0),
                };
                deliver(w as u32, report, started_at[w].elapsed());
            }
        }
    }
}

/// One worker, on a fresh thread or a pool thread. A panic anywhere in its
/// body is caught here and reported as the worker lost, so the
/// coordinator never waits for a worker that will not finish.
fn worker_main(share: Share, outbox: Outbox, stop: Stop, epoch: Instant, panic: bool) {
    let worker = share.worker;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        worker_body(share, &outbox, &stop, epoch, panic)
    }));
    if let Err(payload) = caught {
        let why = format!("it panicked: {}", panic_message(payload));
        match &outbox {
            Outbox::Board(board) => {
                let i = worker as usize;
                *board.lost[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                board.rows[i].finished.store(true, Ordering::Release);
            }
            Outbox::Channel(tx) => {
                let lost = WorkerReport::Lost {
                    wall: Duration::ZERO,
                    why,
                };
                let _ = tx.send((worker, lost));
            }
        }
    }
}

/// What a worker does: say it is ready, do its share reporting progress,
/// report its result and CPU time.
fn worker_body(share: Share, outbox: &Outbox, stop: &Stop, epoch: Instant, panic: bool) {
    let worker = share.worker;
    let i = worker as usize;
    // Below the site's own threads, so pages stay fast while a lab runs.
    lower_this_thread();
    let cpu_start = thread_cpu_time();
    let messages = Cell::new(0u64);
    let say = |report: WorkerReport| {
        if let Outbox::Channel(tx) = outbox {
            messages.set(messages.get() + 1);
            // A send fails only if the coordinator is gone; then nobody
            // needs the work.
            let _ = tx.send((worker, report));
        }
    };
    match outbox {
        Outbox::Board(board) => {
            let row = &board.rows[i];
            row.tid.store(current_tid().into(), Ordering::Relaxed);
            row.ready_ns
                .store(epoch.elapsed().as_nanos() as u64 + 1, Ordering::Release);
        }
        // The coordinator fills in the times when the message arrives.
        Outbox::Channel(_) => say(WorkerReport::Ready {
            latency: Duration::ZERO,
            pid: std::process::id(),
            tid: Some(current_tid()),
        }),
    }
    if panic {
        panic!("injected panic in worker {worker}");
    }
    let result = share.run(
        || stop.is_requested(),
        |done, total| match outbox {
            Outbox::Board(board) => {
                board.rows[i].total.store(total, Ordering::Relaxed);
                board.rows[i].done.store(done, Ordering::Relaxed);
            }
            Outbox::Channel(_) => say(WorkerReport::Progress { done, total }),
        },
    );
    let cpu = thread_cpu_time() - cpu_start;
    match outbox {
        Outbox::Board(board) => {
            let row = &board.rows[i];
            row.cpu_ns.store(cpu.as_nanos() as u64, Ordering::Relaxed);
            row.stopped.store(result.is_err(), Ordering::Relaxed);
            *board.results[i].lock().unwrap_or_else(|p| p.into_inner()) = result.ok();
            row.finished.store(true, Ordering::Release);
        }
        Outbox::Channel(_) => {
            let report = WorkerReport::Done {
                result: result.ok(),
                cpu,
                memory: None,
                wall: Duration::ZERO,
                messages: Some(messages.get() + 1),
            };
            say(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StopReason;
    use protocol::{ErrorCode, ServerEvent, WorkResult};
    use std::time::Duration;
    use tokio::sync::mpsc::unbounded_channel;

    fn job(work: Compute, strategy: ThreadStrategy, sharing: Sharing, panic: bool) -> Job {
        Job {
            work,
            style: Style { strategy, sharing },
            pool_size: 4,
            panic_in_worker: panic,
        }
    }

    async fn collect_job(job: Job, workers: u32, stop: Stop) -> (ModelRun, Vec<ServerEvent>) {
        let (tx, mut rx) = unbounded_channel();
        let run = run(9, job, workers, &tx, &stop).await.unwrap();
        drop(tx);
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        (run, events)
    }

    async fn collect(work: Compute, workers: u32, stop: Stop) -> (ModelRun, Vec<ServerEvent>) {
        let job = job(work, ThreadStrategy::Spawn, Sharing::Messages, false);
        collect_job(job, workers, stop).await
    }

    #[tokio::test]
    async fn every_worker_reports_spawn_progress_and_result() {
        let (run, events) = collect(Compute::Primes { below: 200_000 }, 3, Stop::new()).await;
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
        let (run, events) = collect(Compute::Sleep { ms: 10_000 }, 2, stop).await;
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

    /// Every way a worker can run, with every worker panicking: the run
    /// ends (no coordinator waits forever), each worker is reported lost
    /// with the panic's message, and the pool survives to run again.
    #[tokio::test]
    async fn a_panicking_worker_is_reported_lost_in_every_style() {
        for strategy in ThreadStrategy::ALL {
            for sharing in Sharing::ALL {
                let job = job(Compute::Primes { below: 100_000 }, strategy, sharing, true);
                let (run, events) = collect_job(job, 2, Stop::new()).await;
                assert_eq!(run.results, vec![None, None], "{strategy:?} {sharing:?}");
                let errors: Vec<_> = events
                    .iter()
                    .filter_map(|e| match e {
                        ServerEvent::Error { code, message, .. } => Some((*code, message.clone())),
                        _ => None,
                    })
                    .collect();
                assert_eq!(errors.len(), 2, "{strategy:?} {sharing:?}: {events:?}");
                for (code, message) in errors {
                    assert_eq!(code, ErrorCode::RunFailed);
                    assert!(
                        message.contains("it panicked: injected panic in worker"),
                        "{message}"
                    );
                }
            }
        }
        // The pool's threads are still there and still work.
        let pooled = job(
            Compute::Primes { below: 100_000 },
            ThreadStrategy::Pool,
            Sharing::SharedMemory,
            false,
        );
        let (run, _) = collect_job(pooled, 2, Stop::new()).await;
        assert!(run.results.iter().all(Option::is_some));
    }
}
