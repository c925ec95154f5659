//! The engine: really runs a learner's workload and streams what it measures.
//!
//! It knows nothing of axum or Leptos, and speaks only the `protocol`
//! crate. Whoever drives it — the WebSocket session, the CLI, the
//! calibration pass, a test — asks [`Engine::prepare`] for a run, gets a
//! [`RunHandle`] to stop it (or kill a cluster's worker) and a [`Run`] to
//! execute, and reads the run's [`ServerEvent`]s from its [`EventSink`].
//!
//! # Layout
//!
//! - [`catalogue`]: the computable workloads and how one is split between
//!   workers.
//! - [`limits`]: every bound a request must fit; validation turns a
//!   request into a [`Plan`] each model can run.
//! - [`admission`]: run slots, the worker budget and the waiting line.
//! - [`error`]: [`Refused`] (never ran) and [`RunError`] (ran and failed).
//! - [`pass`]: what models hand back, and the skeleton the threads and
//!   process models share (a pass, then the one-worker baseline).
//! - [`node`]: the Node.js runtime: `node` running our scripts under a
//!   guardian, every line checked against the protocol.
//! - [`main_thread`]: the work on an event loop with a heartbeat (and
//!   [`probe`], the `/ping` requests sent to it from outside).
//! - [`threads`]: the worker-threads model.
//! - [`process`]: the child-process model (and allow-listed programs), over
//!   the line-delimited channel in [`ipc`]; [`spawn`] starts every process
//!   in its run's process group, armed to die with the server.
//! - [`cluster`]: a primary and HTTP workers on one port, loaded by
//!   [`loadgen`].
//! - [`scaling`]: several clusters behind a real load balancer (nginx or
//!   HAProxy), with faults.
//! - [`report`]: what workers say, turned into the protocol's events.
//! - [`host`]: what machine the figures come from.
//! - [`measure`]: per-thread and per-process clocks and memory.

pub mod admission;
pub mod catalogue;
pub mod cluster;
pub mod error;
pub mod host;
pub mod ipc;
pub mod limits;
pub mod loadgen;
pub mod main_thread;
pub mod measure;
pub mod node;
pub mod pass;
pub mod probe;
pub mod process;
pub mod report;
pub mod scaling;
pub mod spawn;
pub mod threads;

pub use admission::Learner;
pub use error::{Refused, RunError};
pub use limits::Limits;
pub use pass::{ModelRun, Pass};

use catalogue::Compute;
use protocol::{
    Outcome, RunId, RunSpec, RunSummary, Runtime, RuntimeInfo, ServerEvent, WorkResult,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Where a run's events go. Unbounded because worker threads must never
/// block on a slow browser; each run sends a few hundred events at most.
pub type EventSink = mpsc::UnboundedSender<ServerEvent>;

/// Where a running cluster learns which worker to kill next (the learner's
/// "kill a worker" button).
pub type Faults = mpsc::UnboundedReceiver<u32>;

/// Why a run was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The learner pressed Cancel (or the CLI got Ctrl-C).
    Cancelled,
    /// The learner's connection went away.
    Disconnected,
    /// The run outlived its wall-clock deadline.
    Deadline,
    /// The server is shutting down.
    Shutdown,
}

impl StopReason {
    /// How a run stopped for this reason ends.
    pub fn outcome(self) -> Outcome {
        match self {
            StopReason::Deadline => Outcome::DeadlineExceeded,
            _ => Outcome::Cancelled,
        }
    }
}

/// A stop request shared by everything working on one run. Cheap to clone;
/// the first reason given wins. Worker threads poll [`Stop::is_requested`]
/// between steps; async code awaits [`Stop::requested`].
#[derive(Debug, Clone)]
pub struct Stop(Arc<watch::Sender<Option<StopReason>>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(Arc::new(watch::channel(None).0))
    }
}

impl Stop {
    /// A stop nobody has requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask everything on this run to stop, unless it was already asked.
    pub fn request(&self, reason: StopReason) {
        self.0.send_if_modified(|r| {
            let first = r.is_none();
            if first {
                *r = Some(reason);
            }
            first
        });
    }

    /// The reason, once a stop has been requested.
    pub fn reason(&self) -> Option<StopReason> {
        *self.0.borrow()
    }

    /// True once a stop has been requested.
    pub fn is_requested(&self) -> bool {
        self.reason().is_some()
    }

    /// Wait until a stop is requested.
    pub async fn requested(&self) -> StopReason {
        let mut rx = self.0.subscribe();
        let reason = rx.wait_for(Option::is_some).await;
        // The sender lives in `self`, so the channel cannot close under us.
        reason
            .map(|r| r.expect("waited for Some"))
            .unwrap_or(StopReason::Shutdown)
    }

    fn outcome(&self) -> Option<Outcome> {
        self.reason().map(StopReason::outcome)
    }
}

/// A request the limits accepted, in the shape its model runs: only what
/// that model can run fits in it, so no model meets a workload it cannot
/// handle.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The work on the run's own event loop.
    MainThread { work: MainWork },
    /// The work shared out over threads.
    Threads {
        work: Compute,
        workers: u32,
        style: threads::Style,
    },
    /// The work shared out over child processes, or a program run by each.
    ChildProcess {
        job: process::ChildJob,
        workers: u32,
        round_trips: u32,
    },
    /// A cluster under the engine's load.
    Cluster(cluster::Plan),
    /// Several clusters behind a load balancer, under the engine's load.
    Scaling(scaling::Plan),
}

/// What a main-thread run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainWork {
    /// Work on the loop itself, which blocks it (or, for `sleep`, does not).
    Compute(Compute),
    /// Asynchronous hashes handed to libuv's thread pool of `pool_threads`
    /// threads while the loop stays free. Only Node.js has that pool; the
    /// limits refuse it on the Rust engine.
    PoolHash { calls: u32, pool_threads: u32 },
}

/// Memory, in MiB, that one of each kind of worker holds, rounded up from
/// what was measured on the 2-core VM the site was built on (`../FACTS`,
/// and the compare page's own figures): a Node.js process is ~42 MiB
/// resident, a Worker adds ~8–10 MiB, a Rust child ~9 MiB and a thread ~0.
const NODE_PROCESS_MIB: u32 = 48;
const NODE_WORKER_MIB: u32 = 12;
const RUST_PROCESS_MIB: u32 = 10;
const RUST_THREAD_MIB: u32 = 1;
const PROGRAM_MIB: u32 = 4;
/// A balancer (nginx's master and one worker, or HAProxy), counted as two
/// processes of ~8 MiB.
const BALANCER_PROCESSES: u32 = 2;
const BALANCER_MIB: u32 = 16;

impl Plan {
    /// Workers the plan has (the main thread's one loop counts as one).
    pub fn workers(&self) -> u32 {
        match self {
            Plan::MainThread { .. } => 1,
            Plan::Threads { workers, .. } | Plan::ChildProcess { workers, .. } => *workers,
            Plan::Cluster(plan) => plan.workers,
            Plan::Scaling(plan) => plan.instances * plan.workers,
        }
    }

    /// What the run takes from the admission budgets on `runtime`: threads
    /// and processes alive at once (a cluster's primary, and Node's own
    /// process, count too) and the memory they hold.
    pub fn weight(&self, runtime: Runtime) -> admission::Weight {
        let n = self.workers();
        let (workers, memory_mib) = match (runtime, self) {
            (Runtime::Rust, Plan::MainThread { .. }) => (1, RUST_THREAD_MIB),
            (Runtime::Rust, Plan::Threads { .. }) => (n, n * RUST_THREAD_MIB),
            (Runtime::Rust, Plan::ChildProcess { job, .. }) => {
                (n, n * per_child(*job, RUST_PROCESS_MIB))
            }
            (Runtime::Rust, Plan::Cluster(_)) => (n + 1, (n + 1) * RUST_PROCESS_MIB),
            (Runtime::Node, Plan::MainThread { .. }) => (1, NODE_PROCESS_MIB),
            (Runtime::Node, Plan::Threads { .. }) => {
                (n + 1, NODE_PROCESS_MIB + n * NODE_WORKER_MIB)
            }
            (Runtime::Node, Plan::ChildProcess { job, .. }) => (
                n + 1,
                NODE_PROCESS_MIB + n * per_child(*job, NODE_PROCESS_MIB),
            ),
            (Runtime::Node, Plan::Cluster(_)) => (n + 1, (n + 1) * NODE_PROCESS_MIB),
            // Every instance is a primary and its workers; the balancer too.
            (runtime, Plan::Scaling(plan)) => {
                let processes = plan.instances * (plan.workers + 1);
                let each = match runtime {
                    Runtime::Rust => RUST_PROCESS_MIB,
                    Runtime::Node => NODE_PROCESS_MIB,
                };
                (
                    processes + BALANCER_PROCESSES,
                    processes * each + BALANCER_MIB,
                )
            }
        };
        admission::Weight {
            workers,
            memory_mib,
        }
    }
}

/// A child's memory: a runtime of its own, or a small program.
fn per_child(job: process::ChildJob, runtime_mib: u32) -> u32 {
    match job {
        process::ChildJob::Compute(_) => runtime_mib,
        process::ChildJob::Program(_) => PROGRAM_MIB,
    }
}

/// How much the engine runs at once, and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Runs executing at once.
    pub max_runs: u32,
    /// Threads and processes alive across all runs.
    pub max_live_workers: u32,
    /// Memory the runs may hold together, in MiB (estimated per worker).
    pub max_memory_mib: u32,
    /// Runs waiting for a place; beyond this, requests are refused.
    pub max_queue: u32,
}

/// Test builds only: where a run panics on purpose, to prove that a panic
/// fails that run and nothing else. The setter exists only with the
/// `fault-injection` feature, which only the test crate enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicAt {
    /// Inside each worker thread's work (threads model).
    Worker,
    /// In the run's own task, after admission.
    Run,
}

/// Runs requests within the configured limits.
#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    /// Run slots, the worker budget and the waiting line.
    admission: admission::Admission,
    /// The worker binary and the directory `list_public` lists.
    paths: process::Paths,
    /// The `node` to run, and where the scripts are written.
    node_binary: PathBuf,
    /// What that Node.js is: found on first need, then kept.
    node: tokio::sync::OnceCell<node::NodeSetup>,
    /// The load balancers this server has: found on first need, then kept.
    balancers: tokio::sync::OnceCell<Vec<scaling::balancer::Found>>,
    /// Where a test build panics on purpose; always `None` otherwise.
    panic_at: Option<PanicAt>,
    /// Set when the server drains before it stops: no new runs.
    closed: std::sync::atomic::AtomicBool,
}

/// Control over one run: stop it, kill one of its cluster's workers, or
/// break part of a scaling run.
#[derive(Debug, Clone)]
pub struct RunHandle {
    stop: Stop,
    /// A cluster run's kill requests, and how many workers it has.
    kills: Option<(mpsc::UnboundedSender<u32>, u32)>,
    /// A scaling run's faults, and how many instances and workers it has.
    faults: Option<(mpsc::UnboundedSender<protocol::Fault>, u32, u32)>,
}

impl RunHandle {
    /// Ask the run to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        self.stop.request(reason);
    }

    /// Wait until the run is asked to stop; why.
    pub async fn stopped(&self) -> StopReason {
        self.stop.requested().await
    }

    /// Kill worker `worker` of this cluster run now, as a crash would.
    pub fn kill(&self, id: RunId, worker: u32) -> Result<(), Refused> {
        match &self.kills {
            Some((kills, workers)) if worker < *workers => {
                // A run that has finished its load has dropped the receiver:
                // nothing is left to kill, and that is not the learner's error.
                let _ = kills.send(worker);
                Ok(())
            }
            Some((_, workers)) => Err(Refused::NoSuchWorker {
                worker,
                last: workers - 1,
            }),
            None => Err(Refused::NotCluster(id)),
        }
    }

    /// Break (or mend) part of this scaling run now.
    pub fn fault(&self, id: RunId, fault: protocol::Fault) -> Result<(), Refused> {
        let Some((faults, instances, workers)) = &self.faults else {
            return Err(Refused::NotScaling(id));
        };
        limits::check_fault(&fault, "fault", *instances, *workers)?;
        // A run whose load is over has dropped the receiver: nothing is
        // left to break, and that is not the learner's error.
        let _ = faults.send(fault);
        Ok(())
    }
}

/// A validated run, ready to execute.
pub struct Run {
    engine: Arc<Engine>,
    /// Whose run it is: the queue is fair between learners.
    learner: Learner,
    id: RunId,
    spec: RunSpec,
    plan: Plan,
    events: EventSink,
    stop: Stop,
    faults: Option<Faults>,
    scaling_faults: Option<scaling::Faults>,
}

impl Engine {
    /// An engine that runs what `budget` allows, within `limits`.
    pub fn new(limits: Limits, budget: Budget) -> Self {
        Engine {
            limits,
            admission: admission::Admission::new(
                budget.max_runs,
                budget.max_live_workers,
                budget.max_memory_mib,
                budget.max_queue,
            ),
            node_binary: "node".into(),
            node: tokio::sync::OnceCell::new(),
            balancers: tokio::sync::OnceCell::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            paths: process::Paths {
                // Re-execute ourselves, as Node's fork() starts another node.
                worker_binary: std::env::current_exe().unwrap_or_else(|_| "spawnlab".into()),
                list_dir: "public".into(),
            },
            panic_at: None,
        }
    }

    /// Have the `list_public` program list `dir` (the site being served).
    pub fn with_list_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.paths.list_dir = dir;
        self
    }

    /// Start worker processes from `binary` instead of this executable (for
    /// tests, whose executable is the test harness).
    pub fn with_worker_binary(mut self, binary: std::path::PathBuf) -> Self {
        self.paths.worker_binary = binary;
        self
    }

    /// Run `binary` for the Node.js runtime instead of `node` on `PATH`.
    pub fn with_node(mut self, binary: PathBuf) -> Self {
        self.node_binary = binary;
        self
    }

    /// What this server's Node.js is and can do, found on first need.
    pub async fn node(&self) -> &node::NodeSetup {
        self.node
            .get_or_init(|| async {
                let binary = self.node_binary.clone();
                tokio::task::spawn_blocking(move || {
                    node::NodeSetup::detect(binary.clone(), &std::env::temp_dir())
                })
                .await
                .unwrap_or_else(|e| {
                    node::NodeSetup::unavailable(
                        self.node_binary.clone(),
                        format!("looking for Node.js failed: {e}"),
                    )
                })
            })
            .await
    }

    /// One plain Node.js measurement (`bench.js`), for the compare page and
    /// `spawnlab bench`.
    pub async fn node_measure(
        &self,
        request: &serde_json::Value,
    ) -> Result<node::Measured, RunError> {
        node::measure(self.node().await, &self.paths.worker_binary, request).await
    }

    /// The load balancers as this server has them, found on first need.
    pub async fn balancers(&self) -> &[scaling::balancer::Found] {
        self.balancers
            .get_or_init(|| async {
                tokio::task::spawn_blocking(|| {
                    protocol::BalancerKind::ALL
                        .into_iter()
                        .map(scaling::balancer::detect)
                        .collect()
                })
                .await
                .unwrap_or_default()
            })
            .await
    }

    /// The load balancers, for the page's `hello`.
    pub async fn balancer_infos(&self) -> Vec<protocol::BalancerInfo> {
        self.balancers()
            .await
            .iter()
            .map(|f| f.info.clone())
            .collect()
    }

    /// Both runtimes as this server has them, for the page's `hello`.
    pub async fn runtimes(&self) -> Vec<RuntimeInfo> {
        vec![
            self.node().await.info.clone(),
            RuntimeInfo {
                runtime: Runtime::Rust,
                version: Some(format!("spawnlab {}", env!("CARGO_PKG_VERSION"))),
                available: true,
                note: "The Rust engine runs inside this server.".into(),
                missing: Vec::new(),
            },
        ]
    }

    /// Take no new runs from now on (the server is draining before it
    /// stops); runs already prepared go on.
    pub fn stop_accepting(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test builds only: panic at `at` in every run.
    #[cfg(feature = "fault-injection")]
    pub fn with_injected_panic(mut self, at: PanicAt) -> Self {
        self.panic_at = Some(at);
        self
    }

    /// The bounds requests are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Check a request without running it: the plan its model would run,
    /// or why this server cannot run it on the runtime it names.
    pub async fn validate(&self, spec: &RunSpec) -> Result<Plan, Refused> {
        let plan = self.limits.validate(spec)?;
        match spec.runtime {
            Runtime::Node => self.node().await.check(spec)?,
            // pool_hash is refused by the limits already, naming the runtime.
            Runtime::Rust if spec.node_only().is_some() => {
                return Err(Refused::invalid(
                    "spec.model.serialization",
                    "spec.model.serialization advanced is Node's structured clone; the \
                     Rust engine's channel carries JSON lines only: choose json, or \
                     runtime node"
                        .into(),
                ));
            }
            Runtime::Rust => {}
        }
        if let Plan::Scaling(scaling) = &plan {
            let found = self
                .balancers()
                .await
                .iter()
                .find(|f| f.info.balancer == scaling.balancer);
            if let Some(found) = found.filter(|f| !f.info.available) {
                return Err(Refused::invalid(
                    "spec.model.balancer",
                    format!(
                        "spec.model.balancer {}: {}",
                        scaling.balancer.name(),
                        found.info.note
                    ),
                ));
            }
        }
        Ok(plan)
    }

    /// Validate `learner`'s `spec` for run `id`: a handle to control it and
    /// the run to execute, or why it is refused. Events go to `events`.
    pub async fn prepare(
        self: &Arc<Self>,
        learner: &Learner,
        id: RunId,
        spec: RunSpec,
        events: EventSink,
    ) -> Result<(RunHandle, Run), Refused> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Refused::Draining);
        }
        let plan = self.validate(&spec).await?;
        let stop = Stop::new();
        let (kills, faults) = match &plan {
            Plan::Cluster(cluster) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some((tx, cluster.workers)), Some(rx))
            }
            _ => (None, None),
        };
        let (breaks, scaling_faults) = match &plan {
            Plan::Scaling(scaling) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some((tx, scaling.instances, scaling.workers)), Some(rx))
            }
            _ => (None, None),
        };
        let handle = RunHandle {
            stop: stop.clone(),
            kills,
            faults: breaks,
        };
        let run = Run {
            engine: self.clone(),
            learner: learner.clone(),
            id,
            spec,
            plan,
            events,
            stop,
            faults,
            scaling_faults,
        };
        Ok((handle, run))
    }
}

impl Run {
    /// Admit, run and report the run, start to finish. Every event goes to
    /// the sink tagged with the run's id; the last one is `run_finished`, or
    /// an `error` when the queue turns the run away (then `Err`).
    pub async fn execute(self) -> Result<RunSummary, Refused> {
        let Run {
            engine,
            learner,
            id,
            spec,
            plan,
            events,
            stop,
            faults,
            scaling_faults,
        } = self;
        // A closed sink means nobody is listening; the stop signal, not the
        // sink, is what ends the work.
        let send = |ev| {
            let _ = events.send(ev);
        };
        let queued = |place: admission::Place| {
            send(ServerEvent::Queued {
                run: id,
                position: place.position,
                wait_ms: place.wait.map(|w| w.as_millis() as u64),
            })
        };
        let pass = match engine
            .admission
            .enter(&learner, plan.weight(spec.runtime), queued, &stop)
            .await
        {
            Ok(pass) => pass,
            Err(admission::Refusal::QueueFull(n)) => {
                let refused = Refused::QueueFull(n);
                send(refused.event(Some(id)));
                return Err(refused);
            }
            Err(admission::Refusal::Stopped(reason)) => {
                let summary = RunSummary::empty(reason.outcome());
                send(ServerEvent::RunFinished {
                    run: id,
                    summary: summary.clone(),
                });
                return Ok(summary);
            }
        };
        if engine.panic_at == Some(PanicAt::Run) {
            panic!("injected panic in run {id}");
        }
        send(ServerEvent::Accepted { run: id });
        let host = tokio::task::spawn_blocking(host::describe)
            .await
            .unwrap_or_else(|_| host::unknown());
        send(ServerEvent::Started {
            run: id,
            spec: spec.clone(),
            host,
        });

        let deadline = {
            let stop = stop.clone();
            let after = engine.limits.run_deadline;
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                stop.request(StopReason::Deadline);
            })
        };
        let result = match (spec.runtime, plan) {
            (runtime, Plan::Scaling(plan)) => {
                let node_setup = match runtime {
                    Runtime::Node => Some(engine.node().await),
                    Runtime::Rust => None,
                };
                let balancers = engine.balancers().await;
                match balancers.iter().find(|f| f.info.balancer == plan.balancer) {
                    Some(found) => {
                        let cx = scaling::Context {
                            runtime,
                            binary: &engine.paths.worker_binary,
                            node: node_setup.map(|setup| node::Context {
                                setup,
                                guardian: &engine.paths.worker_binary,
                                site_dir: &engine.paths.list_dir,
                            }),
                            found,
                        };
                        scaling::run(id, plan, cx, &events, &stop, scaling_faults).await
                    }
                    None => Err(RunError::Balancer(format!(
                        "{} is not known to this server",
                        plan.balancer.label()
                    ))),
                }
            }
            (Runtime::Rust, plan) => engine.run_plan(id, plan, &events, &stop, faults).await,
            (Runtime::Node, plan) => {
                let cx = node::Context {
                    setup: engine.node().await,
                    guardian: &engine.paths.worker_binary,
                    site_dir: &engine.paths.list_dir,
                };
                node::run(id, &spec, &plan, cx, &events, &stop, faults).await
            }
        };
        deadline.abort();

        let summary = match result {
            Ok(run) => RunSummary {
                shared_with: Some(pass.shared_with()),
                ..summarize(run, &stop)
            },
            Err(error) => {
                tracing::warn!(run = id, "run failed: {}", error.message());
                send(error.event(id));
                RunSummary::empty(Outcome::Failed)
            }
        };
        send(ServerEvent::RunFinished {
            run: id,
            summary: summary.clone(),
        });
        Ok(summary)
    }
}

impl Engine {
    /// Hand the plan to its model.
    async fn run_plan(
        &self,
        id: RunId,
        plan: Plan,
        events: &EventSink,
        stop: &Stop,
        faults: Option<Faults>,
    ) -> Result<ModelRun, RunError> {
        match plan {
            Plan::MainThread {
                work: MainWork::Compute(work),
            } => main_thread::run(id, work, events, stop).await,
            // The limits refuse this on the Rust engine; should a plan ever
            // get here, the run fails with the reason instead of running.
            Plan::MainThread {
                work: MainWork::PoolHash { .. },
            } => Err(RunError::Start {
                what: "libuv's thread pool".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the Rust engine has no libuv thread pool; pool_hash runs only on node",
                ),
            }),
            Plan::Threads {
                work,
                workers,
                style,
            } => {
                let job = threads::Job {
                    work,
                    style,
                    pool_size: self.limits.max_workers,
                    panic_in_worker: self.panic_at == Some(PanicAt::Worker),
                };
                threads::run(id, job, workers, events, stop).await
            }
            Plan::ChildProcess {
                job,
                workers,
                round_trips,
            } => {
                let job = process::Job {
                    job,
                    workers,
                    round_trips,
                    paths: self.paths.clone(),
                };
                process::run(id, job, events, stop).await
            }
            Plan::Cluster(plan) => {
                let binary = &self.paths.worker_binary;
                cluster::run(id, plan, binary, events, stop, faults).await
            }
            // Started in `execute`, for either runtime; should a plan ever
            // get here, the run fails with the reason instead of running.
            Plan::Scaling(_) => Err(RunError::Balancer(
                "a scaling run was handed to the one-machine models".into(),
            )),
        }
    }
}

fn summarize(run: ModelRun, stop: &Stop) -> RunSummary {
    let complete = run.results.iter().all(Option::is_some);
    let outcome = match (complete, stop.outcome()) {
        (true, _) => Outcome::Completed,
        (false, Some(stopped)) => stopped,
        // A worker ended without its result and nobody asked it to: it died.
        (false, None) => Outcome::Failed,
    };
    let result = if complete {
        catalogue::combine(run.results.into_iter().flatten().collect())
    } else {
        WorkResult::Incomplete
    };
    let wall_us = measure::micros(run.wall);
    let baseline_wall_us = run.baseline_wall.map(measure::micros);
    RunSummary {
        outcome,
        wall_us,
        cpu_us: measure::micros(run.cpu),
        result,
        baseline_wall_us,
        speedup: baseline_wall_us
            .filter(|_| wall_us > 0)
            .map(|b| b as f64 / wall_us as f64),
        main_loop_lag_us: run.max_lag.map(measure::micros),
        shared_with: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_draining_engine_takes_no_new_runs() {
        let engine = Arc::new(Engine::new(
            Limits::default(),
            Budget {
                max_runs: 1,
                max_live_workers: 4,
                max_memory_mib: 512,
                max_queue: 4,
            },
        ));
        let spec = RunSpec {
            runtime: Runtime::Rust,
            model: protocol::ModelSpec::MainThread,
            workload: protocol::Workload::Sleep { ms: 1 },
            workers: 1,
        };
        let learner = Learner::new("me");
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(engine
            .prepare(&learner, 1, spec.clone(), tx.clone())
            .await
            .is_ok());
        engine.stop_accepting();
        let refused = engine.prepare(&learner, 2, spec, tx).await.err();
        assert_eq!(refused, Some(Refused::Draining));
        assert_eq!(
            refused.map(|r| r.code()),
            Some(protocol::ErrorCode::ShuttingDown)
        );
    }

    #[tokio::test]
    async fn the_first_stop_reason_wins() {
        let stop = Stop::new();
        assert!(!stop.is_requested());
        stop.request(StopReason::Cancelled);
        stop.request(StopReason::Deadline);
        assert_eq!(stop.reason(), Some(StopReason::Cancelled));
        assert_eq!(stop.requested().await, StopReason::Cancelled);
    }

    #[tokio::test]
    async fn waiting_for_a_stop_wakes_when_it_comes() {
        let stop = Stop::new();
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested().await }
        });
        tokio::task::yield_now().await;
        stop.request(StopReason::Shutdown);
        assert_eq!(waiter.await.unwrap(), StopReason::Shutdown);
    }
}
