//! The engine's own HTTP load generator, for the cluster model.
//!
//! A fixed number of requests, at most `concurrency` in flight, over
//! keep-alive connections or a new connection per request. Each answer's
//! `x-worker` header says which worker served it. The generator only emits:
//! one [`Sample`] per request on a channel that closes when the load is
//! done. Whoever runs the load folds the samples into a [`Tally`] (counts
//! per worker, an HDR histogram of latencies) and reads it whenever it
//! likes, with nothing shared between the two.

use super::Stop;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use protocol::{Bucket, Latency};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub requests: u64,
    pub concurrency: u32,
    pub keep_alive: bool,
    /// Distinct client addresses to send from (`127.0.1.1` and up, one per
    /// sender in turn), so a balancer that hashes by client sees several
    /// clients; 0 sends from the default address.
    pub sources: u32,
    /// Behind a balancer: how it names each instance in the `x-upstream`
    /// header of its answers (the last name, when it tried several).
    pub upstreams: Option<Arc<[String]>>,
}

/// Most distinct client addresses a load is sent from.
pub const MAX_SOURCES: u32 = 16;

/// One request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The worker that answered, or `None` if the request failed.
    pub worker: Option<usize>,
    /// Behind a balancer: the instance that answered, when it said.
    pub instance: Option<usize>,
    /// Send to answer (or to failure).
    pub took: Duration,
}

/// Send the whole load, one sample per request; the channel closes when
/// every request is done, or soon after a stop.
pub fn start(load: Load, stop: Stop) -> mpsc::UnboundedReceiver<Sample> {
    let (tx, rx) = mpsc::unbounded_channel();
    let issued = Arc::new(AtomicU64::new(0));
    for n in 0..load.concurrency.max(1) {
        let source = (load.sources > 0).then(|| {
            let k = (n % load.sources.min(MAX_SOURCES)) as u8;
            std::net::Ipv4Addr::new(127, 0, 1, k + 1)
        });
        tokio::spawn(sender(
            load.clone(),
            source,
            issued.clone(),
            tx.clone(),
            stop.clone(),
        ));
    }
    rx
}

/// The samples so far, folded.
pub struct Tally {
    pub completed: u64,
    pub errors: u64,
    per_worker: Vec<u64>,
    histogram: Histogram<u64>,
}

impl Tally {
    /// Totals for a cluster of `workers`.
    pub fn new(workers: u32) -> Self {
        Tally {
            completed: 0,
            errors: 0,
            per_worker: vec![0; workers as usize],
            // 1 µs to 60 s, 3 significant figures.
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    /// Take one sample into account.
    pub fn add(&mut self, sample: Sample) {
        match sample.worker {
            Some(w) => {
                if let Some(count) = self.per_worker.get_mut(w) {
                    *count += 1;
                }
                let _ = self
                    .histogram
                    .record((sample.took.as_micros() as u64).max(1));
                self.completed += 1;
            }
            None => self.errors += 1,
        }
    }

    /// Answers per worker so far.
    pub fn per_worker(&self) -> Vec<u64> {
        self.per_worker.clone()
    }

    /// Latency figures so far.
    pub fn latency(&self) -> Latency {
        let h = &self.histogram;
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
}

/// One of `concurrency` loops: take the next request number, send it, emit.
async fn sender(
    load: Load,
    source: Option<std::net::Ipv4Addr>,
    issued: Arc<AtomicU64>,
    samples: mpsc::UnboundedSender<Sample>,
    stop: Stop,
) {
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    while !stop.is_requested() && issued.fetch_add(1, Ordering::Relaxed) < load.requests {
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, request(&load, source, &mut conn))
            .await
            .unwrap_or(None);
        if answer.is_none() {
            // A broken connection is not reused.
            conn = None;
        }
        let sample = Sample {
            worker: answer.map(|a| a.0),
            instance: answer.and_then(|a| a.1),
            took: started.elapsed(),
        };
        if samples.send(sample).is_err() {
            return;
        }
    }
}

/// One request; the worker index that answered (and the instance, behind
/// a balancer), or `None` on any failure.
async fn request(
    load: &Load,
    source: Option<std::net::Ipv4Addr>,
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
) -> Option<(usize, Option<usize>)> {
    let mut sender = match conn.take() {
        Some(s) if load.keep_alive && !s.is_closed() => s,
        _ => connect(load.addr, source).await?,
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
        .and_then(|v| v.parse().ok())?;
    let instance = load.upstreams.as_ref().and_then(|names| {
        let said = resp.headers().get("x-upstream")?.to_str().ok()?;
        let last = said.rsplit([',', ' ']).find(|t| !t.is_empty())?;
        names.iter().position(|n| n == last)
    });
    resp.into_body().collect().await.ok()?;
    if load.keep_alive {
        *conn = Some(sender);
    }
    Some((worker, instance))
}

async fn connect(
    addr: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
) -> Option<SendRequest<Empty<Bytes>>> {
    let stream = match source {
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(SocketAddr::from((ip, 0))).ok()?;
            socket.connect(addr).await.ok()?
        }
        None => TcpStream::connect(addr).await.ok()?,
    };
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
        let mut tally = Tally::new(2);
        let sample = |worker, us| Sample {
            worker,
            instance: None,
            took: Duration::from_micros(us),
        };
        tally.add(sample(Some(0), 100));
        tally.add(sample(Some(1), 300));
        tally.add(sample(Some(1), 5_000));
        tally.add(sample(None, 1_000));
        assert_eq!(tally.per_worker(), vec![1, 2]);
        assert_eq!(tally.completed, 3);
        assert_eq!(tally.errors, 1);
        let latency = tally.latency();
        assert_eq!(latency.buckets.iter().map(|b| b.count).sum::<u64>(), 3);
        assert!(
            latency.p50_us >= 299 && latency.p50_us <= 301,
            "{latency:?}"
        );
        assert!(latency.max_us >= 4_990, "{latency:?}");
    }
}
