//! The engine's own HTTP load generator, for the cluster model.
//!
//! A fixed number of requests, at most `concurrency` in flight, over
//! keep-alive connections or a new connection per request. Each answer's
//! `x-worker` header says which worker served it; latencies go into an HDR
//! histogram. [`Live`] holds the running totals so a ticker can stream them
//! while the load runs.

use super::Stop;
use app::protocol::{Bucket, Latency};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What to send.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub addr: SocketAddr,
    pub requests: u64,
    pub concurrency: u32,
    pub keep_alive: bool,
}

/// Running totals, shared with whoever reports them.
pub struct Live {
    /// Requests handed out to the senders so far.
    issued: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    per_worker: Mutex<Vec<u64>>,
    histogram: Mutex<Histogram<u64>>,
}

impl Live {
    /// Totals for a cluster of `workers`.
    pub fn new(workers: u32) -> Self {
        Live {
            issued: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            per_worker: Mutex::new(vec![0; workers as usize]),
            // 1 µs to 60 s, 3 significant figures.
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }

    /// Answers per worker so far.
    pub fn per_worker(&self) -> Vec<u64> {
        self.per_worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Latency figures so far.
    pub fn latency(&self) -> Latency {
        let h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        let mut buckets = Vec::new();
        if !h.is_empty() {
            let mut upper = 64u64;
            let mut below = 0;
            while below < h.len() {
                let upto = h.count_between(0, upper);
                buckets.push(Bucket {
                    upper_us: upper,
                    count: upto - below,
                });
                below = upto;
                upper *= 2;
            }
        }
        Latency {
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            buckets,
        }
    }

    fn record(&self, worker: Option<usize>, took: Duration) {
        match worker {
            Some(w) => {
                if let Some(count) = self
                    .per_worker
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(w)
                {
                    *count += 1;
                }
                let _ = self
                    .histogram
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record((took.as_micros() as u64).max(1));
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Send the whole load; returns first request to last answer.
pub async fn run(load: Load, live: Arc<Live>, stop: Stop) -> Duration {
    let started = Instant::now();
    let senders: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| tokio::spawn(sender(load, live.clone(), stop.clone())))
        .collect();
    for s in senders {
        let _ = s.await;
    }
    started.elapsed()
}

/// One of `concurrency` loops: take the next request number, send it, record.
async fn sender(load: Load, live: Arc<Live>, stop: Stop) {
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    while !stop.is_requested() && live.issued.fetch_add(1, Ordering::Relaxed) < load.requests {
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, request(&load, &mut conn))
            .await
            .unwrap_or(None);
        if answer.is_none() {
            // A broken connection is not reused.
            conn = None;
        }
        live.record(answer, started.elapsed());
    }
}

/// One request; the worker index that answered, or `None` on any failure.
async fn request(load: &Load, conn: &mut Option<SendRequest<Empty<Bytes>>>) -> Option<usize> {
    let mut sender = match conn.take() {
        Some(s) if load.keep_alive && !s.is_closed() => s,
        _ => connect(load.addr).await?,
    };
    sender.ready().await.ok()?;
    let req = Request::get("/")
        .header("host", "127.0.0.1")
        .header(
            "connection",
            if load.keep_alive {
                "keep-alive"
            } else {
                "close"
            },
        )
        .body(Empty::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let worker = resp
        .headers()
        .get("x-worker")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    resp.into_body().collect().await.ok()?;
    if load.keep_alive {
        *conn = Some(sender);
    }
    worker
}

async fn connect(addr: SocketAddr) -> Option<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_per_worker_and_failures_apart() {
        let live = Live::new(2);
        live.record(Some(0), Duration::from_micros(100));
        live.record(Some(1), Duration::from_micros(300));
        live.record(Some(1), Duration::from_micros(5_000));
        live.record(None, Duration::from_millis(1));
        assert_eq!(live.per_worker(), vec![1, 2]);
        assert_eq!(live.completed.load(Ordering::Relaxed), 3);
        assert_eq!(live.errors.load(Ordering::Relaxed), 1);
        let latency = live.latency();
        assert_eq!(latency.buckets.iter().map(|b| b.count).sum::<u64>(), 3);
        assert!(
            latency.p50_us >= 299 && latency.p50_us <= 301,
            "{latency:?}"
        );
        assert!(latency.max_us >= 4_990, "{latency:?}");
    }
}
