//! `spawnlab bench`: Node.js and the Rust engine measured side by side, in
//! one run, interleaved (Node, then Rust, figure by figure), each figure
//! from many samples, with the ratio between them.
//!
//! Where a Node.js figure comes from a lab run (the engine running our
//! scripts), the same thing is also measured by a plain Node script
//! (`server/node/bench.js`) in the same invocation, and the table shows the
//! two side by side: the labs must not distort what they teach.
//!
//! Figures from two hosts of the same class differ by up to 2× (see
//! `BENCHMARKS.md`): compare the ratios of one run, not absolute times
//! across runs.

use super::terminal_engine;
use crate::calibrate::{measure as run_to_end, probes};
use crate::engine::{Engine, Limits, Stop};
use clap::Args;
use protocol::compare::show_value;
use protocol::format::{format_bytes, format_count, host_line, nearest_rank};
use protocol::lab::LabState;
use protocol::{
    ModelSpec, RunSpec, Runtime, SchedPolicy, Serialization, Sharing, ThreadStrategy, Unit,
    Workload,
};
use serde::Serialize;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Measure Node.js and the Rust engine side by side.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A short, bounded pass (fewer samples, smaller jobs): what `make test`
    /// runs. The full pass takes a few minutes.
    #[arg(long)]
    pub quick: bool,
    /// Print every figure and its raw samples as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// How many samples and how large the jobs are.
#[derive(Debug, Clone, Copy, Serialize)]
struct Sizes {
    /// The short pass (`--quick`).
    quick: bool,
    starts: usize,
    round_trips: usize,
    payload_trips: usize,
    payload_bytes: usize,
    idle_workers: usize,
    primes_below: u64,
    requests: u32,
    requests_close: u32,
    concurrency: u32,
    blocked_below: u64,
    /// Runs of each speedup and throughput figure, Node.js and Rust in turn.
    repeat: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                quick,
                starts: 5,
                round_trips: 200,
                payload_trips: 5,
                payload_bytes: 1 << 20,
                idle_workers: 4,
                primes_below: 1_000_000,
                requests: 1_000,
                requests_close: 300,
                concurrency: 16,
                blocked_below: 1_000_000,
                repeat: 1,
            }
        } else {
            Sizes {
                quick,
                starts: 20,
                round_trips: 1_000,
                payload_trips: 20,
                payload_bytes: 1 << 20,
                idle_workers: 16,
                primes_below: 5_000_000,
                requests: 10_000,
                requests_close: 3_000,
                concurrency: 32,
                blocked_below: 5_000_000,
                repeat: 3,
            }
        }
    }
}

/// One figure on one runtime: how it was taken, its unit, its samples.
#[derive(Debug, Clone, Serialize)]
struct Series {
    /// `lab` (our scripts, through the engine) or `plain` (bench.js, or a
    /// Rust probe).
    source: &'static str,
    how: String,
    unit: Unit,
    samples: Vec<f64>,
}

impl Series {
    fn new(source: &'static str, how: impl Into<String>, unit: Unit, samples: Vec<f64>) -> Self {
        let mut samples = samples;
        samples.sort_by(f64::total_cmp);
        Series {
            source,
            how: how.into(),
            unit,
            samples,
        }
    }

    /// The `p`-th percentile by the nearest-rank method.
    fn pct(&self, p: f64) -> Option<f64> {
        nearest_rank(&self.samples, p)
    }

    fn show(&self, v: f64) -> String {
        show_value(v, self.unit)
    }

    /// "p50 / p99", or just the value for a single sample.
    fn cell(&self) -> String {
        match (self.pct(50.0), self.pct(99.0)) {
            (Some(p50), Some(p99)) if self.samples.len() > 1 => {
                format!("{} / {}", self.show(p50), self.show(p99))
            }
            (Some(p50), _) => self.show(p50),
            _ => "—".into(),
        }
    }
}

/// One row: the same thing on Node.js (from a lab, from plain Node, or
/// both) and on the Rust engine.
#[derive(Debug, Clone, Serialize)]
struct Row {
    what: String,
    node_lab: Option<Series>,
    node_plain: Option<Series>,
    rust: Option<Series>,
}

impl Row {
    /// The Node.js figure the row compares with Rust: the lab's, else the
    /// plain script's.
    fn node(&self) -> Option<&Series> {
        self.node_lab.as_ref().or(self.node_plain.as_ref())
    }

    /// Lab over plain, when both exist (should be near 1).
    fn lab_over_plain(&self) -> Option<f64> {
        Some(self.node_lab.as_ref()?.pct(50.0)? / self.node_plain.as_ref()?.pct(50.0)?)
    }
}

/// Everything one bench run measured.
#[derive(Debug, Serialize)]
struct Report {
    host: Option<protocol::HostInfo>,
    node_version: Option<String>,
    sizes: Sizes,
    rows: Vec<Row>,
}

/// Run the whole bench and print its table (or its JSON).
pub async fn bench(args: BenchArgs, list_dir: PathBuf) -> ExitCode {
    let engine = terminal_engine(Limits::default(), list_dir);
    let node = engine.node().await.info.clone();
    if !node.available {
        eprintln!("error: {}", node.note);
        return ExitCode::FAILURE;
    }
    let sizes = Sizes::new(args.quick);
    let mut bench = Bench {
        engine: engine.clone(),
        stop: Stop::new(),
        progress: !args.json && std::io::stderr().is_terminal(),
        steps: 0,
        host: None,
    };
    let rows = match bench.all(sizes).await {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("\nerror: {e}");
            return ExitCode::FAILURE;
        }
    };
    if bench.progress {
        eprint!("\r{:70}\r", "");
    }
    let report = Report {
        host: bench.host,
        node_version: node.version,
        sizes,
        rows,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("reports serialize")
        );
    } else {
        print!("{}", table(&report));
    }
    ExitCode::SUCCESS
}

/// What the whole run shares.
struct Bench {
    engine: Arc<Engine>,
    stop: Stop,
    progress: bool,
    steps: usize,
    host: Option<protocol::HostInfo>,
}

type Result<T> = std::result::Result<T, String>;

impl Bench {
    /// Say on the terminal which measurement runs now, and how many ran.
    fn step(&mut self, what: &str) {
        self.steps += 1;
        if self.progress {
            eprint!("\r[step {:>3}] {what:<50}", self.steps);
            let _ = std::io::stderr().flush();
        }
    }

    /// A plain Node.js measurement.
    async fn plain(&mut self, request: serde_json::Value) -> Result<Vec<f64>> {
        self.step(request["measure"].as_str().unwrap_or("node"));
        self.engine
            .node_measure(&request)
            .await
            .map(|m| m.samples)
            .map_err(|e| e.message())
    }

    /// A lab run to its end, folded as the page folds it.
    async fn lab(&mut self, spec: RunSpec) -> Result<LabState> {
        self.step(&format!("{} {}", spec.runtime.name(), spec.model.name()));
        let lab = run_to_end(&self.engine, spec, &self.stop)
            .await
            .map_err(|e| e.to_string())?;
        if self.host.is_none() {
            self.host = lab.host.clone();
        }
        Ok(lab)
    }

    /// A Rust probe, on a blocking thread.
    async fn probe<T: Send + 'static>(
        &mut self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.step(what);
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| e.to_string())
    }

    async fn all(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        rows.push(self.worker_start(z).await?);
        rows.push(self.fork_start(z).await?);
        rows.extend(self.program_runs(z).await?);
        rows.push(self.thread_round_trip(z).await?);
        rows.push(self.ipc_round_trip(z).await?);
        rows.extend(self.payloads(z).await?);
        rows.extend(self.idle_memory(z).await?);
        rows.extend(self.speedups(z).await?);
        rows.extend(self.cluster(z).await?);
        rows.push(self.blocked_loop(z).await?);
        Ok(rows)
    }

    /// Start cost of a thread: `new Worker()` in a lab run of one Worker,
    /// repeated; the same by plain Node; `std::thread::spawn`.
    async fn worker_start(&mut self, z: Sizes) -> Result<Row> {
        let mut lab = Vec::new();
        for _ in 0..z.starts {
            let run = self.lab(threads(Runtime::Node, 1, 1_000)).await?;
            lab.extend(starts_ns(&run));
        }
        // The lab times the first Worker of a freshly started node; so does
        // the plain script, one process per sample.
        let mut plain = Vec::new();
        for _ in 0..z.starts {
            plain.extend(
                self.plain(json!({"measure": "worker_start", "count": 1}))
                    .await?,
            );
        }
        let rust = self
            .probe("thread start", move || probes::start_latencies(z.starts))
            .await?;
        Ok(Row {
            what: "Start: a thread to its first message".into(),
            node_lab: Some(Series::new(
                "lab",
                "worker_threads.js: new Worker() → first message, one per run",
                Unit::Nanos,
                lab,
            )),
            node_plain: Some(Series::new(
                "plain",
                "bench.js: new Worker() → first message, the first Worker of a fresh node, one node per sample",
                Unit::Nanos,
                plain,
            )),
            rust: Some(Series::new(
                "plain",
                "std::thread::spawn → first message, one after another",
                Unit::Nanos,
                durations(rust),
            )),
        })
    }

    /// Start cost of a process: `fork()` / re-executing spawnlab.
    async fn fork_start(&mut self, z: Sizes) -> Result<Row> {
        let (mut lab, mut rust) = (Vec::new(), Vec::new());
        for _ in 0..z.starts {
            lab.extend(starts_ns(
                &self.lab(children(Runtime::Node, 1, 0, 1_000)).await?,
            ));
            rust.extend(starts_ns(
                &self.lab(children(Runtime::Rust, 1, 0, 1_000)).await?,
            ));
        }
        let mut plain = Vec::new();
        for _ in 0..z.starts {
            plain.extend(
                self.plain(json!({"measure": "fork_start", "count": 1}))
                    .await?,
            );
        }
        Ok(Row {
            what: "Start: a child process to its first message".into(),
            node_lab: Some(Series::new(
                "lab",
                "child_process.js: fork() → 'ready' on the IPC channel, one per run",
                Unit::Nanos,
                lab,
            )),
            node_plain: Some(Series::new(
                "plain",
                "bench.js: fork() → first message, the first child of a fresh node, one node per sample",
                Unit::Nanos,
                plain,
            )),
            rust: Some(Series::new(
                "lab",
                "re-executing spawnlab → \"ready\" on stdout, one per run",
                Unit::Nanos,
                rust,
            )),
        })
    }

    /// A short program (`true`) run to its exit, directly and through a
    /// shell: what `execFile` and `exec` cost before the program does
    /// anything, against `std::process::Command`.
    async fn program_runs(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (measure, what, node_how, argv, rust_how) in [
            (
                "exec_file",
                "Run a program to its exit: true, no shell",
                "bench.js: execFile('true') → its callback, one after another",
                &["true"][..],
                "Command::new(\"true\").output(), one after another",
            ),
            (
                "exec_shell",
                "Run a program to its exit: true, through /bin/sh",
                "bench.js: exec('true') (/bin/sh -c) → its callback, one after another",
                &["sh", "-c", "true"][..],
                "Command::new(\"sh\").args([\"-c\", \"true\"]).output(), one after another",
            ),
        ] {
            let plain = self
                .plain(json!({"measure": measure, "count": z.starts}))
                .await?;
            let argv: Vec<&'static str> = argv.to_vec();
            let rust = self
                .probe(what, move || probes::program_runs(&argv, z.starts))
                .await?
                .map_err(|e| e.to_string())?;
            rows.push(Row {
                what: what.into(),
                node_lab: None,
                node_plain: Some(Series::new("plain", node_how, Unit::Nanos, plain)),
                rust: Some(Series::new("plain", rust_how, Unit::Nanos, durations(rust))),
            });
        }
        Ok(rows)
    }

    /// A small message between two threads and back.
    async fn thread_round_trip(&mut self, z: Sizes) -> Result<Row> {
        let plain = self
            .plain(json!({"measure": "thread_round_trip", "count": z.round_trips}))
            .await?;
        let rust = self
            .probe("thread round trip", move || {
                probes::round_trips(z.round_trips)
            })
            .await?;
        Ok(Row {
            what: "Round trip: a small message between threads".into(),
            node_lab: None,
            node_plain: Some(Series::new(
                "plain",
                "bench.js: postMessage to a Worker and back",
                Unit::Nanos,
                plain,
            )),
            rust: Some(Series::new(
                "plain",
                "a pair of std::sync::mpsc channels",
                Unit::Nanos,
                durations(rust),
            )),
        })
    }

    /// A small message to a child process and back.
    async fn ipc_round_trip(&mut self, z: Sizes) -> Result<Row> {
        let trips = z.round_trips as u32;
        let node = self.lab(children(Runtime::Node, 1, trips, 1_000)).await?;
        let plain = self
            .plain(json!({"measure": "ipc_round_trip", "count": z.round_trips}))
            .await?;
        let rust = self.lab(children(Runtime::Rust, 1, trips, 1_000)).await?;
        let p50 = |lab: &LabState| {
            lab.workers
                .iter()
                .filter_map(|w| w.round_trip_ns)
                .map(|(p50, _)| p50 as f64)
                .collect::<Vec<_>>()
        };
        let (node_p50, rust_p50) = (p50(&node), p50(&rust));
        Ok(Row {
            what: "Round trip: a small message to a child process (median)".into(),
            node_lab: Some(Series::new(
                "lab",
                format!("child_process.js: {trips} ping-pongs over fork()'s IPC channel (JSON)"),
                Unit::Nanos,
                node_p50,
            )),
            node_plain: Some(Series::new(
                "plain",
                "bench.js: process.send to a forked child and back (JSON); p50 / p99",
                Unit::Nanos,
                plain,
            )),
            rust: Some(Series::new(
                "lab",
                format!("{trips} JSON-line ping-pongs over the child's stdio"),
                Unit::Nanos,
                rust_p50,
            )),
        })
    }

    /// A 1 MiB payload there and back, by each way the runtimes move bulk data.
    async fn payloads(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let size = format_bytes(z.payload_bytes as u64);
        let modes = [
            (
                "clone",
                Some(probes::Payload::Copy),
                "copied each way (structured clone / Vec clone)",
            ),
            (
                "transfer",
                Some(probes::Payload::Move),
                "moved, not copied (transfer list / Vec moved)",
            ),
            (
                "shared",
                Some(probes::Payload::Shared),
                "shared memory: a handle crosses (SharedArrayBuffer / Arc)",
            ),
            (
                "ipc_json",
                Some(probes::Payload::Pipe),
                "to a child process: fork() JSON / a pipe to cat",
            ),
            (
                "ipc_advanced",
                None,
                "to a child process: serialization 'advanced'",
            ),
        ];
        let mut rows = Vec::new();
        for (mode, rust_way, what) in modes {
            let plain = self
                .plain(json!({"measure": "payload", "mode": mode, "bytes": z.payload_bytes, "count": z.payload_trips}))
                .await?;
            let rust = match rust_way {
                Some(way) => {
                    let (bytes, trips) = (z.payload_bytes, z.payload_trips);
                    let samples = self
                        .probe("payload", move || {
                            probes::payload_round_trips(way, bytes, trips)
                        })
                        .await?
                        .map_err(|e| e.to_string())?;
                    Some(Series::new(
                        "plain",
                        format!("{size} {what}"),
                        Unit::Nanos,
                        durations(samples),
                    ))
                }
                None => None,
            };
            rows.push(Row {
                what: format!("{size} there and back, {what}"),
                node_lab: None,
                node_plain: Some(Series::new(
                    "plain",
                    format!("bench.js payload {mode}"),
                    Unit::Nanos,
                    plain,
                )),
                rust,
            });
        }
        Ok(rows)
    }

    /// What one more idle worker holds in memory.
    async fn idle_memory(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let n = z.idle_workers;
        let worker = self
            .plain(json!({"measure": "worker_memory", "count": n}))
            .await?;
        let rust_thread = self
            .probe("thread memory", move || {
                probes::resident_bytes_per_thread(n)
            })
            .await?;
        let fork = self
            .plain(json!({"measure": "fork_memory", "count": n.min(8)}))
            .await?;
        let node_child = self.lab(children(Runtime::Node, 2, 0, 1_000)).await?;
        let rust_child = self.lab(children(Runtime::Rust, 2, 0, 1_000)).await?;
        let anon = |lab: &LabState| {
            lab.workers
                .iter()
                .filter_map(|w| w.memory.map(|m| m.anon_bytes as f64))
                .collect::<Vec<_>>()
        };
        Ok(vec![
            Row {
                what: "Memory: one more idle thread".into(),
                node_lab: None,
                node_plain: Some(Series::new(
                    "plain",
                    format!("bench.js: anonymous memory growth with {n} idle Workers, per Worker"),
                    Unit::Bytes,
                    worker,
                )),
                rust: Some(Series::new(
                    "plain",
                    format!("anonymous memory growth with {n} idle threads, per thread"),
                    Unit::Bytes,
                    rust_thread.map(|b| vec![b as f64]).unwrap_or_default(),
                )),
            },
            Row {
                what: "Memory: one child process (anonymous resident)".into(),
                node_lab: Some(Series::new(
                    "lab",
                    "child_process.js: each forked child after a small job",
                    Unit::Bytes,
                    anon(&node_child),
                )),
                node_plain: Some(Series::new(
                    "plain",
                    "bench.js: each idle forked child",
                    Unit::Bytes,
                    fork,
                )),
                rust: Some(Series::new(
                    "lab",
                    "each re-executed child after a small job",
                    Unit::Bytes,
                    anon(&rust_child),
                )),
            },
        ])
    }

    /// Primes on 2 and 4 workers against 1, threads and processes.
    async fn speedups(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let below = z.primes_below;
        let mut rows = Vec::new();
        for (model, name) in [
            ("threads", "worker threads"),
            ("child_process", "child processes"),
        ] {
            for workers in [2, 4] {
                let spec = |runtime| match model {
                    "threads" => threads(runtime, workers, below),
                    _ => children(runtime, workers, 0, below),
                };
                let speedup = |lab: &LabState| lab.summary.as_ref().and_then(|s| s.speedup);
                let (mut node, mut rust) = (Vec::new(), Vec::new());
                for _ in 0..z.repeat {
                    node.extend(speedup(&self.lab(spec(Runtime::Node)).await?));
                    rust.extend(speedup(&self.lab(spec(Runtime::Rust)).await?));
                }
                rows.push(Row {
                    what: format!(
                        "Speedup: primes below {}, {workers} {name} against 1",
                        format_count(below)
                    ),
                    node_lab: Some(Series::new(
                        "lab",
                        "one worker's wall time over the run's, both measured",
                        Unit::Ratio,
                        node,
                    )),
                    node_plain: None,
                    rust: Some(Series::new(
                        "lab",
                        "one worker's wall time over the run's, both measured",
                        Unit::Ratio,
                        rust,
                    )),
                });
            }
        }
        Ok(rows)
    }

    /// Hello over HTTP per policy, 1 and 2 workers, keep-alive and not.
    async fn cluster(&mut self, z: Sizes) -> Result<Vec<Row>> {
        let node = self.engine.node().await.info.clone();
        let mut rows = Vec::new();
        for policy in SchedPolicy::ALL {
            let node_has = !node.missing.iter().any(|m| m.feature == policy.name());
            for keep_alive in [true, false] {
                for workers in [1, 2] {
                    let requests = if keep_alive {
                        z.requests
                    } else {
                        z.requests_close
                    };
                    let spec = |runtime| RunSpec {
                        runtime,
                        model: ModelSpec::Cluster {
                            policy,
                            requests,
                            concurrency: z.concurrency,
                            keep_alive,
                            kill: None,
                        },
                        workload: Workload::HttpHello,
                        workers,
                    };
                    let rps = |lab: &LabState| lab.load.iter().map(|l| l.rps).collect::<Vec<_>>();
                    // Node.js and Rust in turn, `repeat` times each.
                    let (mut node, mut rust) = (Vec::new(), Vec::new());
                    for _ in 0..z.repeat {
                        if node_has {
                            node.extend(rps(&self.lab(spec(Runtime::Node)).await?));
                        }
                        rust.extend(rps(&self.lab(spec(Runtime::Rust)).await?));
                    }
                    let node_rps = node_has.then(|| {
                        Series::new(
                            "lab",
                            "cluster.js: http.createServer in each worker",
                            Unit::PerSecond,
                            node,
                        )
                    });
                    rows.push(Row {
                        what: format!(
                            "Hello over HTTP: {}, {workers} worker{}, {}",
                            policy.short(),
                            if workers == 1 { "" } else { "s" },
                            if keep_alive {
                                "keep-alive"
                            } else {
                                "Connection: close"
                            }
                        ),
                        node_lab: node_rps,
                        node_plain: None,
                        rust: Some(Series::new(
                            "lab",
                            "the engine's hyper workers",
                            Unit::PerSecond,
                            rust,
                        )),
                    });
                }
            }
        }
        Ok(rows)
    }

    /// A `/ping` sent from outside while the loop runs a CPU-bound job.
    async fn blocked_loop(&mut self, z: Sizes) -> Result<Row> {
        let spec = |runtime| RunSpec {
            runtime,
            model: ModelSpec::MainThread,
            workload: Workload::Primes {
                below: z.blocked_below,
            },
            workers: 1,
        };
        let answered = |lab: &LabState| {
            lab.pings
                .iter()
                .filter_map(|(_, l)| l.map(|us| us as f64 * 1_000.0))
                .collect::<Vec<_>>()
        };
        let node = self.lab(spec(Runtime::Node)).await?;
        let rust = self.lab(spec(Runtime::Rust)).await?;
        let how = format!(
            "a GET /ping every 50 ms while primes below {} run on the loop",
            format_count(z.blocked_below)
        );
        Ok(Row {
            what: "A request to a blocked event loop (/ping latency)".into(),
            node_lab: Some(Series::new(
                "lab",
                how.clone(),
                Unit::Nanos,
                answered(&node),
            )),
            node_plain: None,
            rust: Some(Series::new("lab", how, Unit::Nanos, answered(&rust))),
        })
    }
}

fn threads(runtime: Runtime, workers: u32, below: u64) -> RunSpec {
    RunSpec {
        runtime,
        model: ModelSpec::Threads {
            strategy: ThreadStrategy::Spawn,
            sharing: Sharing::Messages,
        },
        workload: Workload::Primes { below },
        workers,
    }
}

fn children(runtime: Runtime, workers: u32, round_trips: u32, below: u64) -> RunSpec {
    RunSpec {
        runtime,
        model: ModelSpec::ChildProcess {
            round_trips,
            serialization: Serialization::Json,
        },
        workload: Workload::Primes { below },
        workers,
    }
}

/// Every worker's start latency in a run, in ns.
fn starts_ns(lab: &LabState) -> Vec<f64> {
    lab.workers
        .iter()
        .filter_map(|w| w.start_latency_us)
        .map(|us| us as f64 * 1_000.0)
        .collect()
}

fn durations(samples: Vec<Duration>) -> Vec<f64> {
    samples.iter().map(|d| d.as_nanos() as f64).collect()
}

/// The table: each row's Node.js and Rust figures (p50 / p99), their ratio,
/// and the lab's Node.js figure against plain Node's.
fn table(report: &Report) -> String {
    let mut out = String::new();
    if let Some(host) = &report.host {
        out.push_str(&format!("host: {}\n", host_line(host)));
    }
    out.push_str(&format!(
        "Node.js {} · spawnlab {} · {}\n\n",
        report.node_version.as_deref().unwrap_or("?"),
        env!("CARGO_PKG_VERSION"),
        if report.sizes.quick {
            "quick pass"
        } else {
            "full pass"
        }
    ));
    out.push_str(&format!(
        "{:<62} {:>23} {:>23} {:>10} {:>12}\n",
        "figure (p50 / p99 where repeated)", "Node.js", "Rust engine", "Node/Rust", "lab/plain"
    ));
    for row in &report.rows {
        let node = row.node().map_or("—".into(), Series::cell);
        let rust = row.rust.as_ref().map_or("—".into(), Series::cell);
        let ratio = protocol::compare::ratio(
            row.node().and_then(|s| s.pct(50.0)),
            row.rust.as_ref().and_then(|s| s.pct(50.0)),
        );
        let check = row
            .lab_over_plain()
            .map_or("—".into(), |r| format!("{r:.2}"));
        out.push_str(&format!(
            "{:<62} {:>23} {:>23} {:>10} {:>12}\n",
            row.what, node, rust, ratio, check
        ));
    }
    out.push_str("\nhow each figure was taken:\n");
    for row in &report.rows {
        for (who, s) in [
            ("Node.js", row.node_lab.as_ref()),
            ("Node.js, plain", row.node_plain.as_ref()),
            ("Rust", row.rust.as_ref()),
        ] {
            if let Some(s) = s {
                out.push_str(&format!(
                    "  {} · {who} ({} samples): {}\n",
                    row.what,
                    s.samples.len(),
                    s.how
                ));
            }
        }
    }
    out.push_str(
        "\nlab/plain: the Node.js figure from our lab scripts over the same thing measured by a \
         plain Node script (bench.js) in this run; near 1 means the labs add nothing.\n",
    );
    out
}
