//! spawnlab's wire contract, shared by the browser, the server, the engine,
//! the CLI and the tests — and depending on none of them (serde only, like
//! tokio-console's `console-api`).
//!
//! # Layout
//!
//! - this file: the WebSocket messages, [`ClientMessage`] and [`ServerEvent`],
//!   and the types they carry;
//! - [`catalogue`]: every model and workload, named once: which workloads a
//!   model accepts, each allow-listed program's argument vector, the labels a
//!   page or the CLI shows;
//! - [`lab`]: [`lab::LabState`], what a lab knows about its run, folded from
//!   the events;
//! - [`format`]: durations, sizes, counts, results and hosts in words, the
//!   same on the page and in the terminal;
//! - [`compare`]: the comparison table's measured rows, shared by the compare
//!   page and `spawnlab compare`.
//!
//! # The wire
//!
//! Every frame on the `/ws` WebSocket is one JSON object tagged by `"type"`.
//! The client sends [`ClientMessage`]s; the server answers with
//! [`ServerEvent`]s and never sends anything that does not deserialize into
//! one. This module is serde only — no Leptos, no tokio — so the wasm front
//! end, the server, the CLI and the tests all share it without pulling each
//! other in.
//!
//! A run's life on the wire:
//!
//! ```text
//! client: {"type":"start","id":1,"spec":{...}}
//! server: accepted | queued{position} ... -> started{host}
//!         worker_spawned* progress* round_trips* worker_finished*
//!         baseline_started baseline_finished      (threads with workers > 1)
//!         run_finished{summary}
//! ```
//!
//! Anything wrong with a request comes back as an [`ServerEvent::Error`]
//! naming the field and the allowed range; the connection stays open.

use serde::{Deserialize, Serialize};

pub mod catalogue;
pub mod compare;
pub mod decode;
pub mod format;
pub mod lab;

pub use catalogue::{
    ModelKind, Runtime, WorkloadKind, DEFAULT_CONCURRENCY, DEFAULT_INSTANCES, DEFAULT_KILL_AFTER,
    DEFAULT_REQUESTS, DEFAULT_ROUND_TRIPS,
};

/// Bumped whenever a change would break an older client.
pub const PROTOCOL_VERSION: u32 = 1;

/// The path of the WebSocket route, relative to the site's origin.
pub const WS_PATH: &str = "/ws";

/// The client's handle for a run: chosen by the client, unique on its
/// connection, echoed on every event about that run.
pub type RunId = u64;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Ask the server to run `spec`; it answers `accepted` or `queued`, or an
    /// `error` naming what is wrong with the request.
    Start { id: RunId, spec: RunSpec },
    /// Stop a run (running or queued). The run still ends with
    /// `run_finished`, its outcome `cancelled`.
    Cancel { id: RunId },
    /// Kill worker `worker` of a running cluster run now, as a crash would;
    /// the primary notices and starts a replacement. Any other run, or a
    /// worker out of range, gets an `error` naming the field.
    Kill { id: RunId, worker: u32 },
    /// Break part of a running scaling run now: a worker, a whole instance,
    /// or the balancer; or bring a killed instance back. Any other run, or
    /// an instance or worker out of range, gets an `error` naming the field.
    Fault { id: RunId, fault: Fault },
}

/// Everything needed to start one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// What runs it: real Node.js (the default: the site teaches Node) or
    /// the Rust engine, which shows what the operating system itself costs.
    #[serde(default)]
    pub runtime: Runtime,
    /// How the work is spread: `worker_threads`, `child_process`, `cluster`,
    /// or everything on the main thread.
    pub model: ModelSpec,
    /// What each worker computes, from the fixed catalogue.
    pub workload: Workload,
    /// How many workers share the work (threads, processes, cluster workers);
    /// must be 1 for the main thread, which has exactly one loop.
    pub workers: u32,
}

/// The execution model, with the options only that model has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// The work runs on the loop that also ticks a heartbeat, so the learner
    /// sees the loop stall (Node: blocking code in a handler).
    MainThread,
    /// OS threads inside the server process (Node: `worker_threads`).
    Threads {
        /// Spawn fresh threads for this run, or reuse a pool kept across runs.
        #[serde(default)]
        strategy: ThreadStrategy,
        /// Report through copied messages, or write into one shared buffer.
        #[serde(default)]
        sharing: Sharing,
    },
    /// The server's own binary re-executed as a worker with a message channel
    /// on its stdio (Node: `child_process.fork`).
    ChildProcess {
        /// Ping-pong messages each child answers before working, to measure
        /// the channel's round trip.
        #[serde(default)]
        round_trips: u32,
        /// How messages cross the channel: JSON (Node's default) or
        /// `serialization: 'advanced'` (structured clone; Node only).
        #[serde(default)]
        serialization: Serialization,
    },
    /// A primary process and N HTTP workers on one loopback port, driven by
    /// the engine's load generator (Node: `cluster`).
    Cluster {
        /// How connections reach the workers.
        #[serde(default)]
        policy: SchedPolicy,
        /// Requests the load generator sends in total.
        requests: u32,
        /// Requests in flight at once.
        concurrency: u32,
        /// Reuse connections (true) or open one per request (false).
        #[serde(default = "default_true")]
        keep_alive: bool,
        /// Kill one worker part-way through, to watch the primary respawn it.
        #[serde(default)]
        kill: Option<KillWorker>,
    },
    /// Several app instances, each a cluster of `workers` workers on a
    /// loopback port of its own, behind a real load balancer (nginx, or
    /// HAProxy), which the engine's load generator sends every request to.
    Scaling {
        /// App instances behind the balancer.
        instances: u32,
        /// Which balancer: nginx, or HAProxy where installed.
        #[serde(default)]
        balancer: BalancerKind,
        /// How the balancer picks an instance for each request.
        #[serde(default)]
        balance: Balance,
        /// Requests the load generator sends in total.
        requests: u32,
        /// Requests in flight at once (each sender has a client address of
        /// its own, `127.0.1.x`, up to 16 addresses).
        concurrency: u32,
        /// Reuse client connections (true) or open one per request (false).
        #[serde(default = "default_true")]
        keep_alive: bool,
        /// Let the balancer try another instance when one fails (nginx's
        /// `proxy_next_upstream`, HAProxy's `retries` and `option redispatch`).
        #[serde(default = "default_true")]
        retries: bool,
        /// Faults to inject once so many requests are answered.
        #[serde(default)]
        faults: Vec<TimedFault>,
    },
}

/// The load balancer in front of a scaling run's instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BalancerKind {
    /// nginx's `upstream` module: passive health checks only (a failed
    /// request marks an instance down for `fail_timeout`).
    #[default]
    Nginx,
    /// HAProxy: active health checks (`check`) besides the failed requests.
    Haproxy,
}

/// How a balancer picks an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Balance {
    /// Each request to the next instance in turn.
    #[default]
    RoundRobin,
    /// To the instance with the fewest requests in flight.
    LeastConn,
    /// By the client's address, so one client keeps its instance (sticky):
    /// nginx `hash $remote_addr consistent`, HAProxy `balance source`.
    Hash,
}

/// Something to break (or mend) in a running scaling run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// SIGKILL one worker of one instance: its primary starts another.
    KillWorker { instance: u32, worker: u32 },
    /// SIGKILL a whole instance, primary and workers.
    KillInstance { instance: u32 },
    /// Start a killed instance again on its port: the balancer takes it back.
    RestartInstance { instance: u32 },
    /// SIGKILL the balancer: every request fails from then on.
    KillBalancer,
}

/// A fault injected once `after_requests` requests have been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    pub after_requests: u32,
    pub fault: Fault,
}

fn default_true() -> bool {
    true
}

impl ModelSpec {
    /// Which model this is, without its options.
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelSpec::MainThread => ModelKind::MainThread,
            ModelSpec::Threads { .. } => ModelKind::Threads,
            ModelSpec::ChildProcess { .. } => ModelKind::ChildProcess,
            ModelSpec::Cluster { .. } => ModelKind::Cluster,
            ModelSpec::Scaling { .. } => ModelKind::Scaling,
        }
    }

    /// The model's name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// Fresh threads per run, or a pool reused across runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ThreadStrategy {
    /// `std::thread::spawn` for every worker of every run (Node: `new Worker()`).
    #[default]
    Spawn,
    /// Threads started once and reused (Node: a worker pool, as its docs advise).
    Pool,
}

/// How workers hand their results back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Sharing {
    /// Values copied into messages (Node: `postMessage`, structured clone).
    #[default]
    Messages,
    /// One buffer every worker writes with atomics (Node: `SharedArrayBuffer`).
    SharedMemory,
}

/// How a cluster's connections reach its workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SchedPolicy {
    /// The primary accepts and passes each connection to the next worker
    /// (Node's default, `SCHED_RR`).
    #[default]
    RoundRobin,
    /// Workers inherit one listening socket and race in `accept` (`SCHED_NONE`).
    SharedSocket,
    /// Each worker binds its own socket with `SO_REUSEPORT`; the kernel hashes.
    ReusePort,
}

/// How a forked child's IPC channel encodes messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Serialization {
    /// JSON text, Node's default for `fork()` (and the Rust engine's lines).
    #[default]
    Json,
    /// `serialization: 'advanced'`: the structured-clone algorithm (Node
    /// only), which also carries typed arrays, `Map`, `Set`, `BigInt`.
    Advanced,
}

/// Fault injection for the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillWorker {
    /// Which worker to kill, counted from 0.
    pub worker: u32,
    /// Kill it once this many requests have completed.
    pub after_requests: u32,
}

/// The catalogue: the only work the server will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// Count the primes below `below`, by trial division (CPU-bound, and easy
    /// to check: there are 78,498 primes below 1,000,000).
    Primes { below: u64 },
    /// Hash 32 bytes with SHA-256 `rounds` times in a chain; each worker runs
    /// its own chain, seeded by its index, so no round can be skipped.
    Sha256Chain { rounds: u64 },
    /// Wait `ms` milliseconds on a timer: waiting, not computing. On the main
    /// thread this is `await` on a timer, so the loop stays free.
    Sleep { ms: u64 },
    /// Wait `ms` milliseconds synchronously (`Atomics.wait` in Node, a
    /// thread sleep in Rust): on the main thread it freezes the loop, though
    /// it uses no CPU (main thread only).
    BlockingWait { ms: u64 },
    /// Run an allow-listed program, never through a shell (child process only).
    Program { program: Program },
    /// Per request: answer "hello" (cluster only).
    HttpHello,
    /// Per request: burn `ms` milliseconds of CPU, then answer (cluster only).
    HttpCpu { ms: u64 },
    /// Per request: wait `ms` milliseconds, then answer (cluster only).
    HttpSleep { ms: u64 },
    /// Fire `calls` asynchronous `crypto.pbkdf2` hashes at once and watch
    /// libuv's thread pool of `pool_threads` threads (`UV_THREADPOOL_SIZE`)
    /// take them in waves, while the event loop stays free (main thread,
    /// Node.js only: the Rust engine has no libuv pool).
    PoolHash { calls: u32, pool_threads: u32 },
}

impl Workload {
    /// Which workload this is, without its size.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Primes { .. } => WorkloadKind::Primes,
            Workload::Sha256Chain { .. } => WorkloadKind::Sha256Chain,
            Workload::Sleep { .. } => WorkloadKind::Sleep,
            Workload::BlockingWait { .. } => WorkloadKind::BlockingWait,
            Workload::Program { .. } => WorkloadKind::Program,
            Workload::HttpHello => WorkloadKind::HttpHello,
            Workload::HttpCpu { .. } => WorkloadKind::HttpCpu,
            Workload::HttpSleep { .. } => WorkloadKind::HttpSleep,
            Workload::PoolHash { .. } => WorkloadKind::PoolHash,
        }
    }

    /// The workload's name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// External programs a child process may run. Each maps to a fixed argument
/// vector on the server; learners choose a name, never a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Program {
    /// `uname -a`
    Uname,
    /// `ls -l <site>`: the files the server serves (public/ and the bundle).
    ListPublic,
    /// `python3 --version`
    PythonVersion,
    /// `node --version`
    NodeVersion,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First frame on every connection: the protocol version and the limits
    /// the page should offer, so its controls match what the server accepts.
    Hello {
        version: u32,
        limits: Limits,
        /// Which runtimes this server can run, with their versions and the
        /// features they lack.
        #[serde(default)]
        runtimes: Vec<RuntimeInfo>,
        /// Which load balancers this server can start, for the scaling lab.
        #[serde(default)]
        balancers: Vec<BalancerInfo>,
    },
    /// The run was admitted and starts now.
    Accepted { run: RunId },
    /// The run waits for a free slot; `position` 1 is next. `wait_ms`
    /// estimates the wait from how long recent runs took, once one has
    /// finished.
    Queued {
        run: RunId,
        position: u32,
        #[serde(default)]
        wait_ms: Option<u64>,
    },
    /// The run's workers are being started on this host.
    Started {
        run: RunId,
        spec: RunSpec,
        host: HostInfo,
    },
    /// The runtime is up and about to start the model: for Node.js, the
    /// `node` process has booted and loaded the lab's script. Its boot is
    /// shown apart from the model's own costs.
    RuntimeReady {
        run: RunId,
        runtime: Runtime,
        /// `process.version` for Node (`v20.20.2`); the server's version for
        /// the Rust engine.
        version: String,
        /// Process start to the script's first line, in microseconds.
        boot_us: u64,
        /// The runtime's process: the `node` running the lab's script.
        pid: u32,
    },
    /// The run serves HTTP on this loopback port (the cluster's shared port,
    /// or the main thread's `/ping`).
    Listening { run: RunId, port: u16 },
    /// Main thread: a `GET /ping` the server sent from outside during the
    /// run, and how long its answer took; `None` if it got none in time.
    Ping {
        run: RunId,
        /// When it was sent, in milliseconds since the run started.
        at_ms: u64,
        latency_us: Option<u64>,
    },
    /// Main thread, Node.js: one asynchronous hash on libuv's thread pool
    /// finished, this long after all of them were started.
    PoolTask {
        run: RunId,
        /// Which call, in the order they were started.
        task: u32,
        finished_us: u64,
    },
    /// Main thread, Node.js: the loop's delay as
    /// `perf_hooks.monitorEventLoopDelay` measured it over the run.
    LoopDelay {
        run: RunId,
        p50_us: u64,
        p99_us: u64,
        max_us: u64,
    },
    /// A worker sent its first message.
    WorkerSpawned {
        run: RunId,
        worker: u32,
        /// Spawn call to the worker's first message, in microseconds.
        start_latency_us: u64,
        /// The worker's process id (processes) or the server's (threads).
        pid: u32,
        /// The worker's kernel thread id, for threads.
        tid: Option<u32>,
        /// When the server heard it, in microseconds since the run started
        /// (the clock the timeline is drawn on); `None` from older servers.
        #[serde(default)]
        at_us: Option<u64>,
    },
    /// A worker's progress, in units of its own share of the work.
    Progress {
        run: RunId,
        worker: u32,
        done: u64,
        total: u64,
    },
    /// Round trips of small messages between the server and a worker.
    RoundTrips {
        run: RunId,
        worker: u32,
        count: u32,
        p50_ns: u64,
        p99_ns: u64,
        max_ns: u64,
        /// When the server heard it, in microseconds since the run started
        /// (the clock the timeline is drawn on); `None` from older servers.
        #[serde(default)]
        at_us: Option<u64>,
    },
    /// Main thread model: one heartbeat tick and how late it was.
    Heartbeat {
        run: RunId,
        /// Time since the run started, in milliseconds.
        at_ms: u64,
        /// How much later than scheduled the tick ran, in microseconds.
        lag_us: u64,
    },
    /// A worker is done (or was stopped).
    WorkerFinished {
        run: RunId,
        worker: u32,
        /// Spawn to exit, in microseconds.
        wall_us: u64,
        /// CPU time the worker itself used (its own thread or process clock).
        cpu_us: u64,
        /// Resident memory, defined once for both runtimes: a process's own
        /// (all resident pages, and the anonymous ones); for threads, which
        /// share one process, that process's growth per worker from before
        /// the first was started to when all were ready. `None` where not
        /// measured (the main thread, a program).
        memory: Option<Memory>,
        /// Threads: messages the worker sent its coordinator (0 when it wrote
        /// to shared memory instead); `None` where not counted.
        #[serde(default)]
        messages: Option<u64>,
        result: WorkResult,
        /// When the server heard it, in microseconds since the run started
        /// (the clock the timeline is drawn on); `None` from older servers.
        #[serde(default)]
        at_us: Option<u64>,
    },
    /// Threads with more than one worker: the same workload on one thread, so
    /// the speedup is measured rather than assumed.
    BaselineStarted { run: RunId },
    /// The one-worker baseline is done.
    BaselineFinished {
        run: RunId,
        wall_us: u64,
        cpu_us: u64,
    },
    /// Cluster: live load figures, a few times a second.
    ClusterTick {
        run: RunId,
        /// Time since the run started, in milliseconds.
        at_ms: u64,
        /// Responses so far from each worker, by worker index.
        per_worker: Vec<u64>,
        completed: u64,
        errors: u64,
        /// Responses per second over the last tick (a quarter second): the
        /// throughput line's points.
        rps: f64,
        /// Time since the load began, in milliseconds: answered requests
        /// over this is the load's rate so far, defined as the final
        /// `load_finished` rate is.
        #[serde(default)]
        load_ms: u64,
        p50_us: u64,
        p90_us: u64,
        p99_us: u64,
    },
    /// Cluster: a worker process ended (killed by the lab, or crashed).
    WorkerExited {
        run: RunId,
        /// Scaling: the instance the worker belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<u32>,
        worker: u32,
        pid: u32,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
        exit_code: Option<i32>,
        /// Time since the run started, in milliseconds.
        at_ms: u64,
    },
    /// Cluster: the primary noticed a dead worker and its replacement is
    /// serving.
    WorkerRespawned {
        run: RunId,
        /// Scaling: the instance the worker belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<u32>,
        worker: u32,
        pid: u32,
        /// Death noticed → replacement ready, in microseconds.
        downtime_us: u64,
        at_ms: u64,
    },
    /// Cluster: the load generator is done; what it saw.
    LoadFinished { run: RunId, stats: LoadStats },
    /// Scaling: an instance serves on `port` (at the start, or brought back).
    InstanceUp {
        run: RunId,
        instance: u32,
        port: u16,
        /// Its primary (the `node` process, or the Rust primary).
        pid: u32,
        /// Start to serving, in microseconds.
        start_us: u64,
        at_ms: u64,
    },
    /// Scaling: an instance was killed whole.
    InstanceDown {
        run: RunId,
        instance: u32,
        at_ms: u64,
    },
    /// Scaling: the balancer serves on `port` in front of every instance.
    BalancerUp {
        run: RunId,
        balancer: BalancerKind,
        /// `nginx/1.22.1`, `HAProxy 2.6.12`.
        version: String,
        port: u16,
        pid: u32,
        at_ms: u64,
    },
    /// Scaling: the balancer was killed; nothing reaches the instances now.
    BalancerDown { run: RunId, at_ms: u64 },
    /// Scaling: live figures, a few times a second.
    ScalingTick {
        run: RunId,
        at_ms: u64,
        /// Time since the load began, in milliseconds.
        load_ms: u64,
        /// Answers so far from each instance's workers: `[instance][worker]`.
        per_instance: Vec<Vec<u64>>,
        completed: u64,
        errors: u64,
        /// Answers per second over the last tick.
        rps: f64,
        p50_us: u64,
        p90_us: u64,
        p99_us: u64,
        /// What the balancer's own log says so far.
        balancer: BalancerLog,
    },
    /// Scaling: the load is done; what the client and the balancer saw.
    ScalingFinished { run: RunId, stats: ScalingStats },
    /// The run is over, whatever the outcome.
    RunFinished { run: RunId, summary: RunSummary },
    /// Something went wrong with a request or a run. `run` is `None` when the
    /// frame itself could not be understood.
    Error {
        run: Option<RunId>,
        code: ErrorCode,
        /// The request field at fault, as a dotted path (`spec.workers`).
        field: Option<String>,
        /// A sentence for a human, naming the allowed range.
        message: String,
    },
}

impl ServerEvent {
    /// The run this event is about, if any.
    pub fn run(&self) -> Option<RunId> {
        match self {
            ServerEvent::Hello { .. } => None,
            ServerEvent::Error { run, .. } => *run,
            ServerEvent::Accepted { run }
            | ServerEvent::RuntimeReady { run, .. }
            | ServerEvent::Listening { run, .. }
            | ServerEvent::Ping { run, .. }
            | ServerEvent::LoopDelay { run, .. }
            | ServerEvent::PoolTask { run, .. }
            | ServerEvent::Queued { run, .. }
            | ServerEvent::Started { run, .. }
            | ServerEvent::WorkerSpawned { run, .. }
            | ServerEvent::Progress { run, .. }
            | ServerEvent::RoundTrips { run, .. }
            | ServerEvent::Heartbeat { run, .. }
            | ServerEvent::WorkerFinished { run, .. }
            | ServerEvent::BaselineStarted { run }
            | ServerEvent::BaselineFinished { run, .. }
            | ServerEvent::ClusterTick { run, .. }
            | ServerEvent::WorkerExited { run, .. }
            | ServerEvent::WorkerRespawned { run, .. }
            | ServerEvent::LoadFinished { run, .. }
            | ServerEvent::InstanceUp { run, .. }
            | ServerEvent::InstanceDown { run, .. }
            | ServerEvent::BalancerUp { run, .. }
            | ServerEvent::BalancerDown { run, .. }
            | ServerEvent::ScalingTick { run, .. }
            | ServerEvent::ScalingFinished { run, .. }
            | ServerEvent::RunFinished { run, .. } => Some(*run),
        }
    }
}

/// Machine-readable error kinds; the page and the tests branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON, or not a known message.
    Malformed,
    /// A field is outside its allowed range or set.
    InvalidField,
    /// The frame is larger than the server accepts. Up to the WebSocket
    /// layer's own cap (64 KiB) the connection stays open; past it the rest
    /// of the frame is still on the wire, so this error is followed by a
    /// close frame with code 1009.
    TooLarge,
    /// The model is part of the protocol but this server cannot run it yet.
    Unsupported,
    /// The run id is already in use on this connection.
    DuplicateRun,
    /// `cancel` named a run this connection does not have.
    UnknownRun,
    /// Too many runs: this connection's share, or the server's queue, is full.
    Busy,
    /// The run failed on the server; the message says how.
    RunFailed,
    /// The server is stopping: runs are ended and the connection will close.
    ShuttingDown,
}

/// Server-side limits, sent in [`ServerEvent::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most workers in one run.
    pub max_workers: u32,
    /// Largest `below` for primes.
    pub max_primes_below: u64,
    /// Largest `rounds` for the SHA-256 chain.
    pub max_sha256_rounds: u64,
    /// Longest sleep, in milliseconds.
    pub max_sleep_ms: u64,
    /// Most ping-pong messages before a child process works.
    pub max_round_trips: u32,
    /// Most requests in one cluster run.
    pub max_requests: u32,
    /// Most cluster requests in flight at once.
    pub max_concurrency: u32,
    /// Longest per-request CPU burn or sleep, in milliseconds.
    pub max_request_ms: u64,
    /// Wall-clock deadline of a run, in milliseconds.
    pub run_deadline_ms: u64,
    /// Largest incoming frame, in bytes.
    pub max_message_bytes: u32,
    /// Most app instances behind a scaling run's balancer.
    #[serde(default)]
    pub max_instances: u32,
}

/// A load balancer as this server has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerInfo {
    pub balancer: BalancerKind,
    /// Its version (`nginx/1.22.1`), when it is installed.
    pub version: Option<String>,
    pub available: bool,
    /// A sentence for the page: what was found, or how to install it.
    pub note: String,
}

/// What a balancer's access log says: every attempt it made on an
/// instance, which can be more than the requests the client sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerLog {
    /// Requests the balancer logged.
    pub requests: u64,
    /// Attempts on each instance (a retried request counts on each).
    pub attempts: Vec<u64>,
    /// Attempts that failed (the instance refused, reset, or timed out).
    pub failed_attempts: u64,
    /// Requests the balancer retried on another instance.
    pub retried: u64,
    /// Requests the balancer answered with an error itself (502, 503, 504).
    pub errors: u64,
}

/// What a scaling run's load generator and balancer measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingStats {
    pub requests: u64,
    pub completed: u64,
    /// Requests the client saw fail (an error status, or no answer).
    pub errors: u64,
    /// Answers from each instance's workers: `[instance][worker]`.
    pub per_instance: Vec<Vec<u64>>,
    /// Distinct client addresses the load came from.
    pub client_addresses: u32,
    pub duration_us: u64,
    pub rps: f64,
    pub latency: Latency,
    pub balancer: BalancerLog,
    /// Workers the instances' primaries replaced.
    pub respawns: u32,
}

/// One runtime as this server has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub runtime: Runtime,
    /// Its version (`v20.20.2`), when it is installed.
    pub version: Option<String>,
    /// False when it is missing or too old: its runs are refused with a
    /// message saying what was found and how to install it.
    pub available: bool,
    /// A sentence for the page: what was found, or how to install it.
    pub note: String,
    /// Features this version lacks, each with the version that has it.
    #[serde(default)]
    pub missing: Vec<MissingFeature>,
}

impl RunSpec {
    /// Why this run exists on Node.js alone, if it does: a sentence for the
    /// page (the engine refuses such a run on the Rust engine by name).
    pub fn node_only(&self) -> Option<&'static str> {
        if self.workload.kind().node_only() {
            return Some(
                "This workload runs on Node.js alone: the Rust engine has no libuv thread pool.",
            );
        }
        if let ModelSpec::ChildProcess {
            serialization: Serialization::Advanced,
            ..
        } = self.model
        {
            return Some("Advanced serialization is Node's structured clone: the Rust engine's channel carries JSON lines only.");
        }
        None
    }
}

impl RuntimeInfo {
    /// How a figure names it: "Node.js v20.20.2" ("Node.js" without a
    /// version), "Rust engine".
    pub fn name(&self) -> String {
        match (self.runtime, &self.version) {
            (Runtime::Node, Some(v)) => format!("Node.js {v}"),
            (runtime, _) => runtime.label().into(),
        }
    }
}

/// A feature a runtime's version lacks, detected rather than assumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFeature {
    /// What the learner would choose (`reuse_port`).
    pub feature: String,
    /// The version that brings it (`v22.12`).
    pub needs: String,
}

/// The machine the numbers come from, sent with every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub cpu_model: String,
    /// CPUs the kernel schedules on (hyperthreads count).
    pub logical_cores: u32,
    /// Distinct physical cores, when the kernel says.
    pub physical_cores: Option<u32>,
    /// 1, 5 and 15 minute load averages.
    pub load_average: [f64; 3],
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// True when the machine was already busy as the run began, so its
    /// figures are likely slower than on a quiet machine.
    pub busy: bool,
    /// True when the server is a debug build (its engine is compiled
    /// optimised even then, but the page says so).
    #[serde(default)]
    pub debug_build: bool,
}

/// What the cluster's load generator measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    /// Requests it sent.
    pub requests: u64,
    /// Requests answered with 200.
    pub completed: u64,
    /// Requests that failed (connection refused or reset, bad status).
    pub errors: u64,
    /// Answers from each worker, as the `x-worker` header named it.
    pub per_worker: Vec<u64>,
    /// Each worker's own count of requests it served, when it lived to tell;
    /// `None` for a worker that was killed.
    pub served_by_workers: Vec<Option<u64>>,
    /// First request to last answer, in microseconds.
    pub duration_us: u64,
    /// Completed requests per second.
    pub rps: f64,
    pub latency: Latency,
    /// Workers the primary had to replace.
    pub respawns: u32,
}

/// Latency percentiles and a histogram for drawing, from an HDR histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Buckets on a doubling scale: how many answers took at most
    /// `upper_us` (and more than the previous bucket's bound).
    pub buckets: Vec<Bucket>,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub upper_us: u64,
    pub count: u64,
}

/// Resident memory of one worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub rss_bytes: u64,
    /// Anonymous (private, not file-backed) memory: what one more worker
    /// really costs.
    pub anon_bytes: u64,
}

/// What a worker or a run computed, checkable against known answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkResult {
    /// How many primes were found.
    Primes { count: u64 },
    /// The last digest of each chain, in hex, one per worker.
    Sha256Chain { digests: Vec<String> },
    /// How long the sleep really took.
    Slept { ms: u64 },
    /// An external program's exit and its (capped) output.
    Program {
        exit_code: Option<i32>,
        output: String,
        truncated: bool,
    },
    /// Requests served.
    Requests { served: u64 },
    /// Hashes the libuv pool computed.
    Hashed { calls: u64 },
    /// The worker was stopped before it finished.
    Incomplete,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Cancelled,
    /// The run hit the server's wall-clock deadline and was stopped.
    DeadlineExceeded,
    Failed,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub outcome: Outcome,
    /// Start of the first spawn to the end of the last worker, microseconds.
    pub wall_us: u64,
    /// CPU time of all workers together.
    pub cpu_us: u64,
    /// The combined result (all workers' primes, all digests).
    pub result: WorkResult,
    /// Wall time of the same workload on one worker, when measured.
    pub baseline_wall_us: Option<u64>,
    /// `baseline_wall_us / wall_us`, when both were measured.
    pub speedup: Option<f64>,
    /// Main thread: the longest the heartbeat was kept waiting, microseconds.
    #[serde(default)]
    pub main_loop_lag_us: Option<u64>,
    /// The most other runs that executed on the server at the same time as
    /// this one: its figures were measured on a CPU shared with them.
    /// `None` for a run that never started.
    #[serde(default)]
    pub shared_with: Option<u32>,
}

impl Outcome {
    /// The wire's name: "completed", "deadline_exceeded".
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::DeadlineExceeded => "deadline_exceeded",
            Outcome::Failed => "failed",
        }
    }
}

impl RunSummary {
    /// The summary of a run that produced nothing: refused, failed, or
    /// cancelled before it started.
    pub fn empty(outcome: Outcome) -> Self {
        RunSummary {
            outcome,
            wall_us: 0,
            cpu_us: 0,
            result: WorkResult::Incomplete,
            baseline_wall_us: None,
            speedup: None,
            main_loop_lag_us: None,
            shared_with: None,
        }
    }
}

/// The compare page's measured figures: one calibration pass that runs the
/// same jobs through every model on this host. Served by the `calibration`
/// server function rather than the WebSocket, since it is shared by every
/// visitor and cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The machine, as it was when the pass began.
    pub host: HostInfo,
    /// When the pass finished, in seconds since the Unix epoch.
    pub finished_unix_s: u64,
    /// How long the whole pass took, in milliseconds.
    pub took_ms: u64,
    /// The CPU-bound job every model ran, in words.
    pub job: String,
    /// One column per model and runtime: main thread, worker threads,
    /// child process, cluster, each on Node.js and on the Rust engine.
    pub models: Vec<ModelFigures>,
    /// The runtimes as this server has them (versions, what is missing).
    #[serde(default)]
    pub runtimes: Vec<RuntimeInfo>,
    /// Two workers against one over a range of job sizes, on each runtime:
    /// where a second worker starts to pay for itself.
    #[serde(default)]
    pub break_even: Vec<SweepPoint>,
}

/// One job size of the break-even sweep on one runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub runtime: Runtime,
    /// The job: count the primes below this.
    pub below: u64,
    /// Workers in the parallel run.
    pub workers: u32,
    /// Wall time on `workers` workers, start included, in microseconds.
    pub wall_us: u64,
    /// Wall time of the same job on one worker, in microseconds.
    pub one_worker_us: Option<u64>,
}

impl SweepPoint {
    /// One worker's time over `workers`' time: above 1, the extra workers
    /// paid for their start.
    pub fn speedup(&self) -> Option<f64> {
        Some(self.one_worker_us? as f64 / self.wall_us.max(1) as f64)
    }
}

/// One model's measured row values, on one runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFigures {
    /// Which model's column this is.
    pub model: ModelKind,
    /// Which runtime measured these figures.
    pub runtime: Runtime,
    /// Spawn → first sign of life of one worker.
    pub start: Figure,
    /// One small message there and back.
    pub round_trip: Figure,
    /// What one more worker costs in memory.
    pub memory: Figure,
    /// Wall time of the shared CPU-bound job.
    pub job_wall: Figure,
    /// The job on two workers against one, measured.
    pub speedup: Figure,
    /// Requests per second for a hello-world over HTTP.
    pub hello_rps: Figure,
}

/// One cell of the comparison table: a measured value (or none, when the
/// model has no such figure) and how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub value: Option<f64>,
    pub unit: Unit,
    /// How it was measured, or why this model has no such figure.
    pub how: String,
}

/// The unit of a [`Figure`]'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Micros,
    Nanos,
    Bytes,
    Ratio,
    PerSecond,
}

impl Figure {
    /// A measured value.
    pub fn measured(value: f64, unit: Unit, how: impl Into<String>) -> Self {
        Figure {
            value: Some(value),
            unit,
            how: how.into(),
        }
    }

    /// No value: this model has no such figure, and `why` says so.
    pub fn none(unit: Unit, why: impl Into<String>) -> Self {
        Figure {
            value: None,
            unit,
            how: why.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_message_round_trips_through_json() {
        let msg = ClientMessage::Start {
            id: 7,
            spec: RunSpec {
                runtime: crate::Runtime::Rust,
                model: ModelSpec::Threads {
                    strategy: ThreadStrategy::Spawn,
                    sharing: Sharing::Messages,
                },
                workload: Workload::Primes { below: 1_000 },
                workers: 2,
            },
        };
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"type":"start","id":7,"spec":{"runtime":"rust","model":{"kind":"threads","strategy":"spawn","sharing":"messages"},"workload":{"kind":"primes","below":1000},"workers":2}}"#
        );
        assert_eq!(serde_json::from_str::<ClientMessage>(&json).unwrap(), msg);
    }

    #[test]
    fn the_runtime_defaults_to_node() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"model":{"kind":"main_thread"},"workload":{"kind":"sleep","ms":5},"workers":1}"#,
        )
        .unwrap();
        assert_eq!(spec.runtime, Runtime::Node);
    }

    #[test]
    fn model_options_have_defaults() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"model":{"kind":"threads"},"workload":{"kind":"sleep","ms":5},"workers":1}"#,
        )
        .unwrap();
        assert_eq!(
            spec.model,
            ModelSpec::Threads {
                strategy: ThreadStrategy::Spawn,
                sharing: Sharing::Messages
            }
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<ClientMessage>(r#"{"type":"cancel","id":1,"shell":"rm"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `shell`"), "{err}");
    }

    #[test]
    fn events_are_tagged_by_type() {
        let ev = ServerEvent::Progress {
            run: 3,
            worker: 1,
            done: 5,
            total: 10,
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "progress");
        assert_eq!(ev.run(), Some(3));
    }
}
