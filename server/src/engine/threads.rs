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

use super::catalogue::Share;
use super::measure::{current_tid, thread_cpu_time};
use super::report::{Reporter, Tally, WorkerReport};
use super::spawn::lower_this_thread;
use super::{EventSink, ModelRun, Pass, Stop};
use app::protocol::{RunId, Sharing, ThreadStrategy, WorkResult, Workload};
use std::cell::Cell;
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
/// kept for the life of the server.
fn pool(size: u32) -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(size.max(1) as usize)
            .thread_name(|i| format!("spawnlab-pool-{i}"))
            .start_handler(|_| lower_this_thread())
            .build()
            .expect("the worker pool starts")
    })
}

/// Run `workload` on `workers` threads in `style`, streaming events for run
/// `id`, then measure the one-worker baseline when it is worth comparing.
/// `pool_size` sizes the pool the first time one is needed.
pub async fn run(
    id: RunId,
    workload: Workload,
    workers: u32,
    style: Style,
    pool_size: u32,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, String> {
    let (events, stop) = (events.clone(), stop.clone());
    tokio::task::spawn_blocking(move || {
        let mut reporter = Reporter::new(id, workers, events.clone(), stop.clone());
        let job = Job {
            workload: &workload,
            style,
            pool_size,
        };
        let pass = run_pass(&job, workers, &stop, |worker, report| {
            reporter.report(worker, report)
        })?;
        pass.with_baseline(id, workers, &events, &stop, || {
            run_pass(&job, 1, &stop, |_, _| {})
        })
    })
    .await
    .map_err(|e| format!("the thread coordinator failed: {e}"))?
}

struct Job<'a> {
    workload: &'a Workload,
    style: Style,
    pool_size: u32,
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

/// One pass over the workers: start them, relay what they say to `observe`
/// (stamped with the time since that worker was started), wait for all.
fn run_pass(
    job: &Job,
    workers: u32,
    stop: &Stop,
    mut observe: impl FnMut(u32, WorkerReport),
) -> Result<Pass, String> {
    let mut tally = Tally::new(workers);
    let epoch = Instant::now();
    let (tx, rx) = mpsc::channel();
    let board = Arc::new(Board {
        rows: (0..workers).map(|_| Row::default()).collect(),
        results: (0..workers).map(|_| Mutex::new(None)).collect(),
    });
    let outbox = match job.style.sharing {
        Sharing::Messages => Outbox::Channel(tx),
        Sharing::SharedMemory => Outbox::Board(board.clone()),
    };
    let mut started_at = Vec::with_capacity(workers as usize);
    let mut handles = Vec::new();
    for worker in 0..workers {
        let share = Share::new(job.workload.clone(), worker, workers);
        let (worker_outbox, worker_stop) = (outbox.clone(), stop.clone());
        let body = move || worker_main(share, worker_outbox, worker_stop, epoch);
        started_at.push(Instant::now());
        match job.style.strategy {
            ThreadStrategy::Pool => pool(job.pool_size).spawn(body),
            ThreadStrategy::Spawn => {
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
                        return Err(format!("could not start worker thread {worker}: {e}"));
                    }
                }
            }
        }
    }
    drop(outbox);

    let mut deliver = |worker: u32, mut report: WorkerReport, since_start: Duration| {
        match &mut report {
            WorkerReport::Ready { latency, .. } => *latency = since_start,
            WorkerReport::Done { wall, .. } => *wall = since_start,
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
        handle
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
    }
    Ok(tally.finish())
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

/// The body of one worker, on a fresh thread or a pool thread.
fn worker_main(share: Share, outbox: Outbox, stop: Stop, epoch: Instant) {
    let worker = share.worker;
    let i = worker as usize;
    // Below the site's own threads, so pages stay fast while a lab runs.
    lower_this_thread();
    let cpu_start = thread_cpu_time();
    let messages = Cell::new(0u64);
    let say = |report: WorkerReport| {
        if let Outbox::Channel(tx) = &outbox {
            messages.set(messages.get() + 1);
            // A send fails only if the coordinator is gone; then nobody
            // needs the work.
            let _ = tx.send((worker, report));
        }
    };
    match &outbox {
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
    let result = share.run(
        || stop.is_requested(),
        |done, total| match &outbox {
            Outbox::Board(board) => {
                board.rows[i].total.store(total, Ordering::Relaxed);
                board.rows[i].done.store(done, Ordering::Relaxed);
            }
            Outbox::Channel(_) => say(WorkerReport::Progress { done, total }),
        },
    );
    let cpu = thread_cpu_time() - cpu_start;
    match &outbox {
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

/// Time `count` small messages sent to another thread and answered, over a
/// pair of channels: what one `postMessage` there and back costs at the
/// bottom, without Node's structured clone on top.
pub fn round_trips(count: usize) -> Vec<Duration> {
    let (to_peer, peer_inbox) = mpsc::channel::<u64>();
    let (to_us, our_inbox) = mpsc::channel::<u64>();
    let peer = std::thread::spawn(move || {
        for n in peer_inbox {
            if to_us.send(n + 1).is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(count);
    for n in 0..count as u64 {
        let sent = Instant::now();
        if to_peer.send(n).is_err() || our_inbox.recv().is_err() {
            break;
        }
        samples.push(sent.elapsed());
    }
    drop(to_peer);
    let _ = peer.join();
    samples.sort_unstable();
    samples
}

/// Start `count` threads one after another and time each from the spawn
/// call to its first message: what starting a worker thread costs, with
/// enough samples for a steady median. Sorted.
pub fn start_latencies(count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = mpsc::channel();
        let spawned = Instant::now();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(());
        });
        if rx.recv().is_ok() {
            samples.push(spawned.elapsed());
        }
        let _ = thread.join();
    }
    samples.sort_unstable();
    samples
}

/// What one more thread adds to this process's resident memory: start
/// `count` threads that each allocate a little and wait, and divide the
/// growth of the process's RSS by `count`. Threads share the heap and the
/// code, so this is mostly each one's stack pages in use.
pub fn resident_bytes_per_thread(count: usize) -> Option<u64> {
    let rss = || super::measure::memory_of("self").map(|m| m.rss_bytes);
    let before = rss()?;
    let release = Arc::new(std::sync::Barrier::new(count + 1));
    let (ready, all_ready) = mpsc::channel();
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let (release, ready) = (release.clone(), ready.clone());
            std::thread::spawn(move || {
                let scratch = std::hint::black_box(vec![1u8; 1024]);
                let _ = ready.send(());
                release.wait();
                drop(scratch);
            })
        })
        .collect();
    for _ in 0..count {
        all_ready.recv().ok()?;
    }
    let during = rss();
    release.wait();
    for thread in threads {
        let _ = thread.join();
    }
    Some(during?.saturating_sub(before) / count as u64)
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
        let style = Style {
            strategy: ThreadStrategy::Spawn,
            sharing: Sharing::Messages,
        };
        let run = run(9, workload, workers, style, 16, &tx, &stop)
            .await
            .unwrap();
        drop(tx);
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        (run, events)
    }

    #[test]
    fn every_started_thread_is_timed() {
        let samples = start_latencies(5);
        assert_eq!(samples.len(), 5);
        assert!(samples.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn a_message_pair_comes_back_once_per_round_trip() {
        let samples = round_trips(100);
        assert_eq!(samples.len(), 100);
        assert!(samples.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn extra_threads_are_measured_in_this_process() {
        // Other tests allocate in this process at the same time, so only a
        // loose bound holds here; the compare page shows the real figure.
        let per_thread = resident_bytes_per_thread(8).expect("/proc/self/status is readable");
        assert!(per_thread < 64 * 1024 * 1024, "{per_thread}");
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
