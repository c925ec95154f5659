//! The catalogue: every model, workload, program and option the server runs,
//! named once.
//!
//! The engine's limits, the lab's menus, the CLI's flags, the calibration
//! pass and the compare page all read their names, labels and "which
//! workload suits which model" from here, so adding a model, a workload or a
//! program is one edit in this file (plus the code that runs it).

use crate::{Program, SchedPolicy, Serialization, Sharing, ThreadStrategy, Workload};
use serde::{Deserialize, Serialize};

/// What runs a lab: real Node.js, or the Rust engine.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Runtime {
    /// `node` running our scripts: `worker_threads`, `child_process.fork`,
    /// `cluster` and a blocked loop, as a Node.js developer writes them.
    #[default]
    Node,
    /// The same models in Rust: what the operating system itself costs.
    Rust,
}

impl Runtime {
    /// Both, Node.js first.
    pub const ALL: [Runtime; 2] = [Runtime::Node, Runtime::Rust];

    /// The name on the wire (`"node"`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Node => "node",
            Runtime::Rust => "rust",
        }
    }

    /// The name a figure carries on a page: "Node.js", "Rust engine".
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Node => "Node.js",
            Runtime::Rust => "Rust engine",
        }
    }
}

/// The models, without their options: the four ways to spread work on one
/// machine, and the scaling lab past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ModelKind {
    /// The work on the event loop itself (blocking code in a handler).
    MainThread,
    /// Threads inside one process (Node: `worker_threads`).
    Threads,
    /// Separate processes with a message channel (Node: `child_process`).
    ChildProcess,
    /// A primary and HTTP workers sharing one port (Node: `cluster`).
    Cluster,
    /// Several clusters behind a load balancer (nginx, HAProxy).
    Scaling,
}

impl ModelKind {
    /// The four models of one machine, in the order the site presents them
    /// (the compare page's columns); [`ModelKind::Scaling`] comes after.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::MainThread,
        ModelKind::Threads,
        ModelKind::ChildProcess,
        ModelKind::Cluster,
    ];

    /// The name on the wire (`"child_process"`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::MainThread => "main_thread",
            ModelKind::Threads => "threads",
            ModelKind::ChildProcess => "child_process",
            ModelKind::Cluster => "cluster",
            ModelKind::Scaling => "scaling",
        }
    }

    /// What a Node.js developer calls it: the module, or the situation.
    pub fn node_name(self) -> &'static str {
        match self {
            ModelKind::MainThread => "Main thread alone",
            ModelKind::Threads => "worker_threads",
            ModelKind::ChildProcess => "child_process",
            ModelKind::Cluster => "cluster",
            ModelKind::Scaling => "load balancer",
        }
    }

    /// The Node.js script that runs this model (`server/node/`), served at
    /// `/node/<script>` for learners to read and run at home.
    pub fn node_script(self) -> &'static str {
        match self {
            ModelKind::MainThread => "main_thread.js",
            ModelKind::Threads => "worker_threads.js",
            ModelKind::ChildProcess => "child_process.js",
            // Each instance is a cluster of its own.
            ModelKind::Cluster | ModelKind::Scaling => "cluster.js",
        }
    }

    /// What one worker is called in this model.
    pub fn worker_noun(self) -> &'static str {
        match self {
            ModelKind::MainThread => "Loop",
            ModelKind::Threads => "Thread",
            ModelKind::ChildProcess => "Process",
            ModelKind::Cluster | ModelKind::Scaling => "Worker",
        }
    }

    /// The workloads this model accepts, the first being its default.
    pub fn workloads(self) -> &'static [WorkloadKind] {
        use WorkloadKind::*;
        match self {
            ModelKind::MainThread => &[Primes, Sha256Chain, Sleep, BlockingWait, PoolHash],
            ModelKind::Threads => &[Primes, Sha256Chain, Sleep],
            ModelKind::ChildProcess => &[Primes, Sha256Chain, Sleep, Program],
            ModelKind::Cluster => &[HttpHello, HttpCpu, HttpSleep],
            // Waiting first: that is where more instances add capacity on
            // a machine whose cores are already counted.
            ModelKind::Scaling => &[HttpSleep, HttpCpu, HttpHello],
        }
    }

    /// True if `workload` can run in this model.
    pub fn accepts(self, workload: WorkloadKind) -> bool {
        self.workloads().contains(&workload)
    }

    /// How many workers a run gets unless asked otherwise: the main thread
    /// has exactly one loop; two workers show parallelism on two cores.
    pub fn default_workers(self) -> u32 {
        match self {
            ModelKind::MainThread => 1,
            _ => 2,
        }
    }

    /// Threads or processes a run of `workers` workers keeps alive: a
    /// cluster's primary is a process too.
    pub fn live_workers(self, workers: u32) -> u32 {
        match self {
            ModelKind::Cluster => workers + 1,
            _ => workers,
        }
    }

    /// True for the models of one machine (the compare page's columns).
    pub fn on_one_machine(self) -> bool {
        self != ModelKind::Scaling
    }
}

/// The workloads, without their sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum WorkloadKind {
    /// Count primes by trial division.
    Primes,
    /// A chain of SHA-256 hashes.
    Sha256Chain,
    /// Waiting on a timer, not computing.
    Sleep,
    /// Waiting synchronously (main thread only): no CPU, but a frozen loop.
    BlockingWait,
    /// An allow-listed program (child processes only).
    Program,
    /// Answer "hello" per request (cluster only).
    HttpHello,
    /// Burn CPU per request (cluster only).
    HttpCpu,
    /// Wait per request (cluster only).
    HttpSleep,
    /// Hashes on libuv's thread pool (main thread, Node.js only).
    PoolHash,
}

impl WorkloadKind {
    /// Every workload.
    pub const ALL: [WorkloadKind; 9] = [
        WorkloadKind::Primes,
        WorkloadKind::Sha256Chain,
        WorkloadKind::Sleep,
        WorkloadKind::BlockingWait,
        WorkloadKind::Program,
        WorkloadKind::HttpHello,
        WorkloadKind::HttpCpu,
        WorkloadKind::HttpSleep,
        WorkloadKind::PoolHash,
    ];

    /// The name on the wire (`"sha256_chain"`).
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Primes => "primes",
            WorkloadKind::Sha256Chain => "sha256_chain",
            WorkloadKind::Sleep => "sleep",
            WorkloadKind::BlockingWait => "blocking_wait",
            WorkloadKind::Program => "program",
            WorkloadKind::HttpHello => "http_hello",
            WorkloadKind::HttpCpu => "http_cpu",
            WorkloadKind::HttpSleep => "http_sleep",
            WorkloadKind::PoolHash => "pool_hash",
        }
    }

    /// The workload whose wire name is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            WorkloadKind::Primes => "Count primes (CPU-bound)",
            WorkloadKind::Sha256Chain => "SHA-256 chain (CPU-bound)",
            WorkloadKind::Sleep => "Wait on a timer (await: the loop stays free)",
            WorkloadKind::BlockingWait => "Wait synchronously (Atomics.wait: the loop freezes)",
            WorkloadKind::Program => "Run another program",
            WorkloadKind::HttpHello => "Say hello (almost no work)",
            WorkloadKind::HttpCpu => "Burn CPU on every request",
            WorkloadKind::HttpSleep => "Wait on every request",
            WorkloadKind::PoolHash => "Hash on libuv's thread pool (Node.js only)",
        }
    }

    /// What the size means; `None` when the workload has no size.
    pub fn size_label(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Primes => Some("Count the primes below"),
            WorkloadKind::Sha256Chain => Some("Rounds of hashing, shared out"),
            WorkloadKind::Sleep => Some("Milliseconds of waiting, shared out"),
            WorkloadKind::BlockingWait => Some("Milliseconds of waiting"),
            WorkloadKind::HttpCpu => Some("Milliseconds of CPU per request"),
            WorkloadKind::HttpSleep => Some("Milliseconds of waiting per request"),
            WorkloadKind::PoolHash => Some("crypto.pbkdf2 calls started at once"),
            WorkloadKind::Program | WorkloadKind::HttpHello => None,
        }
    }

    /// The size a lab or the CLI starts from: small enough that a run,
    /// with its one-worker baseline, takes well under a second on Node.js
    /// (measured: `make class`), so a class's queue drains in seconds.
    pub fn default_size(self) -> u64 {
        match self {
            WorkloadKind::Primes => 3_000_000,
            WorkloadKind::Sha256Chain => 300_000,
            WorkloadKind::Sleep | WorkloadKind::BlockingWait => 300,
            WorkloadKind::HttpCpu => 1,
            WorkloadKind::HttpSleep => 5,
            WorkloadKind::PoolHash => 8,
            WorkloadKind::Program | WorkloadKind::HttpHello => 0,
        }
    }

    /// The workload of this kind with `size` (ignored where there is none),
    /// running `program` where it runs one.
    pub fn with_size(self, size: u64, program: Program) -> Workload {
        match self {
            WorkloadKind::Primes => Workload::Primes { below: size },
            WorkloadKind::Sha256Chain => Workload::Sha256Chain { rounds: size },
            WorkloadKind::Sleep => Workload::Sleep { ms: size },
            WorkloadKind::BlockingWait => Workload::BlockingWait { ms: size },
            WorkloadKind::Program => Workload::Program { program },
            WorkloadKind::HttpHello => Workload::HttpHello,
            WorkloadKind::HttpCpu => Workload::HttpCpu { ms: size },
            WorkloadKind::HttpSleep => Workload::HttpSleep { ms: size },
            WorkloadKind::PoolHash => Workload::PoolHash {
                calls: size.min(u64::from(u32::MAX)) as u32,
                pool_threads: DEFAULT_POOL_THREADS,
            },
        }
    }
}

/// Requests a cluster run sends by default (the lab's and the CLI's).
pub const DEFAULT_REQUESTS: u32 = 2_000;

/// ... and after how many answers a fault kills a worker.
pub const DEFAULT_KILL_AFTER: u32 = 500;

/// Requests a cluster lab keeps in flight by default.
pub const DEFAULT_CONCURRENCY: u32 = 32;

/// App instances a scaling lab starts behind its balancer by default.
pub const DEFAULT_INSTANCES: u32 = 2;

/// Ping-pongs each child answers by default in the child_process lab.
pub const DEFAULT_ROUND_TRIPS: u32 = 1_000;

impl ModelKind {
    /// The run a lab page starts from: its first workload at the default
    /// size, the default number of workers, on `runtime`.
    pub fn lab_default(self, runtime: Runtime) -> crate::RunSpec {
        use crate::{ModelSpec, RunSpec};
        let model = match self {
            ModelKind::MainThread => ModelSpec::MainThread,
            ModelKind::Threads => ModelSpec::Threads {
                strategy: ThreadStrategy::default(),
                sharing: Sharing::default(),
            },
            ModelKind::ChildProcess => ModelSpec::ChildProcess {
                round_trips: DEFAULT_ROUND_TRIPS,
                serialization: Serialization::default(),
            },
            ModelKind::Cluster => ModelSpec::Cluster {
                policy: SchedPolicy::default(),
                requests: DEFAULT_REQUESTS,
                concurrency: DEFAULT_CONCURRENCY,
                keep_alive: true,
                kill: None,
            },
            ModelKind::Scaling => ModelSpec::Scaling {
                instances: DEFAULT_INSTANCES,
                balancer: crate::BalancerKind::default(),
                balance: crate::Balance::default(),
                requests: DEFAULT_REQUESTS,
                concurrency: DEFAULT_CONCURRENCY,
                keep_alive: true,
                retries: true,
                faults: Vec::new(),
            },
        };
        let kind = self.workloads()[0];
        RunSpec {
            runtime,
            model,
            workload: kind.with_size(kind.default_size(), Program::Uname),
            workers: self.default_workers(),
        }
    }
}

/// libuv's default thread pool size (`UV_THREADPOOL_SIZE` unset).
pub const DEFAULT_POOL_THREADS: u32 = 4;

impl WorkloadKind {
    /// True for a workload only Node.js can run (the Rust engine has no
    /// libuv thread pool): its lab runs on Node.js alone and says so.
    pub fn node_only(self) -> bool {
        self == WorkloadKind::PoolHash
    }
}

/// Where an allow-listed program's argument vector takes the one path it
/// may be given: the directory of the site being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A fixed argument.
    Text(&'static str),
    /// The served site's directory.
    SiteDir,
}

impl Program {
    /// Every allow-listed program.
    pub const ALL: [Program; 4] = [
        Program::Uname,
        Program::ListPublic,
        Program::PythonVersion,
        Program::NodeVersion,
    ];

    /// The name on the wire (`"list_public"`).
    pub fn name(self) -> &'static str {
        match self {
            Program::Uname => "uname",
            Program::ListPublic => "list_public",
            Program::PythonVersion => "python_version",
            Program::NodeVersion => "node_version",
        }
    }

    /// The executable, looked up on `PATH`.
    pub fn binary(self) -> &'static str {
        match self {
            Program::Uname => "uname",
            Program::ListPublic => "ls",
            Program::PythonVersion => "python3",
            Program::NodeVersion => "node",
        }
    }

    /// The fixed arguments: the learner picks a program, never a command line.
    pub fn args(self) -> &'static [Arg] {
        match self {
            Program::Uname => &[Arg::Text("-a")],
            Program::ListPublic => &[Arg::Text("-l"), Arg::SiteDir],
            Program::PythonVersion | Program::NodeVersion => &[Arg::Text("--version")],
        }
    }

    /// The command line as a person would type it, for menus and tables.
    pub fn command_line(self) -> &'static str {
        match self {
            Program::Uname => "uname -a",
            Program::ListPublic => "ls -l (the site's files)",
            Program::PythonVersion => "python3 --version",
            Program::NodeVersion => "node --version",
        }
    }
}

impl crate::BalancerKind {
    /// Every balancer.
    pub const ALL: [crate::BalancerKind; 2] =
        [crate::BalancerKind::Nginx, crate::BalancerKind::Haproxy];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            crate::BalancerKind::Nginx => "nginx",
            crate::BalancerKind::Haproxy => "haproxy",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            crate::BalancerKind::Nginx => "nginx",
            crate::BalancerKind::Haproxy => "HAProxy",
        }
    }

    /// The executable, and the Debian package that has it.
    pub fn binary(self) -> (&'static str, &'static str) {
        match self {
            crate::BalancerKind::Nginx => ("nginx", "nginx-light"),
            crate::BalancerKind::Haproxy => ("haproxy", "haproxy"),
        }
    }
}

impl crate::Balance {
    /// Every balancing method.
    pub const ALL: [crate::Balance; 3] = [
        crate::Balance::RoundRobin,
        crate::Balance::LeastConn,
        crate::Balance::Hash,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            crate::Balance::RoundRobin => "round_robin",
            crate::Balance::LeastConn => "least_conn",
            crate::Balance::Hash => "hash",
        }
    }

    /// A few words for tables and history.
    pub fn short(self) -> &'static str {
        match self {
            crate::Balance::RoundRobin => "round robin",
            crate::Balance::LeastConn => "least connections",
            crate::Balance::Hash => "hash by client",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            crate::Balance::RoundRobin => "Round robin: each request to the next instance",
            crate::Balance::LeastConn => "Least connections: to the least busy instance",
            crate::Balance::Hash => "Hash by client address: sticky",
        }
    }
}

impl crate::Fault {
    /// The fault in words, for timelines and tables.
    pub fn describe(self) -> String {
        match self {
            crate::Fault::KillWorker { instance, worker } => {
                format!("kill worker {worker} of instance {instance}")
            }
            crate::Fault::KillInstance { instance } => format!("kill instance {instance}"),
            crate::Fault::RestartInstance { instance } => {
                format!("bring instance {instance} back")
            }
            crate::Fault::KillBalancer => "kill the balancer".into(),
        }
    }
}

impl SchedPolicy {
    /// Every policy.
    pub const ALL: [SchedPolicy; 3] = [
        SchedPolicy::RoundRobin,
        SchedPolicy::SharedSocket,
        SchedPolicy::ReusePort,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SchedPolicy::RoundRobin => "round_robin",
            SchedPolicy::SharedSocket => "shared_socket",
            SchedPolicy::ReusePort => "reuse_port",
        }
    }

    /// A few words for tables and history.
    pub fn short(self) -> &'static str {
        match self {
            SchedPolicy::RoundRobin => "round robin",
            SchedPolicy::SharedSocket => "shared socket",
            SchedPolicy::ReusePort => "SO_REUSEPORT",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            SchedPolicy::RoundRobin => "Round robin: the primary hands out connections",
            SchedPolicy::SharedSocket => "Shared socket: workers race to accept",
            SchedPolicy::ReusePort => "SO_REUSEPORT: the kernel hashes connections",
        }
    }
}

impl ThreadStrategy {
    /// Every strategy.
    pub const ALL: [ThreadStrategy; 2] = [ThreadStrategy::Spawn, ThreadStrategy::Pool];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ThreadStrategy::Spawn => "spawn",
            ThreadStrategy::Pool => "pool",
        }
    }

    /// A few words for tables and history.
    pub fn short(self) -> &'static str {
        match self {
            ThreadStrategy::Spawn => "fresh threads",
            ThreadStrategy::Pool => "pool",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            ThreadStrategy::Spawn => "New threads for every run",
            ThreadStrategy::Pool => "A pool, started once and reused",
        }
    }
}

impl Serialization {
    /// Both encodings.
    pub const ALL: [Serialization; 2] = [Serialization::Json, Serialization::Advanced];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Serialization::Json => "json",
            Serialization::Advanced => "advanced",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            Serialization::Json => "JSON (fork's default)",
            Serialization::Advanced => "serialization: 'advanced' (structured clone; Node.js only)",
        }
    }
}

impl Sharing {
    /// Every way of reporting.
    pub const ALL: [Sharing; 2] = [Sharing::Messages, Sharing::SharedMemory];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Messages => "messages",
            Sharing::SharedMemory => "shared_memory",
        }
    }

    /// A few words for tables and history.
    pub fn short(self) -> &'static str {
        match self {
            Sharing::Messages => "messages",
            Sharing::SharedMemory => "shared memory",
        }
    }

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            Sharing::Messages => "Messages on a channel",
            Sharing::SharedMemory => "Shared memory (atomics), no messages",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue's names are the wire's names: serde and these tables
    /// can never disagree.
    #[test]
    fn names_match_the_wire() {
        let wire = |v: serde_json::Value| v.as_str().unwrap().to_string();
        for m in ModelKind::ALL {
            assert_eq!(wire(serde_json::to_value(m).unwrap()), m.name());
        }
        for w in WorkloadKind::ALL {
            assert_eq!(wire(serde_json::to_value(w).unwrap()), w.name());
            let built = w.with_size(w.default_size(), Program::Uname);
            assert_eq!(built.kind(), w);
            assert_eq!(
                serde_json::to_value(&built).unwrap()["kind"],
                serde_json::Value::String(w.name().into())
            );
        }
        for p in Program::ALL {
            assert_eq!(wire(serde_json::to_value(p).unwrap()), p.name());
        }
        for p in SchedPolicy::ALL {
            assert_eq!(wire(serde_json::to_value(p).unwrap()), p.name());
        }
        for s in ThreadStrategy::ALL {
            assert_eq!(wire(serde_json::to_value(s).unwrap()), s.name());
        }
        for s in Sharing::ALL {
            assert_eq!(wire(serde_json::to_value(s).unwrap()), s.name());
        }
        for s in Serialization::ALL {
            assert_eq!(wire(serde_json::to_value(s).unwrap()), s.name());
        }
        for r in Runtime::ALL {
            assert_eq!(wire(serde_json::to_value(r).unwrap()), r.name());
        }
    }

    #[test]
    fn every_workload_belongs_to_some_model() {
        for w in WorkloadKind::ALL {
            assert!(ModelKind::ALL.iter().any(|m| m.accepts(w)), "{w:?}");
        }
        assert!(!ModelKind::Threads.accepts(WorkloadKind::Program));
        assert!(ModelKind::ChildProcess.accepts(WorkloadKind::Program));
    }
}
