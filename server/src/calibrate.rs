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

use crate::engine::{Engine, Learner, Refused, Stop};
use protocol::format::{format_bytes, format_count, format_us, median, nearest_rank};
use protocol::lab::LabState;
use protocol::{
    Calibration, Figure, HostInfo, Memory, ModelFigures, ModelKind, ModelSpec, Outcome, RunSpec,
    Runtime, SchedPolicy, Serialization, Sharing, SweepPoint, ThreadStrategy, Unit, Workload,
};
use serde_json::json;
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
/// Threads (or Workers) started one by one to time a start.
pub const TIMED_STARTS: usize = 16;
/// Idle threads (or Workers) started to weigh one.
pub const WEIGHED_THREADS: usize = 16;
/// Hello-world requests per cluster run, and how many are in flight.
pub const HELLO_REQUESTS: u32 = 4_000;
pub const HELLO_CONCURRENCY: u32 = 16;
/// CPU per request, and requests, for the cluster's speedup.
pub const CPU_MS: u64 = 2;
pub const CPU_REQUESTS: u32 = 400;
pub const CPU_CONCURRENCY: u32 = 8;
/// Job sizes of the break-even sweep: primes below 10³ … 10⁷, each on two
/// workers against one (the threads model measures its own one-worker
/// baseline), on each runtime.
pub const SWEEP: [u64; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/// A re-run asked for sooner than this after the last pass gets the last
/// pass ([`protocol::compare::MIN_RERUN_GAP_S`]).
pub const MIN_RERUN_GAP: Duration = Duration::from_secs(protocol::compare::MIN_RERUN_GAP_S);

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
    /// No runtime was available to measure (the Rust engine always is,
    /// so a pass should never see this).
    #[error("no runtime is available to measure")]
    NoRuntime,
    /// A plain Node.js measurement failed.
    #[error("the Node.js measurement {what} failed: {why}")]
    Node { what: String, why: String },
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

/// One full pass over every model, on every runtime this server has.
pub async fn calibrate(
    engine: &Arc<Engine>,
    shutdown: &Stop,
) -> Result<Calibration, CalibrationError> {
    let began = Instant::now();
    let runtimes = engine.runtimes().await;
    let job = format!("count the primes below {}", format_count(JOB_BELOW));
    let mut models = Vec::new();
    let mut host = None;
    for info in runtimes.iter().filter(|r| r.available) {
        let who = Who {
            runtime: info.runtime,
            name: info.name(),
        };
        let (pass_host, figures) = pass(engine, &who, &job, shutdown).await?;
        host.get_or_insert(pass_host);
        models.extend(figures);
    }
    let break_even = sweep(engine, &runtimes, shutdown).await?;
    let host = host.ok_or(CalibrationError::NoRuntime)?;
    Ok(Calibration {
        host,
        finished_unix_s: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        took_ms: began.elapsed().as_millis() as u64,
        models,
        job,
        runtimes,
        break_even,
    })
}

/// A runtime, and how a figure names it: "Node.js v20.20.2", "Rust engine".
struct Who {
    runtime: Runtime,
    /// The name every `how` sentence starts with.
    name: String,
}

impl Who {
    fn name(&self) -> &str {
        &self.name
    }

    /// `api` for Node.js, `rust` for the engine.
    fn pick<'a>(&self, api: &'a str, rust: &'a str) -> &'a str {
        match self.runtime {
            Runtime::Node => api,
            Runtime::Rust => rust,
        }
    }
}

/// Every model once on `who`'s runtime: the host it ran on, and a column
/// per model.
async fn pass(
    engine: &Arc<Engine>,
    who: &Who,
    job_words: &str,
    shutdown: &Stop,
) -> Result<(HostInfo, Vec<ModelFigures>), CalibrationError> {
    let job = Workload::Primes { below: JOB_BELOW };
    let run = |model, workload, workers| {
        measure(
            engine,
            RunSpec {
                runtime: who.runtime,
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
            serialization: Serialization::Json,
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
    let direct = direct(engine, who).await?;

    let host = main
        .host
        .clone()
        .ok_or_else(|| CalibrationError::Incomplete {
            model: ModelKind::MainThread.name(),
            why: "it reported no host".into(),
        })?;
    Ok((
        host,
        vec![
            main_figures(who, &main, &hello_alone, job_words),
            thread_figures(who, &threads, &direct, job_words),
            child_figures(who, &children, job_words),
            cluster_figures(who, &hello, &cpu_alone, &cpu),
        ],
    ))
}

/// What a thread's start, round trip and memory cost, measured directly:
/// sorted samples in ns, and bytes per thread.
struct Direct {
    starts_ns: Vec<f64>,
    trips_ns: Vec<f64>,
    bytes: Option<f64>,
}

/// The thread figures no lab run gives: the Rust probes, or plain Node.js
/// (`bench.js`) for Node's `new Worker()` and `postMessage`.
async fn direct(engine: &Arc<Engine>, who: &Who) -> Result<Direct, CalibrationError> {
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    match who.runtime {
        Runtime::Rust => {
            let (starts, trips, bytes) = tokio::task::spawn_blocking(|| {
                (
                    probes::start_latencies(TIMED_STARTS),
                    probes::round_trips(THREAD_ROUND_TRIPS),
                    probes::resident_bytes_per_thread(WEIGHED_THREADS),
                )
            })
            .await?;
            let ns = |v: Vec<Duration>| v.iter().map(|d| d.as_nanos() as f64).collect();
            Ok(Direct {
                starts_ns: sorted(ns(starts)),
                trips_ns: sorted(ns(trips)),
                bytes: bytes.map(|b| b as f64),
            })
        }
        Runtime::Node => {
            let node = |request: serde_json::Value| async move {
                let what = request["measure"].as_str().unwrap_or_default().to_string();
                engine
                    .node_measure(&request)
                    .await
                    .map(|m| m.samples)
                    .map_err(|e| CalibrationError::Node {
                        what,
                        why: e.message(),
                    })
            };
            let starts = node(json!({"measure": "worker_start", "count": TIMED_STARTS})).await?;
            let trips =
                node(json!({"measure": "thread_round_trip", "count": THREAD_ROUND_TRIPS})).await?;
            let bytes = node(json!({"measure": "worker_memory", "count": WEIGHED_THREADS})).await?;
            Ok(Direct {
                starts_ns: sorted(starts),
                trips_ns: sorted(trips),
                bytes: bytes.first().copied(),
            })
        }
    }
}

/// Two workers against one for each job size of [`SWEEP`], on each
/// available runtime: where does a second worker start to pay?
async fn sweep(
    engine: &Arc<Engine>,
    runtimes: &[protocol::RuntimeInfo],
    shutdown: &Stop,
) -> Result<Vec<SweepPoint>, CalibrationError> {
    let mut points = Vec::new();
    for info in runtimes.iter().filter(|r| r.available) {
        for below in SWEEP {
            let spec = RunSpec {
                runtime: info.runtime,
                model: ModelSpec::Threads {
                    strategy: ThreadStrategy::Spawn,
                    sharing: Sharing::Messages,
                },
                workload: Workload::Primes { below },
                workers: WORKERS,
            };
            let summary = measure(engine, spec, shutdown).await?.summary.ok_or(
                CalibrationError::Incomplete {
                    model: ModelKind::Threads.name(),
                    why: "it ended without a summary".into(),
                },
            )?;
            points.push(SweepPoint {
                runtime: info.runtime,
                below,
                workers: WORKERS,
                wall_us: summary.wall_us,
                one_worker_us: summary.baseline_wall_us,
            });
        }
    }
    Ok(points)
}

/// Run `spec` to the end and fold its events, as the page would.
pub async fn measure(
    engine: &Arc<Engine>,
    spec: RunSpec,
    shutdown: &Stop,
) -> Result<LabState, CalibrationError> {
    let model = spec.model.name();
    let (events, mut received) = mpsc::unbounded_channel();
    let (handle, run) = engine
        .prepare(&Learner::new("calibration"), 0, spec, events)
        .await
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
        Ok(s) if s.outcome == Outcome::Completed => {
            // The folded events hold it already; the run's own word wins.
            lab.summary = Some(s);
            Ok(lab)
        }
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

fn speedup(who: &Who, lab: &LabState, job: &str) -> Figure {
    match lab
        .summary
        .as_ref()
        .and_then(|s| Some((s.speedup?, s.baseline_wall_us?)))
    {
        Some((speedup, one)) => Figure::measured(
            speedup,
            Unit::Ratio,
            format!(
                "{}: {job} on one worker ({}) against {WORKERS}",
                who.name(),
                format_us(one)
            ),
        ),
        None => Figure::none(Unit::Ratio, "the run measured no one-worker baseline"),
    }
}

fn main_figures(who: &Who, main: &LabState, hello_alone: &LabState, job: &str) -> ModelFigures {
    let lag = main
        .summary
        .as_ref()
        .and_then(|s| s.main_loop_lag_us)
        .map_or(String::new(), |us| {
            format!("; the loop's heartbeat waited {}", format_us(us))
        });
    ModelFigures {
        model: ModelKind::MainThread,
        runtime: who.runtime,
        start: Figure::none(
            Unit::Micros,
            "nothing to start: the loop is already running",
        ),
        round_trip: Figure::none(Unit::Nanos, "no second party to send a message to"),
        memory: Figure::none(Unit::Bytes, "no worker to add"),
        job_wall: match wall(main) {
            Some(us) => Figure::measured(
                us,
                Unit::Micros,
                format!("{}: {job} on the event loop{lag}", who.name()),
            ),
            None => Figure::none(Unit::Micros, "the run reported no time"),
        },
        speedup: Figure::none(
            Unit::Ratio,
            "one loop uses one core: there is nothing to divide",
        ),
        hello_rps: rps(
            who,
            hello_alone,
            who.pick(
                "a cluster of one worker: its primary still accepts every connection and hands it \
                 over, so a plain server without cluster skips one step",
                "the engine's HTTP worker serving alone behind its primary (a cluster of one)",
            ),
        ),
    }
}

fn thread_figures(who: &Who, lab: &LabState, direct: &Direct, job: &str) -> ModelFigures {
    let pct = |v: &[f64], p: f64| nearest_rank(v, p).unwrap_or_default();
    let started = who.pick("new Worker()", "std::thread::spawn");
    let channel = who.pick(
        "postMessage to one Worker and back (a structured clone each way)",
        "a pair of std::sync::mpsc channels",
    );
    ModelFigures {
        model: ModelKind::Threads,
        runtime: who.runtime,
        // The run's two workers are too few for a steady median (a new
        // thread may wait for a core), so threads are started alone here.
        start: if direct.starts_ns.is_empty() {
            Figure::none(Unit::Micros, "no thread could be started")
        } else {
            Figure::measured(
                pct(&direct.starts_ns, 50.0) / 1_000.0,
                Unit::Micros,
                format!(
                    "{}: {started} to the thread's first message; median of {} started one \
                     after another",
                    who.name(),
                    direct.starts_ns.len()
                ),
            )
        },
        round_trip: if direct.trips_ns.is_empty() {
            Figure::none(Unit::Nanos, "the ping-pong did not run")
        } else {
            Figure::measured(
                pct(&direct.trips_ns, 50.0),
                Unit::Nanos,
                format!(
                    "{}: median of {} small messages over {channel}",
                    who.name(),
                    direct.trips_ns.len()
                ),
            )
        },
        memory: match direct.bytes {
            Some(b) => Figure::measured(
                b,
                Unit::Bytes,
                format!(
                    "{}: growth of the process's anonymous resident memory with \
                     {WEIGHED_THREADS} idle {}, divided by {WEIGHED_THREADS}{}",
                    who.name(),
                    who.pick("Workers", "threads"),
                    who.pick(
                        ": each Worker brings its own V8 heap",
                        ": the heap is shared, so this is mostly stack in use"
                    )
                ),
            ),
            None => Figure::none(Unit::Bytes, "/proc/self/status could not be read"),
        },
        job_wall: job_wall(who, lab, job, who.pick("Workers", "threads")),
        speedup: speedup(who, lab, job),
        hello_rps: Figure::none(
            Unit::PerSecond,
            "threads compute; in Node.js a Worker cannot be handed the server's connections",
        ),
    }
}

fn child_figures(who: &Who, lab: &LabState, job: &str) -> ModelFigures {
    let trip = median(
        lab.workers
            .iter()
            .filter_map(|w| w.round_trip_ns.map(|(p50, _)| p50))
            .collect(),
    );
    ModelFigures {
        model: ModelKind::ChildProcess,
        runtime: who.runtime,
        start: start(
            who,
            lab,
            who.pick(
                "fork() to the child's first message on its IPC channel",
                "spawning the server's own binary to its first message on stdout",
            ),
        ),
        round_trip: match trip {
            Some(ns) => Figure::measured(
                ns as f64,
                Unit::Nanos,
                format!(
                    "{}: median of {CHILD_ROUND_TRIPS} ping-pongs over {}",
                    who.name(),
                    who.pick(
                        "each child's IPC channel (JSON)",
                        "each child's stdio pipes (JSON lines)"
                    )
                ),
            ),
            None => Figure::none(Unit::Nanos, "the children reported no round trips"),
        },
        memory: memory(who, lab, "child"),
        job_wall: job_wall(who, lab, job, "child processes"),
        speedup: speedup(who, lab, job),
        hello_rps: Figure::none(
            Unit::PerSecond,
            "a plain child serves nothing; handed a server socket, it is what cluster does",
        ),
    }
}

fn cluster_figures(
    who: &Who,
    hello: &LabState,
    cpu_alone: &LabState,
    cpu: &LabState,
) -> ModelFigures {
    let rps_of = |lab: &LabState| lab.load.as_ref().map(|l| l.rps);
    ModelFigures {
        model: ModelKind::Cluster,
        runtime: who.runtime,
        start: start(
            who,
            hello,
            who.pick(
                "cluster.fork() to that worker's 'listening' event",
                "the primary spawning a worker to that worker listening",
            ),
        ),
        // A cluster's requests are HTTP exchanges, not IPC messages: their
        // latency is in the lab, not in this row.
        round_trip: Figure::none(
            Unit::Nanos,
            "clients reach a cluster over HTTP, not IPC: see request latency in its lab",
        ),
        memory: memory(who, hello, "worker"),
        job_wall: Figure::none(
            Unit::Micros,
            "a cluster serves requests rather than running one job: see its speedup",
        ),
        speedup: match (rps_of(cpu_alone), rps_of(cpu)) {
            (Some(one), Some(two)) if one > 0.0 => Figure::measured(
                two / one,
                Unit::Ratio,
                format!(
                    "{}: requests per second with {WORKERS} workers against 1, each request \
                     burning {CPU_MS} ms of CPU ({} requests, {CPU_CONCURRENCY} in flight; the \
                     load generator shares the cores)",
                    who.name(),
                    format_count(CPU_REQUESTS.into())
                ),
            ),
            _ => Figure::none(Unit::Ratio, "the load generator reported nothing"),
        },
        hello_rps: rps(
            who,
            hello,
            &format!("{WORKERS} workers, the primary handing out connections round robin"),
        ),
    }
}

fn start(who: &Who, lab: &LabState, how: &str) -> Figure {
    match median_start(lab) {
        Some(us) => Figure::measured(
            us,
            Unit::Micros,
            format!(
                "{}: {how}; median of {} workers",
                who.name(),
                lab.workers.len()
            ),
        ),
        None => Figure::none(Unit::Micros, "no worker reported its start"),
    }
}

fn job_wall(who: &Who, lab: &LabState, job: &str, on: &str) -> Figure {
    match wall(lab) {
        Some(us) => Figure::measured(
            us,
            Unit::Micros,
            format!("{}: {job} on {WORKERS} {on}", who.name()),
        ),
        None => Figure::none(Unit::Micros, "the run reported no time"),
    }
}

/// The median worker's private memory, with its whole resident size.
fn memory(who: &Who, lab: &LabState, what: &str) -> Figure {
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
                "{}: the {what}'s anonymous resident memory at the end of its work; {} \
                 resident in all, counting the binary it shares",
                who.name(),
                format_bytes(rss)
            ),
        ),
        _ => Figure::none(Unit::Bytes, format!("no {what} reported its memory")),
    }
}

fn rps(who: &Who, lab: &LabState, how: &str) -> Figure {
    match &lab.load {
        Some(load) => Figure::measured(
            load.rps,
            Unit::PerSecond,
            format!(
                "{}: {how}; {} hello requests, {HELLO_CONCURRENCY} in flight, keep-alive, over \
                 loopback from the engine's load generator on the same cores",
                who.name(),
                format_count(load.requests)
            ),
        ),
        None => Figure::none(Unit::PerSecond, "the load generator reported nothing"),
    }
}
