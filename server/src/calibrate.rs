//! The compare page's figures: the same jobs run through every model on this
//! host, once, and kept.
//!
//! A client of the engine, like the WebSocket session and the CLI: each
//! figure comes from a real run through [`Engine::prepare`] — admitted,
//! bounded and reaped like a learner's — folded with the same [`LabState`]
//! the page uses, or from a small direct measurement in [`probes`] where the
//! lab has none (a thread's start, message round trip and memory). Every
//! figure carries a sentence saying how it was measured.

pub mod probes;

use crate::engine::{Engine, Refused, Stop};
use protocol::format::{format_bytes, format_count, format_us, median};
use protocol::lab::LabState;
use protocol::{
    Calibration, Figure, Memory, ModelFigures, ModelKind, ModelSpec, Outcome, RunSpec, SchedPolicy,
    Sharing, ThreadStrategy, Unit, Workload,
};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, Mutex};

/// The CPU-bound job every model runs: long enough that starting workers
/// does not dominate, short enough that the whole pass takes seconds.
pub const JOB_BELOW: u64 = 3_000_000;
/// Workers for the parallel runs: this machine's two cores are the point.
pub const WORKERS: u32 = 2;
/// Small messages each child answers, for its round-trip figure.
pub const CHILD_ROUND_TRIPS: u32 = 200;
/// Thread round trips timed directly.
pub const THREAD_ROUND_TRIPS: usize = 1_000;
/// Threads started one by one to time a thread's start.
pub const TIMED_STARTS: usize = 16;
/// Idle threads started to weigh one.
pub const WEIGHED_THREADS: usize = 16;
/// Hello-world requests per cluster run, and how many are in flight.
pub const HELLO_REQUESTS: u32 = 4_000;
pub const HELLO_CONCURRENCY: u32 = 16;
/// CPU per request, and requests, for the cluster's speedup.
pub const CPU_MS: u64 = 2;
pub const CPU_REQUESTS: u32 = 400;
pub const CPU_CONCURRENCY: u32 = 8;
/// A re-run asked for sooner than this after the last pass gets the last
/// pass: the figures are shared by everyone, and a pass loads both cores.
pub const MIN_RERUN_GAP: Duration = Duration::from_secs(60);

/// Why a calibration pass has no figures.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The queue turned one of the pass's runs away.
    #[error("the {model} calibration run was refused: {refused}")]
    Refused {
        model: &'static str,
        refused: Refused,
    },
    /// One of the pass's runs failed or was stopped.
    #[error("the {model} calibration run did not complete: {why}")]
    Incomplete { model: &'static str, why: String },
    /// The direct thread measurements panicked.
    #[error("the thread measurements failed: {0}")]
    Probes(#[from] tokio::task::JoinError),
}

/// Measures once, on first request, and hands everyone the same figures.
pub struct Calibrator {
    engine: Arc<Engine>,
    /// Stops a pass in progress when the server shuts down.
    shutdown: Stop,
    /// The last pass. Held across a pass, so visitors who arrive while it
    /// runs wait for it instead of starting their own.
    last: Mutex<Option<(Instant, Calibration)>>,
}

impl Calibrator {
    pub fn new(engine: Arc<Engine>, shutdown: Stop) -> Self {
        Calibrator {
            engine,
            shutdown,
            last: Mutex::new(None),
        }
    }

    /// The figures: measured now if there are none yet, or if `rerun` is
    /// asked and the last pass is at least [`MIN_RERUN_GAP`] old.
    pub async fn get(&self, rerun: bool) -> Result<Calibration, CalibrationError> {
        let mut last = self.last.lock().await;
        if let Some((at, figures)) = &*last {
            if !rerun || at.elapsed() < MIN_RERUN_GAP {
                return Ok(figures.clone());
            }
        }
        let figures = calibrate(&self.engine, &self.shutdown).await?;
        *last = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }
}

/// One full pass over every model.
pub async fn calibrate(
    engine: &Arc<Engine>,
    shutdown: &Stop,
) -> Result<Calibration, CalibrationError> {
    let began = Instant::now();
    let job = Workload::Primes { below: JOB_BELOW };
    let run = |model, workload, workers| {
        measure(
            engine,
            RunSpec {
                model,
                workload,
                workers,
            },
            shutdown,
        )
    };

    let main = run(ModelSpec::MainThread, job.clone(), 1).await?;
    let threads = run(
        ModelSpec::Threads {
            strategy: ThreadStrategy::Spawn,
            sharing: Sharing::Messages,
        },
        job.clone(),
        WORKERS,
    )
    .await?;
    let children = run(
        ModelSpec::ChildProcess {
            round_trips: CHILD_ROUND_TRIPS,
        },
        job.clone(),
        WORKERS,
    )
    .await?;
    let cluster = |workload, workers, requests, concurrency| {
        run(
            ModelSpec::Cluster {
                policy: SchedPolicy::RoundRobin,
                requests,
                concurrency,
                keep_alive: true,
                kill: None,
            },
            workload,
            workers,
        )
    };
    let hello_alone = cluster(Workload::HttpHello, 1, HELLO_REQUESTS, HELLO_CONCURRENCY).await?;
    let hello = cluster(
        Workload::HttpHello,
        WORKERS,
        HELLO_REQUESTS,
        HELLO_CONCURRENCY,
    )
    .await?;
    let cpu_ms = Workload::HttpCpu { ms: CPU_MS };
    let cpu_alone = cluster(cpu_ms.clone(), 1, CPU_REQUESTS, CPU_CONCURRENCY).await?;
    let cpu = cluster(cpu_ms, WORKERS, CPU_REQUESTS, CPU_CONCURRENCY).await?;
    let (thread_starts, thread_trips, thread_bytes) = tokio::task::spawn_blocking(|| {
        (
            probes::start_latencies(TIMED_STARTS),
            probes::round_trips(THREAD_ROUND_TRIPS),
            probes::resident_bytes_per_thread(WEIGHED_THREADS),
        )
    })
    .await?;

    let job_words = format!("count the primes below {}", format_count(JOB_BELOW));
    let host = main
        .host
        .clone()
        .ok_or_else(|| CalibrationError::Incomplete {
            model: ModelKind::MainThread.name(),
            why: "it reported no host".into(),
        })?;
    Ok(Calibration {
        host,
        finished_unix_s: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        took_ms: began.elapsed().as_millis() as u64,
        models: vec![
            main_figures(&main, &hello_alone, &job_words),
            thread_figures(
                &threads,
                &thread_starts,
                &thread_trips,
                thread_bytes,
                &job_words,
            ),
            child_figures(&children, &job_words),
            cluster_figures(&hello, &cpu_alone, &cpu),
        ],
        job: job_words,
    })
}

/// Run `spec` to the end and fold its events, as the page would.
async fn measure(
    engine: &Arc<Engine>,
    spec: RunSpec,
    shutdown: &Stop,
) -> Result<LabState, CalibrationError> {
    let model = spec.model.name();
    let (events, mut received) = mpsc::unbounded_channel();
    let (handle, run) = engine
        .prepare(0, spec, events)
        .map_err(|refused| CalibrationError::Refused { model, refused })?;
    let relay = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            handle.stop(shutdown.requested().await);
        })
    };
    let summary = run.execute().await;
    relay.abort();
    let mut lab = LabState::default();
    lab.begin(0);
    while let Ok(ev) = received.try_recv() {
        lab.apply(ev);
    }
    match summary {
        Ok(s) if s.outcome == Outcome::Completed => Ok(lab),
        Ok(s) => Err(CalibrationError::Incomplete {
            model,
            why: lab
                .error
                .unwrap_or_else(|| protocol::format::outcome_word(s.outcome).into()),
        }),
        Err(refused) => Err(CalibrationError::Refused { model, refused }),
    }
}

fn median_start(lab: &LabState) -> Option<f64> {
    median(
        lab.workers
            .iter()
            .filter_map(|w| w.start_latency_us)
            .collect(),
    )
    .map(|us| us as f64)
}

fn wall(lab: &LabState) -> Option<f64> {
    lab.summary.as_ref().map(|s| s.wall_us as f64)
}

fn speedup(lab: &LabState, job: &str) -> Figure {
    match lab
        .summary
        .as_ref()
        .and_then(|s| Some((s.speedup?, s.baseline_wall_us?)))
    {
        Some((speedup, one)) => Figure::measured(
            speedup,
            Unit::Ratio,
            format!("{job} on one worker ({}) against {WORKERS}", format_us(one)),
        ),
        None => Figure::none(Unit::Ratio, "the run measured no one-worker baseline"),
    }
}

fn main_figures(main: &LabState, hello_alone: &LabState, job: &str) -> ModelFigures {
    let lag = main
        .summary
        .as_ref()
        .and_then(|s| s.main_loop_lag_us)
        .map_or(String::new(), |us| {
            format!("; the loop's heartbeat waited {}", format_us(us))
        });
    ModelFigures {
        model: ModelKind::MainThread,
        start: Figure::none(Unit::Micros, "nothing to start: the loop is already running"),
        round_trip: Figure::none(Unit::Nanos, "no second party to send a message to"),
        memory: Figure::none(Unit::Bytes, "no worker to add"),
        job_wall: match wall(main) {
            Some(us) => Figure::measured(us, Unit::Micros, format!("{job} on the loop{lag}")),
            None => Figure::none(Unit::Micros, "the run reported no time"),
        },
        speedup: Figure::none(Unit::Ratio, "one loop uses one core: there is nothing to divide"),
        hello_rps: rps(
            hello_alone,
            "one process serving alone (a cluster of one worker): what a Node.js server does without cluster",
        ),
    }
}

fn thread_figures(
    lab: &LabState,
    starts: &[std::time::Duration],
    trips: &[std::time::Duration],
    bytes: Option<u64>,
    job: &str,
) -> ModelFigures {
    let trip = crate::engine::measure::percentile(trips, 50.0);
    ModelFigures {
        model: ModelKind::Threads,
        // The run's two workers are too few for a steady median (a new
        // thread may wait for a core), so threads are started alone here.
        start: if starts.is_empty() {
            Figure::none(Unit::Micros, "no thread could be started")
        } else {
            Figure::measured(
                crate::engine::measure::percentile(starts, 50.0).as_nanos() as f64 / 1_000.0,
                Unit::Micros,
                format!(
                    "std::thread::spawn to the thread's first message; median of {} threads \
                     started one after another",
                    starts.len()
                ),
            )
        },
        round_trip: if trips.is_empty() {
            Figure::none(Unit::Nanos, "the ping-pong did not run")
        } else {
            Figure::measured(
                trip.as_nanos() as f64,
                Unit::Nanos,
                format!(
                    "median of {} ping-pongs over a pair of std::sync::mpsc channels; \
                     Node's postMessage also copies the value (structured clone)",
                    trips.len()
                ),
            )
        },
        memory: match bytes {
            Some(b) => Figure::measured(
                b as f64,
                Unit::Bytes,
                format!(
                    "growth of the server's resident memory with {WEIGHED_THREADS} idle threads, \
                     divided by {WEIGHED_THREADS}: the heap is shared, so this is mostly stack in use"
                ),
            ),
            None => Figure::none(Unit::Bytes, "/proc/self/status could not be read"),
        },
        job_wall: job_wall(lab, job, "threads"),
        speedup: speedup(lab, job),
        hello_rps: Figure::none(
            Unit::PerSecond,
            "threads compute; in Node they cannot take a server's connections",
        ),
    }
}

fn child_figures(lab: &LabState, job: &str) -> ModelFigures {
    let trip = median(
        lab.workers
            .iter()
            .filter_map(|w| w.round_trip_ns.map(|(p50, _)| p50))
            .collect(),
    );
    ModelFigures {
        model: ModelKind::ChildProcess,
        start: start(lab, "spawning the server's own binary to its first message on stdout"),
        round_trip: match trip {
            Some(ns) => Figure::measured(
                ns as f64,
                Unit::Nanos,
                format!(
                    "median of {CHILD_ROUND_TRIPS} JSON-line ping-pongs over each child's stdio pipes"
                ),
            ),
            None => Figure::none(Unit::Nanos, "the children reported no round trips"),
        },
        memory: memory(lab, "child"),
        job_wall: job_wall(lab, job, "child processes"),
        speedup: speedup(lab, job),
        hello_rps: Figure::none(
            Unit::PerSecond,
            "a plain child serves nothing; handed a server socket, it is what cluster does",
        ),
    }
}

fn cluster_figures(hello: &LabState, cpu_alone: &LabState, cpu: &LabState) -> ModelFigures {
    let rps_of = |lab: &LabState| lab.load.as_ref().map(|l| l.rps);
    ModelFigures {
        model: ModelKind::Cluster,
        start: start(
            hello,
            "the primary spawning a worker to that worker listening",
        ),
        round_trip: match &hello.load {
            Some(load) => Figure::measured(
                load.latency.p50_us as f64 * 1_000.0,
                Unit::Nanos,
                format!(
                    "median latency of a hello request on a kept-alive loopback connection, \
                     {HELLO_CONCURRENCY} in flight: an HTTP exchange, not an IPC message"
                ),
            ),
            None => Figure::none(Unit::Nanos, "the load generator reported nothing"),
        },
        memory: memory(hello, "worker"),
        job_wall: Figure::none(
            Unit::Micros,
            "a cluster serves requests rather than running one job: see its speedup",
        ),
        speedup: match (rps_of(cpu_alone), rps_of(cpu)) {
            (Some(one), Some(two)) if one > 0.0 => Figure::measured(
                two / one,
                Unit::Ratio,
                format!(
                    "requests per second with {WORKERS} workers against 1, each request burning \
                     {CPU_MS} ms of CPU ({} requests, {CPU_CONCURRENCY} in flight; the load \
                     generator shares the cores)",
                    format_count(CPU_REQUESTS.into())
                ),
            ),
            _ => Figure::none(Unit::Ratio, "the load generator reported nothing"),
        },
        hello_rps: rps(
            hello,
            &format!("{WORKERS} workers, the primary handing out connections round robin"),
        ),
    }
}

fn start(lab: &LabState, how: &str) -> Figure {
    match median_start(lab) {
        Some(us) => Figure::measured(
            us,
            Unit::Micros,
            format!("{how}; median of {} workers", lab.workers.len()),
        ),
        None => Figure::none(Unit::Micros, "no worker reported its start"),
    }
}

fn job_wall(lab: &LabState, job: &str, on: &str) -> Figure {
    match wall(lab) {
        Some(us) => Figure::measured(us, Unit::Micros, format!("{job} on {WORKERS} {on}")),
        None => Figure::none(Unit::Micros, "the run reported no time"),
    }
}

/// The median worker's private memory, with its whole resident size.
fn memory(lab: &LabState, what: &str) -> Figure {
    let of = |f: fn(&Memory) -> u64| {
        median(
            lab.workers
                .iter()
                .filter_map(|w| w.memory.as_ref().map(f))
                .collect(),
        )
    };
    match (of(|m| m.anon_bytes), of(|m| m.rss_bytes)) {
        (Some(anon), Some(rss)) => Figure::measured(
            anon as f64,
            Unit::Bytes,
            format!(
                "the {what}'s private (anonymous) resident memory at the end of its work; \
                 {} resident in all, counting the binary it shares",
                format_bytes(rss)
            ),
        ),
        _ => Figure::none(Unit::Bytes, format!("no {what} reported its memory")),
    }
}

fn rps(lab: &LabState, how: &str) -> Figure {
    match &lab.load {
        Some(load) => Figure::measured(
            load.rps,
            Unit::PerSecond,
            format!(
                "{how}; {} hello requests, {HELLO_CONCURRENCY} in flight, keep-alive, over loopback \
                 from a load generator on the same cores",
                format_count(load.requests)
            ),
        ),
        None => Figure::none(Unit::PerSecond, "the load generator reported nothing"),
    }
}
