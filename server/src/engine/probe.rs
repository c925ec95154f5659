//! The main thread's `/ping`, probed from outside: while the lab's job runs
//! on the loop, the server sends a tiny HTTP request every [`EVERY`] and
//! times the answer, so the learner sees a request wait behind the job —
//! what every other user of a blocked Node.js server experiences.

use super::EventSink;
use protocol::{RunId, ServerEvent};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::task::AbortOnDropHandle;

/// How often a probe is sent.
pub const EVERY: Duration = Duration::from_millis(50);

/// Longest one probe waits before it counts as unanswered.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Most probes waiting at once: a frozen loop must not collect thousands.
const MAX_WAITING: usize = 64;

/// The probes of one run. [`Prober::finish`] stops them and waits until the
/// last one has sent its event, so no `ping` can follow the run's
/// `run_finished`; dropping it instead aborts them without waiting (a run
/// that is itself being torn down).
pub struct Prober {
    stop: tokio::sync::oneshot::Sender<()>,
    task: AbortOnDropHandle<()>,
}

impl Prober {
    /// Stop probing and wait for every probe in flight to end.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Probe `127.0.0.1:port/ping` every [`EVERY`] until the returned prober is
/// finished or dropped; each answer (or its absence) is a `ping` event
/// stamped on the run's clock `began`.
pub fn start(id: RunId, port: u16, began: Instant, events: EventSink) -> Prober {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let waiting = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_WAITING));
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probes = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = &mut stopped => {
                    // Abort the probes and wait until none is running, so
                    // none sends after the caller goes on.
                    probes.shutdown().await;
                    return;
                }
            }
            let Ok(slot) = waiting.clone().try_acquire_owned() else {
                continue;
            };
            let events = events.clone();
            probes.spawn(async move {
                let sent = Instant::now();
                let at_ms = sent.duration_since(began).as_millis() as u64;
                let answered = tokio::time::timeout(TIMEOUT, ping(port)).await;
                let latency_us =
                    matches!(answered, Ok(Ok(true))).then(|| sent.elapsed().as_micros() as u64);
                let _ = events.send(ServerEvent::Ping {
                    run: id,
                    at_ms,
                    latency_us,
                });
                drop(slot);
            });
            // Forget the ones that are done.
            while probes.try_join_next().is_some() {}
        }
    });
    Prober {
        stop,
        task: AbortOnDropHandle::new(task),
    }
}

/// One `GET /ping`; true on a 200 answer.
async fn ping(port: u16) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200"))
}
