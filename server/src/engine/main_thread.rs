//! The main-thread model: the work runs on an event loop that also ticks a
//! heartbeat, so the learner watches the heartbeat stop for as long as the
//! work runs — what happens to every other request when a Node.js handler
//! does CPU-heavy work on the main thread.
//!
//! The loop belongs to the run, not to the server: it is a single-threaded
//! async runtime on a thread of its own, so the site stays responsive while
//! the lab's loop is frozen. The heartbeat ticks every [`TICK`]; each tick
//! reports how late it ran. The loop idles for [`CALM`] first, so the
//! learner sees a steady pulse, then the work blocks it, then it idles again.

use super::catalogue::{Compute, Share, Stopped};
use super::error::{panic_message, RunError};
use super::measure::{current_tid, micros, thread_cpu_time};
use super::report::{Reporter, Tally, WorkerReport};
use super::spawn::lower_this_thread;
use super::{probe, EventSink, ModelRun, Stop};
use protocol::{RunId, ServerEvent, WorkResult};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the heartbeat is scheduled.
pub const TICK: Duration = Duration::from_millis(20);

/// Quiet time on the loop before and after the work.
pub const CALM: Duration = Duration::from_millis(300);

/// Run `workload` on a fresh single-threaded event loop that also ticks the
/// heartbeat, streaming events for run `id`.
pub async fn run(
    id: RunId,
    work: Compute,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, RunError> {
    let (events, stop) = (events.clone(), stop.clone());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let began = Instant::now();
    // The loop's `/ping` port, bound here so the probes can start at once;
    // they come from outside the loop, as other users' requests would.
    let ping = match ping_listener() {
        Ok(bound) => Some(bound),
        Err(e) => {
            tracing::warn!("the main-thread lab could not open its /ping port: {e}");
            None
        }
    };
    let prober = ping
        .as_ref()
        .map(|(_, port)| probe::start(id, *port, began, events.clone()));
    std::thread::Builder::new()
        .name("spawnlab-main-loop".into())
        .spawn(move || {
            lower_this_thread();
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| RunError::start("the run's event loop", e))
                .and_then(|rt| {
                    catch_unwind(AssertUnwindSafe(|| {
                        rt.block_on(event_loop(id, work, events, stop, began, ping))
                    }))
                    .map_err(|payload| RunError::Panicked {
                        what: "the run's event loop".into(),
                        message: panic_message(payload),
                    })
                });
            let _ = done_tx.send(result);
        })
        .map_err(|e| RunError::start("the run's event loop thread", e))?;
    let result = done_rx.await.unwrap_or_else(|_| {
        Err(RunError::Panicked {
            what: "the run's event loop".into(),
            message: "it ended without a word".into(),
        })
    });
    // The loop is gone, and its /ping with it: the probes in flight fail
    // now, and must have said so before the run's summary goes out.
    if let Some(prober) = prober {
        prober.finish().await;
    }
    result
}

/// The run's whole life on its loop: calm, blocked (or waiting), calm again.
async fn event_loop(
    id: RunId,
    work: Compute,
    events: EventSink,
    stop: Stop,
    started: Instant,
    ping: Option<(std::net::TcpListener, u16)>,
) -> ModelRun {
    let max_lag = Arc::new(AtomicU64::new(0));
    let heartbeat = tokio::spawn(heartbeat(id, started, events.clone(), max_lag.clone()));
    // A tiny HTTP server on the same loop: its answers wait whenever the
    // loop is busy, like every other request to a blocked Node.js server.
    let server = match ping.map(|(l, port)| (tokio::net::TcpListener::from_std(l), port)) {
        Some((Ok(listener), port)) => {
            let _ = events.send(ServerEvent::Listening { run: id, port });
            Some(tokio::spawn(serve_pings(listener)))
        }
        Some((Err(e), _)) => {
            tracing::warn!("the main-thread lab could not serve /ping: {e}");
            None
        }
        None => None,
    };
    let mut reporter = Reporter::new(id, 1, events.clone(), stop.clone());
    tokio::select! {
        _ = tokio::time::sleep(CALM) => {}
        _ = stop.requested() => {}
    }
    let mut tally = Tally::new(1);
    // The work is one task on the loop, like a request handler: while it
    // runs, nothing else on this loop can — not even the heartbeat.
    let report = |tally: &mut Tally, reporter: &mut Reporter, r: WorkerReport| {
        tally.note(0, &r);
        reporter.report(0, r);
    };
    let work_started = Instant::now();
    report(
        &mut tally,
        &mut reporter,
        WorkerReport::Ready {
            latency: Duration::ZERO,
            pid: std::process::id(),
            tid: Some(current_tid()),
        },
    );
    let cpu_start = thread_cpu_time();
    let share = Share::new(work, 0, 1);
    let result = match work {
        // `await` on a timer: the loop is free while it waits, so the
        // heartbeat and the pings go on.
        Compute::Sleep { .. } => {
            let mut progress = |done, total| {
                report(
                    &mut tally,
                    &mut reporter,
                    WorkerReport::Progress { done, total },
                )
            };
            wait_on_timers(&share, &stop, &mut progress).await
        }
        // Everything else holds the loop until it is done: the CPU-bound
        // jobs, and a synchronous wait (`Atomics.wait`), which uses no CPU
        // but freezes the loop all the same.
        _ => share.run(
            || stop.is_requested(),
            |done, total| {
                report(
                    &mut tally,
                    &mut reporter,
                    WorkerReport::Progress { done, total },
                )
            },
        ),
    };
    report(
        &mut tally,
        &mut reporter,
        WorkerReport::Done {
            result: result.ok(),
            cpu: thread_cpu_time() - cpu_start,
            memory: None,
            wall: work_started.elapsed(),
            messages: None,
        },
    );
    // Let the heartbeat catch up and beat calmly again.
    tokio::select! {
        _ = tokio::time::sleep(CALM) => {}
        _ = stop.requested() => {}
    }
    heartbeat.abort();
    if let Some(server) = server {
        server.abort();
    }
    let mut run = tally.finish().alone();
    run.max_lag = Some(Duration::from_micros(max_lag.load(Ordering::Relaxed)));
    run
}

/// Tick every [`TICK`] and report how late each tick ran.
async fn heartbeat(id: RunId, started: Instant, events: EventSink, max_lag: Arc<AtomicU64>) {
    let mut due = tokio::time::Instant::now() + TICK;
    loop {
        tokio::time::sleep_until(due).await;
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        max_lag.fetch_max(micros(lag), Ordering::Relaxed);
        let _ = events.send(ServerEvent::Heartbeat {
            run: id,
            at_ms: started.elapsed().as_millis() as u64,
            lag_us: micros(lag),
        });
        // Schedule from now, as a timer loop in Node would: a late tick
        // does not cause a burst of catch-up ticks.
        due = tokio::time::Instant::now() + TICK;
    }
}

/// The share's wait as timer steps on the loop, reporting progress after each.
async fn wait_on_timers(
    share: &Share,
    stop: &Stop,
    progress: &mut impl FnMut(u64, u64),
) -> Result<WorkResult, Stopped> {
    let total = share.total_steps();
    let mine = share.wait();
    let started = Instant::now();
    for done in 0..total {
        if stop.is_requested() {
            return Err(Stopped);
        }
        let left = mine.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Share::WAIT_STEP)).await;
        progress(done + 1, total);
    }
    Ok(WorkResult::Slept {
        ms: started.elapsed().as_millis() as u64,
    })
}

/// A listening socket on a free loopback port, for `/ping`, ready for the
/// run's own loop to take over.
fn ping_listener() -> std::io::Result<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// Answer every `GET /ping` with `pong`, one connection at a time per
/// task, all on the run's loop.
async fn serve_pings(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let answer: &[u8] = if request[..n].starts_with(b"GET /ping ") {
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\npong\n"
            } else {
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            };
            let _ = stream.write_all(answer).await;
        });
    }
}
