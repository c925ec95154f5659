//! A soak on one real server binary: R runs drawn at random (from a seed
//! that is printed, so a failure can be replayed) across the four models and
//! both runtimes, over a handful of connections at once. Each run completes,
//! or is cancelled after a short random delay, or has its socket dropped
//! mid-run, or (a cluster) has a worker killed mid-run, or outlives the
//! run deadline. Malformed frames of every kind are sent between runs and
//! during them, and each must get the error the protocol names (or, for a
//! frame past the WebSocket layer's cap, an error and a 1009 close) while
//! the connection, or at least the server, stays usable.
//!
//! Afterwards nothing may be left: no process in any group a run used, no
//! child of the server, no zombie, no process carrying this server's run
//! marker, and no more open files than before.
//!
//! `make test` runs 40 runs; `make soak` runs 1000 (`SPAWNLAB_SOAK_RUNS`);
//! `SPAWNLAB_SOAK_SEED` replays another draw.

use anyhow::{bail, ensure, Context, Result};
use protocol::{
    Balance, BalancerKind, ClientMessage, ErrorCode, Fault, KillWorker, ModelKind, ModelSpec,
    Outcome, Program, RunId, RunSpec, RunSummary, Runtime, SchedPolicy, Serialization, ServerEvent,
    Sharing, ThreadStrategy, TimedFault, WorkResult, Workload,
};
use spawnlab_tests::{
    children_of, eventually, footprint, group_members, process, processes, Frame, RawClient,
    ServerProcess,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs in `make test`; `SPAWNLAB_SOAK_RUNS` overrides it.
const RUNS: usize = 40;

/// The seed unless `SPAWNLAB_SOAK_SEED` gives another.
const SEED: u64 = 0x5eed_0012;

/// Connections driving runs at once.
const CONNECTIONS: usize = 4;

/// The server's run deadline for this soak. An ordinary run here takes
/// under a second alone; the longest, a Node.js round-robin cluster with a
/// worker killed, about 5.5 s (the request the dead worker was handed hangs
/// until the load generator's 5 s timeout: Node's primary keeps the
/// connection, waiting for an answer the dead worker never sends). A
/// deadline run waits at least 10 s (the longest wait the limits allow) or
/// sends a minute of requests, so it is sure to outlive this.
const DEADLINE_SECS: u64 = 9;

/// The longest any one frame may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(90);

/// How long a stopped run's processes may take to be gone.
const REAP: Duration = Duration::from_secs(10);

/// Files the server may hold at the end beyond what it held before.
const FILE_SLACK: usize = 8;

/// The largest frame the protocol reads.
const MAX_MESSAGE: usize = 4096;

/// SplitMix64: small, deterministic, good enough to draw test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.next() as usize % from.len()]
    }
}

/// What becomes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    /// It runs to the end.
    Complete,
    /// `cancel` after this many milliseconds.
    Cancel { after_ms: u64 },
    /// The socket goes, after this many milliseconds or, when `None`, once
    /// the first worker is up; `abrupt` drops the TCP connection without a
    /// close frame.
    Disconnect { after_ms: Option<u64>, abrupt: bool },
    /// A cluster: `kill` this worker once the load is running.
    Kill { worker: u32 },
    /// It outlives the deadline. On the way, the connection's own limits
    /// are tried: the same id again, a second run (queued, then
    /// cancelled) and a third (refused).
    Deadline,
}

impl Fate {
    fn name(self) -> &'static str {
        match self {
            Fate::Complete => "complete",
            Fate::Cancel { .. } => "cancel",
            Fate::Disconnect { .. } => "disconnect",
            Fate::Kill { .. } => "kill a worker",
            Fate::Deadline => "deadline",
        }
    }
}

/// One drawn run.
#[derive(Debug, Clone)]
struct Plan {
    spec: RunSpec,
    fate: Fate,
    /// Bad frames sent before the run, and one sent while it runs.
    before: Vec<usize>,
    during: Option<usize>,
    /// A frame of a MiB before the run: an error, a 1009 close, a new
    /// connection.
    huge_first: bool,
}

fn spec(runtime: Runtime, model: ModelSpec, workload: Workload, workers: u32) -> RunSpec {
    RunSpec {
        runtime,
        model,
        workload,
        workers,
    }
}

/// A small workload `model` accepts: well under a second alone.
fn small_workload(rng: &mut Rng, model: ModelKind, runtime: Runtime) -> Workload {
    let mut kinds: Vec<u8> = match model {
        ModelKind::MainThread => vec![0, 1, 2, 3],
        ModelKind::Threads => vec![0, 1, 2],
        ModelKind::ChildProcess => vec![0, 1, 2, 4],
        ModelKind::Cluster | ModelKind::Scaling => vec![5, 6, 7],
    };
    if model == ModelKind::MainThread && runtime == Runtime::Node {
        kinds.push(8);
    }
    match rng.pick(&kinds) {
        0 => Workload::Primes {
            below: rng.range(2, 400_000),
        },
        1 => Workload::Sha256Chain {
            rounds: rng.range(1, 60_000),
        },
        2 => Workload::Sleep {
            ms: rng.range(0, 300),
        },
        3 => Workload::BlockingWait {
            ms: rng.range(0, 300),
        },
        4 => Workload::Program {
            program: rng.pick(&[Program::Uname, Program::ListPublic, Program::NodeVersion]),
        },
        5 => Workload::HttpHello,
        6 => Workload::HttpCpu { ms: 1 },
        7 => Workload::HttpSleep {
            ms: rng.range(0, 2),
        },
        _ => Workload::PoolHash {
            calls: rng.range(1, 6) as u32,
            pool_threads: rng.range(1, 4) as u32,
        },
    }
}

fn policy(rng: &mut Rng, runtime: Runtime) -> SchedPolicy {
    // reuse_port needs Node v22.12; the Node.js this runs may lack it (its
    // refusal is checked in node.rs).
    match runtime {
        Runtime::Rust => rng.pick(&[
            SchedPolicy::RoundRobin,
            SchedPolicy::SharedSocket,
            SchedPolicy::ReusePort,
        ]),
        Runtime::Node => rng.pick(&[SchedPolicy::RoundRobin, SchedPolicy::SharedSocket]),
    }
}

/// A small run of `model` on `runtime`.
fn small_run(rng: &mut Rng, model: ModelKind, runtime: Runtime) -> RunSpec {
    let workload = small_workload(rng, model, runtime);
    match model {
        ModelKind::MainThread => spec(runtime, ModelSpec::MainThread, workload, 1),
        ModelKind::Threads => spec(
            runtime,
            ModelSpec::Threads {
                strategy: rng.pick(&[ThreadStrategy::Spawn, ThreadStrategy::Pool]),
                sharing: rng.pick(&[Sharing::Messages, Sharing::SharedMemory]),
            },
            workload,
            rng.range(1, 4) as u32,
        ),
        ModelKind::ChildProcess => spec(
            runtime,
            ModelSpec::ChildProcess {
                round_trips: rng.range(0, 300) as u32,
                serialization: match runtime {
                    Runtime::Node => rng.pick(&[Serialization::Json, Serialization::Advanced]),
                    Runtime::Rust => Serialization::Json,
                },
            },
            workload,
            rng.range(1, 3) as u32,
        ),
        ModelKind::Cluster => {
            let workers = rng.range(1, 3) as u32;
            // At most 600 requests of at most 2 ms, 4 or more at a time.
            let requests = rng.range(100, 600) as u32;
            // Now and then the spec itself asks for a worker to be killed.
            let kill = rng.chance(20).then(|| KillWorker {
                worker: rng.range(0, u64::from(workers) - 1) as u32,
                after_requests: rng.range(0, u64::from(requests) - 1) as u32,
            });
            spec(
                runtime,
                ModelSpec::Cluster {
                    policy: policy(rng, runtime),
                    requests,
                    concurrency: rng.range(4, 32) as u32,
                    keep_alive: rng.chance(50),
                    kill,
                },
                workload,
                workers,
            )
        }
        ModelKind::Scaling => small_scaling(rng, runtime, workload),
    }
}

/// A small scaling run: two or three instances of one or two workers
/// behind either balancer, now and then with a fault planned.
fn small_scaling(rng: &mut Rng, runtime: Runtime, workload: Workload) -> RunSpec {
    let instances = rng.range(2, 3) as u32;
    let workers = rng.range(1, 2) as u32;
    let requests = rng.range(100, 600) as u32;
    let after_requests = rng.range(0, u64::from(requests) - 1) as u32;
    let instance = rng.range(0, u64::from(instances) - 1) as u32;
    let faults = match rng.range(0, 9) {
        0 => vec![TimedFault {
            after_requests,
            fault: Fault::KillInstance { instance },
        }],
        1 => vec![TimedFault {
            after_requests,
            fault: Fault::KillWorker {
                instance,
                worker: rng.range(0, u64::from(workers) - 1) as u32,
            },
        }],
        2 => vec![TimedFault {
            after_requests,
            fault: Fault::KillBalancer,
        }],
        _ => Vec::new(),
    };
    spec(
        runtime,
        ModelSpec::Scaling {
            instances,
            balancer: rng.pick(&BalancerKind::ALL),
            balance: rng.pick(&Balance::ALL),
            requests,
            concurrency: rng.range(4, 16) as u32,
            keep_alive: rng.chance(50),
            retries: rng.chance(50),
            faults,
        },
        workload,
        workers,
    )
}

/// A run sure to outlive the deadline, using little CPU.
fn long_run(rng: &mut Rng, runtime: Runtime) -> RunSpec {
    let ten_s = Workload::Sleep { ms: 10_000 };
    match rng.range(0, 4) {
        0 => spec(runtime, ModelSpec::MainThread, ten_s, 1),
        1 => spec(
            runtime,
            ModelSpec::MainThread,
            Workload::BlockingWait { ms: 10_000 },
            1,
        ),
        2 => spec(
            runtime,
            ModelSpec::Threads {
                strategy: ThreadStrategy::Spawn,
                sharing: Sharing::Messages,
            },
            ten_s,
            1,
        ),
        3 => spec(
            runtime,
            ModelSpec::ChildProcess {
                round_trips: 0,
                serialization: Serialization::Json,
            },
            ten_s,
            1,
        ),
        // 50,000 requests of 20 ms, 16 at a time: about a minute.
        _ => spec(
            runtime,
            ModelSpec::Cluster {
                policy: SchedPolicy::RoundRobin,
                requests: 50_000,
                concurrency: 16,
                keep_alive: true,
                kill: None,
            },
            Workload::HttpSleep { ms: 20 },
            2,
        ),
    }
}

/// A cluster whose load lasts about a second, long enough to kill a worker
/// in the middle of it.
fn killable_run(rng: &mut Rng, runtime: Runtime) -> RunSpec {
    spec(
        runtime,
        ModelSpec::Cluster {
            policy: policy(rng, runtime),
            requests: 1_000,
            concurrency: 4,
            keep_alive: rng.chance(50),
            kill: None,
        },
        Workload::HttpSleep { ms: 3 },
        rng.range(2, 3) as u32,
    )
}

fn draw(rng: &mut Rng) -> Plan {
    let runtime = rng.pick(&Runtime::ALL);
    // The four models of one machine, and now and then the scaling lab.
    let model = if rng.chance(10) {
        ModelKind::Scaling
    } else {
        rng.pick(&ModelKind::ALL)
    };
    let roll = rng.range(0, 99);
    let (fate, spec) = match roll {
        0..=41 => (Fate::Complete, small_run(rng, model, runtime)),
        42..=61 => (
            Fate::Cancel {
                after_ms: rng.range(0, 800),
            },
            small_run(rng, model, runtime),
        ),
        62..=76 => (
            Fate::Disconnect {
                after_ms: rng.chance(50).then(|| rng.range(0, 800)),
                abrupt: rng.chance(50),
            },
            small_run(rng, model, runtime),
        ),
        77..=91 => {
            let spec = killable_run(rng, runtime);
            let worker = rng.range(0, u64::from(spec.workers) - 1) as u32;
            (Fate::Kill { worker }, spec)
        }
        _ => (Fate::Deadline, long_run(rng, runtime)),
    };
    let before = (0..rng.range(0, 2))
        .map(|_| rng.range(0, BAD_KINDS as u64 - 1) as usize)
        .collect();
    let during = (!matches!(fate, Fate::Disconnect { .. }) && rng.chance(30))
        .then(|| rng.range(0, BAD_KINDS as u64 - 1) as usize);
    Plan {
        spec,
        fate,
        before,
        during,
        huge_first: rng.chance(5),
    }
}

/// A frame as sent.
enum Bad {
    Text(String),
    Binary(Vec<u8>),
}

/// The error a frame must get back.
#[derive(Debug, Clone)]
struct Expect {
    what: String,
    codes: Vec<ErrorCode>,
    run: Option<RunId>,
    field: Option<&'static str>,
}

/// How many kinds of bad frame [`bad`] makes.
const BAD_KINDS: usize = 24;

/// Bad frame `kind`, naming run `id` where it names one (an id no run of
/// the connection uses), and what the server must answer.
fn bad(
    kind: usize,
    id: RunId,
) -> (
    &'static str,
    Bad,
    Vec<ErrorCode>,
    Option<RunId>,
    Option<&'static str>,
) {
    use ErrorCode::*;
    let good = r#"{"runtime":"rust","model":{"kind":"threads"},"workload":{"kind":"primes","below":1000},"workers":1}"#;
    let start = |spec: &str| format!(r#"{{"type":"start","id":{id},"spec":{spec}}}"#);
    let text = |s: String| Bad::Text(s);
    match kind {
        0 => (
            "garbage text",
            text("not json at all".into()),
            vec![Malformed],
            None,
            None,
        ),
        1 => (
            "an empty frame",
            text(String::new()),
            vec![Malformed],
            None,
            None,
        ),
        2 => (
            "a JSON array",
            text("[1,2,3]".into()),
            vec![Malformed],
            None,
            None,
        ),
        3 => (
            "JSON null",
            text("null".into()),
            vec![Malformed],
            None,
            None,
        ),
        4 => (
            "an unknown message type",
            text(format!(r#"{{"type":"launch","id":{id}}}"#)),
            vec![Malformed],
            Some(id),
            None,
        ),
        5 => (
            "an id of the wrong type",
            text(format!(r#"{{"type":"start","id":"seven","spec":{good}}}"#)),
            vec![Malformed],
            None,
            None,
        ),
        6 => (
            "a negative id",
            text(format!(r#"{{"type":"cancel","id":-{id}}}"#)),
            vec![Malformed],
            None,
            None,
        ),
        7 => (
            "an id past u64",
            text(r#"{"type":"cancel","id":18446744073709551616}"#.into()),
            vec![Malformed],
            None,
            None,
        ),
        8 => (
            "workers of the wrong type",
            text(start(&good.replace(r#""workers":1"#, r#""workers":"two""#))),
            vec![Malformed],
            Some(id),
            Some("spec.workers"),
        ),
        9 => (
            "an unknown field in a message",
            text(format!(
                r#"{{"type":"cancel","id":{id},"shell":"rm -rf /"}}"#
            )),
            vec![Malformed],
            Some(id),
            None,
        ),
        10 => (
            "an unknown field in a spec",
            text(start(&good.replace(
                r#""workers":1"#,
                r#""workers":1,"priority":"high""#,
            ))),
            vec![Malformed],
            Some(id),
            None,
        ),
        11 => (
            "an unknown workload",
            text(start(&good.replace("primes", "rm -rf /"))),
            vec![Malformed],
            Some(id),
            Some("spec.workload.kind"),
        ),
        12 => (
            "zero workers",
            text(start(&good.replace(r#""workers":1"#, r#""workers":0"#))),
            vec![InvalidField],
            Some(id),
            Some("spec.workers"),
        ),
        13 => (
            "too many workers",
            text(start(
                &good.replace(r#""workers":1"#, r#""workers":4294967295"#),
            )),
            vec![InvalidField],
            Some(id),
            Some("spec.workers"),
        ),
        14 => (
            "primes below 1",
            text(start(&good.replace(r#""below":1000"#, r#""below":1"#))),
            vec![InvalidField],
            Some(id),
            Some("spec.workload.below"),
        ),
        15 => (
            "a sleep past the limit",
            text(start(&good.replace(
                r#"{"kind":"primes","below":1000}"#,
                r#"{"kind":"sleep","ms":10001}"#,
            ))),
            vec![InvalidField],
            Some(id),
            Some("spec.workload.ms"),
        ),
        16 => (
            "two workers on the main thread",
            text(start(
                r#"{"runtime":"node","model":{"kind":"main_thread"},"workload":{"kind":"sleep","ms":1},"workers":2}"#,
            )),
            vec![InvalidField],
            Some(id),
            Some("spec.workers"),
        ),
        17 => (
            "a workload the model does not take",
            text(start(
                r#"{"runtime":"rust","model":{"kind":"cluster","requests":10,"concurrency":1},"workload":{"kind":"primes","below":1000},"workers":1}"#,
            )),
            vec![InvalidField],
            Some(id),
            Some("spec.workload.kind"),
        ),
        18 => (
            "cluster concurrency past the limit",
            text(start(
                r#"{"runtime":"node","model":{"kind":"cluster","requests":10,"concurrency":100000},"workload":{"kind":"http_hello"},"workers":1}"#,
            )),
            vec![InvalidField],
            Some(id),
            Some("spec.model.concurrency"),
        ),
        19 => (
            "pool hashes on the Rust engine",
            text(start(
                r#"{"runtime":"rust","model":{"kind":"main_thread"},"workload":{"kind":"pool_hash","calls":4,"pool_threads":2},"workers":1}"#,
            )),
            vec![InvalidField],
            Some(id),
            Some("spec.runtime"),
        ),
        20 => (
            "cancel of an unknown run",
            text(format!(r#"{{"type":"cancel","id":{id}}}"#)),
            vec![UnknownRun],
            Some(id),
            Some("id"),
        ),
        21 => (
            "kill in an unknown run",
            text(format!(r#"{{"type":"kill","id":{id},"worker":0}}"#)),
            vec![UnknownRun],
            Some(id),
            Some("id"),
        ),
        22 => (
            "a binary frame",
            Bad::Binary(br#"{"type":"cancel","id":1}"#.to_vec()),
            vec![Malformed],
            None,
            None,
        ),
        _ => (
            "a frame past the protocol's 4 KiB, under the WebSocket cap",
            text(format!(
                r#"{{"type":"cancel","id":{id},"pad":"{}"}}"#,
                "x".repeat(MAX_MESSAGE + 1_000)
            )),
            vec![TooLarge],
            None,
            None,
        ),
    }
}

/// What one connection did and saw, for the report.
#[derive(Default)]
struct Tally {
    /// Runs by fate, and by how they ended.
    fates: BTreeMap<&'static str, usize>,
    outcomes: BTreeMap<String, usize>,
    by_runtime: BTreeMap<&'static str, usize>,
    by_model: BTreeMap<&'static str, usize>,
    /// Cancels that landed (the run ended cancelled), and that came after
    /// the end.
    cancels_landed: usize,
    cancels_late: usize,
    /// Kills that ended a worker, of those sent; respawns seen.
    kills_landed: usize,
    kills_sent: usize,
    respawns: u64,
    /// Spec-level kills (`kill` in the cluster spec) among runs.
    spec_kills: usize,
    disconnects: usize,
    deadlines: usize,
    /// Bad frames sent, by what they were; 1 MiB frames.
    bad: BTreeMap<&'static str, usize>,
    huge: usize,
    /// Process groups a run used, checked gone after it.
    groups: usize,
    /// Checks that a stopped run's groups are empty, to await at the end.
    reaped: Vec<tokio::task::JoinHandle<Result<()>>>,
}

/// One connection's socket and what it is waiting for.
struct Conn {
    client: RawClient,
    url: String,
    server: std::net::SocketAddr,
    server_pid: u32,
    /// Groups not to count as a run's: the server's and this test's.
    own_groups: [u32; 2],
    /// Errors the frames sent must get back, in order.
    expect: VecDeque<Expect>,
    /// Runs whose late `cancel` or `kill` may (or may not) get `unknown_run`.
    strays: BTreeSet<RunId>,
    /// Events of runs in flight, and the groups their processes are in.
    runs: HashMap<RunId, Vec<ServerEvent>>,
    groups: HashMap<RunId, BTreeSet<u32>>,
    finished: HashMap<RunId, (RunSummary, Vec<ServerEvent>)>,
    next_bad: RunId,
    next_sync: RunId,
}

impl Conn {
    async fn open(
        url: String,
        server: std::net::SocketAddr,
        server_pid: u32,
        own_groups: [u32; 2],
    ) -> Result<Self> {
        let (client, hello) = RawClient::connect(&url, server, PATIENCE).await?;
        ensure!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        Ok(Conn {
            client,
            url,
            server,
            server_pid,
            own_groups,
            expect: VecDeque::new(),
            strays: BTreeSet::new(),
            runs: HashMap::new(),
            groups: HashMap::new(),
            finished: HashMap::new(),
            next_bad: 1_000_000,
            next_sync: 2_000_000,
        })
    }

    /// A new socket for the same learner, as a reloaded tab opens.
    async fn reconnect(&mut self) -> Result<()> {
        let (client, hello) = RawClient::connect(&self.url, self.server, PATIENCE).await?;
        ensure!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        self.client = client;
        self.expect.clear();
        self.strays.clear();
        self.runs.clear();
        Ok(())
    }

    /// Read one frame, waiting until `until` at most; false if none came.
    async fn pump(&mut self, until: Instant) -> Result<bool> {
        let left = until.saturating_duration_since(Instant::now());
        let ev = match self.client.frame(left).await? {
            None => return Ok(false),
            Some(Frame::Event(ev)) => ev,
            Some(other) => bail!("the connection gave {other:?}"),
        };
        self.on_event(ev)?;
        Ok(true)
    }

    fn on_event(&mut self, ev: ServerEvent) -> Result<()> {
        if let ServerEvent::Error {
            run,
            code,
            field,
            message,
        } = &ev
        {
            if *code != ErrorCode::RunFailed {
                // A direct answer to a frame: the next one expected, or a
                // late cancel's or kill's `unknown_run`.
                if let Some(want) = self.expect.front() {
                    if want.codes.contains(code)
                        && want.run == *run
                        && want.field.is_none_or(|f| field.as_deref() == Some(f))
                    {
                        if *code == ErrorCode::TooLarge {
                            ensure!(
                                message.contains(&format!("at most {MAX_MESSAGE} bytes")),
                                "{message}"
                            );
                        }
                        self.expect.pop_front();
                        return Ok(());
                    }
                }
                if *code == ErrorCode::UnknownRun && run.is_some_and(|r| self.strays.remove(&r)) {
                    return Ok(());
                }
                bail!(
                    "unexpected {ev:?}; waiting for the answer to {}",
                    self.expect.front().map_or("nothing", |e| e.what.as_str())
                );
            }
        }
        let Some(run) = ev.run() else {
            bail!("unexpected {ev:?}");
        };
        let Some(events) = self.runs.get_mut(&run) else {
            bail!("{ev:?} for run {run}, which is not in flight");
        };
        // Where the run's processes are, while they are there to ask.
        let pid = match &ev {
            ServerEvent::WorkerSpawned { pid, .. } | ServerEvent::RuntimeReady { pid, .. } => {
                Some(*pid)
            }
            ServerEvent::WorkerRespawned { pid, .. }
            | ServerEvent::InstanceUp { pid, .. }
            | ServerEvent::BalancerUp { pid, .. } => Some(*pid),
            _ => None,
        };
        if let Some(info) = pid.filter(|p| *p != self.server_pid).and_then(process) {
            if !self.own_groups.contains(&info.pgid) {
                self.groups.entry(run).or_default().insert(info.pgid);
            }
        }
        let done = matches!(ev, ServerEvent::RunFinished { .. });
        events.push(ev);
        if done {
            let events = self.runs.remove(&run).expect("in flight");
            let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
                unreachable!()
            };
            self.finished.insert(run, (summary.clone(), events));
        }
        Ok(())
    }

    /// Read until run `id` has finished.
    async fn finish(&mut self, id: RunId) -> Result<(RunSummary, Vec<ServerEvent>)> {
        loop {
            if let Some(done) = self.finished.remove(&id) {
                return Ok(done);
            }
            if !self.pump(Instant::now() + PATIENCE).await? {
                bail!("run {id}: nothing within {PATIENCE:?}");
            }
        }
    }

    /// Read for `dur`, or until `stop` holds of run `id`'s events so far.
    async fn watch(
        &mut self,
        id: RunId,
        dur: Duration,
        stop: impl Fn(&ServerEvent) -> bool,
    ) -> Result<()> {
        let until = Instant::now() + dur;
        let seen = |c: &Conn| {
            c.finished.contains_key(&id) || c.runs.get(&id).is_some_and(|e| e.iter().any(&stop))
        };
        while !seen(self) && self.pump(until).await? {}
        Ok(())
    }

    async fn send(&mut self, msg: &ClientMessage) -> Result<()> {
        self.client.send(msg).await
    }

    /// Send bad frame `kind` and note what must come back.
    async fn send_bad(&mut self, kind: usize, tally: &mut Tally) -> Result<()> {
        self.next_bad += 1;
        let (what, frame, codes, run, field) = bad(kind, self.next_bad);
        match frame {
            Bad::Text(text) => self.client.send_text(&text).await?,
            Bad::Binary(bytes) => self.client.send_binary(bytes).await?,
        }
        self.expect.push_back(Expect {
            what: what.into(),
            codes,
            run,
            field,
        });
        *tally.bad.entry(what).or_default() += 1;
        Ok(())
    }

    /// Settle the connection: a `cancel` of an id never used, whose
    /// `unknown_run` comes after every answer to what was sent before it.
    async fn settle(&mut self) -> Result<()> {
        self.next_sync += 1;
        let id = self.next_sync;
        self.send(&ClientMessage::Cancel { id }).await?;
        self.expect.push_back(Expect {
            what: "a cancel to settle the connection".into(),
            codes: vec![ErrorCode::UnknownRun],
            run: Some(id),
            field: Some("id"),
        });
        while !self.expect.is_empty() {
            if !self.pump(Instant::now() + PATIENCE).await? {
                bail!(
                    "no answer within {PATIENCE:?}; waiting for the answer to {:?}",
                    self.expect.front().map(|e| &e.what)
                );
            }
        }
        self.strays.clear();
        ensure!(
            self.runs.is_empty(),
            "runs still in flight: {:?}",
            self.runs.keys()
        );
        Ok(())
    }

    /// A frame of a MiB: an error, then a close with code 1009; the
    /// learner opens a new connection.
    async fn send_huge(&mut self, tally: &mut Tally) -> Result<()> {
        let big = format!(
            r#"{{"type":"start","id":1,"pad":"{}"}}"#,
            "x".repeat(1 << 20)
        );
        // The server stops reading part-way, so the send may not complete.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.send_text(&big)).await;
        match self.client.frame(PATIENCE).await? {
            Some(Frame::Event(ServerEvent::Error {
                code: ErrorCode::TooLarge,
                message,
                ..
            })) => {
                ensure!(
                    message.contains(&format!("at most {MAX_MESSAGE} bytes"))
                        && message.contains(&big.len().to_string()),
                    "{message}"
                );
            }
            other => bail!("a 1 MiB frame got {other:?}, not a too_large error"),
        }
        match self.client.frame(PATIENCE).await? {
            Some(Frame::Close(1009, reason)) => {
                ensure!(reason.contains(&MAX_MESSAGE.to_string()), "{reason}")
            }
            other => bail!("a 1 MiB frame got {other:?}, not a 1009 close"),
        }
        tally.huge += 1;
        self.reconnect().await
    }

    /// After run `id` has ended (or its socket has gone), every process
    /// group it used must empty.
    fn check_reaped(&mut self, id: RunId, tally: &mut Tally) {
        let groups = self.groups.remove(&id).unwrap_or_default();
        if groups.is_empty() {
            return;
        }
        tally.groups += groups.len();
        tally.reaped.push(tokio::spawn(async move {
            for pgid in groups {
                eventually(REAP, "a stopped run's processes to go", || async {
                    Ok(group_members(pgid).is_empty().then_some(()))
                })
                .await
                .with_context(|| {
                    format!("run {id}: still in group {pgid}: {:?}", group_members(pgid))
                })?;
            }
            Ok(())
        }));
    }
}

/// Check what a run that ended on its own (or was cancelled) reported.
/// Wait for run `id` to finish, check its summary against `plan`, and
/// require that it completed.
async fn finish_completed(
    conn: &mut Conn,
    id: RunId,
    plan: &Plan,
) -> Result<(RunSummary, Vec<ServerEvent>)> {
    let (summary, events) = conn.finish(id).await?;
    check_summary(plan, &summary, &events)?;
    ensure!(
        summary.outcome == Outcome::Completed,
        "ended {:?}: {}",
        summary.outcome,
        brief(&events)
    );
    Ok((summary, events))
}

fn check_summary(plan: &Plan, summary: &RunSummary, events: &[ServerEvent]) -> Result<()> {
    match summary.outcome {
        Outcome::Completed if matches!(plan.spec.workload, Workload::Program { .. }) => {
            // Programs' outputs are not combined into the summary (it says
            // `incomplete` for more than one): each worker reports its own.
            let exits: Vec<Option<i32>> = events
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::WorkerFinished {
                        result: WorkResult::Program { exit_code, .. },
                        ..
                    } => Some(*exit_code),
                    _ => None,
                })
                .collect();
            ensure!(
                exits.len() == plan.spec.workers as usize && exits.iter().all(|e| *e == Some(0)),
                "every program ran and exited 0: {exits:?}"
            );
        }
        Outcome::Completed => {
            ensure!(
                summary.result != WorkResult::Incomplete,
                "a completed run with no result: {summary:?}"
            );
            if let Workload::Primes { below } = plan.spec.workload {
                ensure!(
                    summary.result
                        == WorkResult::Primes {
                            count: primes_below(below)
                        },
                    "primes below {below}: {:?}",
                    summary.result
                );
            }
            if let ModelSpec::Cluster { requests, kill, .. } = plan.spec.model {
                let stats = events
                    .iter()
                    .find_map(|e| match e {
                        ServerEvent::LoadFinished { stats, .. } => Some(stats),
                        _ => None,
                    })
                    .context("a completed cluster run without load_finished")?;
                ensure!(
                    stats.completed + stats.errors == u64::from(requests),
                    "every request accounted for: {stats:?}"
                );
                if kill.is_none() && !matches!(plan.fate, Fate::Kill { .. }) {
                    ensure!(stats.errors == 0, "no worker killed, yet {stats:?}");
                }
            }
            if let ModelSpec::Scaling {
                requests,
                ref faults,
                ..
            } = plan.spec.model
            {
                let stats = events
                    .iter()
                    .find_map(|e| match e {
                        ServerEvent::ScalingFinished { stats, .. } => Some(stats),
                        _ => None,
                    })
                    .context("a completed scaling run without scaling_finished")?;
                ensure!(
                    stats.completed + stats.errors == u64::from(requests),
                    "every request accounted for: {stats:?}"
                );
                if faults.is_empty() {
                    ensure!(stats.errors == 0, "nothing broken, yet {stats:?}");
                }
            }
        }
        Outcome::Cancelled => ensure!(summary.result == WorkResult::Incomplete),
        other => bail!("ended {other:?}: {}", brief(events)),
    }
    Ok(())
}

/// A run's events in short, for a failure's message: everything but the
/// many progress reports.
fn brief(events: &[ServerEvent]) -> String {
    events
        .iter()
        .filter(|e| {
            !matches!(
                e,
                ServerEvent::Progress { .. }
                    | ServerEvent::Heartbeat { .. }
                    | ServerEvent::Ping { .. }
                    | ServerEvent::Started { .. }
            )
        })
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Primes below `n`, by a sieve.
fn primes_below(n: u64) -> u64 {
    let n = n as usize;
    if n < 3 {
        return 0;
    }
    let mut composite = vec![false; n];
    let mut count = 0;
    for i in 2..n {
        if !composite[i] {
            count += 1;
            let mut j = i * i;
            while j < n {
                composite[j] = true;
                j += i;
            }
        }
    }
    count
}

/// Drive `plans` one after another on one connection.
/// What it did comes back even when a step fails, with the failure.
async fn drive(mut conn: Conn, plans: Vec<Plan>) -> (Tally, Result<()>) {
    let mut tally = Tally::default();
    let outcome = drive_all(&mut conn, plans, &mut tally).await;
    conn.client.close().await;
    (tally, outcome)
}

async fn drive_all(conn: &mut Conn, plans: Vec<Plan>, tally: &mut Tally) -> Result<()> {
    let mut next_id: RunId = 1;
    for (n, plan) in plans.into_iter().enumerate() {
        let id = next_id;
        next_id += 10;
        let what = format!("run {id} ({:?}, {:?})", plan.spec, plan.fate);
        step(conn, &plan, id, tally)
            .await
            .with_context(|| format!("step {n}: {what}"))?;
        *tally.fates.entry(plan.fate.name()).or_default() += 1;
        *tally
            .by_runtime
            .entry(plan.spec.runtime.name())
            .or_default() += 1;
        *tally.by_model.entry(plan.spec.model.name()).or_default() += 1;
        if let ModelSpec::Cluster { kill: Some(_), .. } = plan.spec.model {
            tally.spec_kills += 1;
        }
    }
    conn.settle().await
}

async fn step(conn: &mut Conn, plan: &Plan, id: RunId, tally: &mut Tally) -> Result<()> {
    if plan.huge_first {
        conn.send_huge(tally).await?;
    }
    for &kind in &plan.before {
        conn.send_bad(kind, tally).await?;
    }
    if !plan.before.is_empty() {
        conn.settle().await?;
    }
    conn.send(&ClientMessage::Start {
        id,
        spec: plan.spec.clone(),
    })
    .await?;
    conn.runs.insert(id, Vec::new());
    if let Some(kind) = plan.during {
        conn.send_bad(kind, tally).await?;
    }
    let outcome = match plan.fate {
        Fate::Complete => {
            let (summary, _) = finish_completed(conn, id, plan).await?;
            Some(summary.outcome)
        }
        Fate::Cancel { after_ms } => {
            conn.watch(id, Duration::from_millis(after_ms), |_| false)
                .await?;
            let ended_first = conn.finished.contains_key(&id);
            conn.send(&ClientMessage::Cancel { id }).await?;
            if ended_first {
                // Too late: the run is over, and the server says so.
                conn.expect.push_back(Expect {
                    what: "a cancel after the run's end".into(),
                    codes: vec![ErrorCode::UnknownRun],
                    run: Some(id),
                    field: Some("id"),
                });
            } else {
                // It may still end on its own before the cancel is read.
                conn.strays.insert(id);
            }
            let (summary, events) = conn.finish(id).await?;
            check_summary(plan, &summary, &events)?;
            if summary.outcome == Outcome::Cancelled {
                tally.cancels_landed += 1;
            } else {
                tally.cancels_late += 1;
            }
            Some(summary.outcome)
        }
        Fate::Disconnect { after_ms, abrupt } => {
            match after_ms {
                Some(ms) => conn.watch(id, Duration::from_millis(ms), |_| false).await?,
                None => {
                    conn.watch(id, PATIENCE, |e| {
                        matches!(e, ServerEvent::WorkerSpawned { .. })
                    })
                    .await?
                }
            }
            let ended_first = conn.finished.remove(&id);
            if let Some((summary, events)) = &ended_first {
                check_summary(plan, summary, events)?;
            }
            // The learner closes the tab (a close frame) or loses the
            // network (the TCP connection just goes).
            let (client, hello) = RawClient::connect(&conn.url, conn.server, PATIENCE).await?;
            ensure!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
            let old = std::mem::replace(&mut conn.client, client);
            if abrupt {
                drop(old);
            } else {
                old.close().await;
            }
            conn.expect.clear();
            conn.strays.clear();
            conn.runs.clear();
            tally.disconnects += 1;
            ended_first.map(|(summary, _)| summary.outcome)
        }
        Fate::Kill { worker } => {
            conn.watch(id, PATIENCE, |e| {
                matches!(e, ServerEvent::ClusterTick { .. })
            })
            .await?;
            let ended_first = conn.finished.contains_key(&id);
            let workers = plan.spec.workers;
            // One out of range first: an error naming the field, unless
            // the run ended before it was read.
            conn.send(&ClientMessage::Kill {
                id,
                worker: workers,
            })
            .await?;
            conn.send(&ClientMessage::Kill { id, worker }).await?;
            tally.kills_sent += 1;
            if ended_first {
                for what in ["a kill out of range after the end", "a kill after the end"] {
                    conn.expect.push_back(Expect {
                        what: what.into(),
                        codes: vec![ErrorCode::UnknownRun],
                        run: Some(id),
                        field: Some("id"),
                    });
                }
            } else {
                conn.expect.push_back(Expect {
                    what: "a kill out of range".into(),
                    codes: vec![ErrorCode::InvalidField, ErrorCode::UnknownRun],
                    run: Some(id),
                    field: None,
                });
                conn.strays.insert(id);
            }
            let (summary, events) = finish_completed(conn, id, plan).await?;
            let exited = events
                .iter()
                .any(|e| matches!(e, ServerEvent::WorkerExited { worker: w, .. } if *w == worker));
            if exited {
                tally.kills_landed += 1;
            }
            tally.respawns += events
                .iter()
                .filter(|e| matches!(e, ServerEvent::WorkerRespawned { .. }))
                .count() as u64;
            Some(summary.outcome)
        }
        Fate::Deadline => {
            // Once the run holds this connection's turn (any event of its
            // own says so) ...
            conn.watch(id, PATIENCE, |_| true).await?;
            // ... the same id again; a second run, which waits its turn on
            // this connection; a third, which is one too many.
            conn.send(&ClientMessage::Start {
                id,
                spec: plan.spec.clone(),
            })
            .await?;
            conn.expect.push_back(Expect {
                what: "a start with an id in use".into(),
                codes: vec![ErrorCode::DuplicateRun],
                run: Some(id),
                field: Some("id"),
            });
            let small = spec(
                Runtime::Rust,
                ModelSpec::Threads {
                    strategy: ThreadStrategy::Spawn,
                    sharing: Sharing::Messages,
                },
                Workload::Primes { below: 1_000 },
                1,
            );
            conn.send(&ClientMessage::Start {
                id: id + 1,
                spec: small.clone(),
            })
            .await?;
            conn.runs.insert(id + 1, Vec::new());
            conn.send(&ClientMessage::Start {
                id: id + 2,
                spec: small,
            })
            .await?;
            conn.expect.push_back(Expect {
                what: "a third run on one connection".into(),
                codes: vec![ErrorCode::Busy],
                run: Some(id + 2),
                field: None,
            });
            conn.send(&ClientMessage::Cancel { id: id + 1 }).await?;
            let (second, events) = conn.finish(id + 1).await?;
            ensure!(
                second.outcome == Outcome::Cancelled
                    && events
                        .iter()
                        .any(|e| matches!(e, ServerEvent::Queued { position: 1, .. })),
                "the second run waits its turn and is cancelled there: {events:?}"
            );
            let (summary, events) = conn.finish(id).await?;
            ensure!(
                summary.outcome == Outcome::DeadlineExceeded,
                "a run past the {DEADLINE_SECS} s deadline ended {:?}: {}",
                summary.outcome,
                brief(&events)
            );
            tally.deadlines += 1;
            Some(summary.outcome)
        }
    };
    if let Some(outcome) = outcome {
        *tally.outcomes.entry(format!("{outcome:?}")).or_default() += 1;
    } else {
        *tally
            .outcomes
            .entry("(socket gone before the end)".into())
            .or_default() += 1;
    }
    conn.check_reaped(id, tally);
    conn.check_reaped(id + 1, tally);
    if !matches!(plan.fate, Fate::Disconnect { .. }) {
        conn.settle().await?;
    }
    Ok(())
}

/// Processes carrying this server's run marker (`SPAWNLAB_RUN=<pid>-…`):
/// every process of its Node.js runs, wherever it ended up.
fn marked_by(server_pid: u32) -> Vec<u32> {
    let prefix = format!("{server_pid}-");
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| {
        let p = p.ok()?;
        let env = p.environ().ok()?;
        let marker = env.get(std::ffi::OsStr::new("SPAWNLAB_RUN"))?;
        marker
            .to_string_lossy()
            .starts_with(&prefix)
            .then_some(p.pid as u32)
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_of_random_runs_faults_and_bad_frames_leaves_nothing_behind() -> Result<()> {
    let runs: usize = std::env::var("SPAWNLAB_SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(RUNS);
    let seed: u64 = match std::env::var("SPAWNLAB_SOAK_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .with_context(|| format!("SPAWNLAB_SOAK_SEED={s}"))?
        }
        Err(_) => SEED,
    };
    println!(
        "soak: seed {seed:#x} (SPAWNLAB_SOAK_SEED={seed:#x} replays it), {runs} runs over {CONNECTIONS} connections, run deadline {DEADLINE_SECS} s"
    );
    let server = ServerProcess::start(&["--run-deadline-secs", &DEADLINE_SECS.to_string()])?;
    let pid = server.pid();
    let own_groups = [
        process(pid).context("the server is up")?.pgid,
        process(std::process::id()).context("this test")?.pgid,
    ];

    // Warm up what is built on first use (Node's detection, the pools) so
    // "before" is the idle server.
    {
        let url = format!("{}?learner=soak-warm-up", server.ws_url());
        let mut warm = Conn::open(url, server.addr, pid, own_groups).await?;
        for (id, runtime) in [(1, Runtime::Rust), (2, Runtime::Node)] {
            let spec = ModelKind::ChildProcess.lab_default(runtime);
            warm.send(&ClientMessage::Start { id, spec }).await?;
            warm.runs.insert(id, Vec::new());
            let (summary, _) = warm.finish(id).await?;
            ensure!(summary.outcome == Outcome::Completed, "warm-up {runtime:?}");
        }
        warm.client.close().await;
    }
    eventually(REAP, "the warm-up's processes to go", || async {
        Ok(children_of(pid).is_empty().then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = footprint(pid)?;

    let mut rng = Rng(seed);
    let plans: Vec<Plan> = (0..runs).map(|_| draw(&mut rng)).collect();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let mine: Vec<Plan> = plans.iter().skip(c).step_by(CONNECTIONS).cloned().collect();
        let url = format!("{}?learner=soak-learner-{c:02}", server.ws_url());
        let conn = Conn::open(url, server.addr, pid, own_groups).await?;
        tasks.push(tokio::spawn(drive(conn, mine)));
    }
    let soaking = Arc::new(AtomicBool::new(true));
    let sampler = {
        let soaking = soaking.clone();
        tokio::spawn(async move {
            let mut peak = before;
            while soaking.load(Ordering::Relaxed) {
                if let Ok(now) = footprint(pid) {
                    peak.rss_kib = peak.rss_kib.max(now.rss_kib);
                    peak.open_files = peak.open_files.max(now.open_files);
                    peak.threads = peak.threads.max(now.threads);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            peak
        })
    };
    let mut tally = Tally::default();
    let mut failed = None;
    for (c, task) in tasks.into_iter().enumerate() {
        let (t, outcome) = task.await?;
        merge(&mut tally, t);
        if let Err(e) = outcome {
            println!("  connection {c} FAILED: {e:#}");
            failed = failed.or(Some(e.context(format!("connection {c}"))));
        }
    }
    let took = began.elapsed();
    soaking.store(false, Ordering::Relaxed);
    let peak = sampler.await?;
    report(&tally, runs, took);
    for check in std::mem::take(&mut tally.reaped) {
        check.await??;
    }

    // Nothing left: no child (a zombie is one nobody reaped), no marked
    // process, files back where they were.
    eventually(REAP, "the server's children to go", || async {
        Ok(children_of(pid).is_empty().then_some(()))
    })
    .await
    .with_context(|| {
        let left = children_of(pid);
        let zombies = left.iter().filter(|p| p.state == 'Z').count();
        format!("still the server's children ({zombies} of them zombies): {left:?}")
    })?;
    eventually(REAP, "the runs' marked processes to go", || async {
        Ok(marked_by(pid).is_empty().then_some(()))
    })
    .await
    .with_context(|| {
        let left: Vec<_> = marked_by(pid).into_iter().filter_map(process).collect();
        format!("still alive with this server's run marker: {left:?}")
    })?;
    let after = eventually(REAP, "the server to close what the soak opened", || async {
        let now = footprint(pid)?;
        Ok((now.open_files <= before.open_files + FILE_SLACK).then_some(now))
    })
    .await
    .with_context(|| format!("open files before {before}, now {:?}", footprint(pid).ok()))?;
    let all_processes = processes().len();

    println!(
        "  left behind: nothing. {} process groups used by runs, each empty after its run; no child of the server, so no zombie; no process with its run marker (of {all_processes} on the host)",
        tally.groups
    );
    println!("  server before:     {before}");
    println!("  peak (sampled):    {peak}");
    println!("  after:             {after}");
    if let Some(e) = failed {
        return Err(e);
    }
    // Memory: the allocator keeps what it had, so only a generous bound;
    // the figures above are what matters.
    ensure!(
        after.rss_kib <= 2 * before.rss_kib + 50 * 1024,
        "the server's memory grew from {before} to {after}"
    );
    Ok(())
}

/// What the runs did and met.
fn report(tally: &Tally, runs: usize, took: Duration) {
    let count = |m: &BTreeMap<&'static str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  {} of {runs} runs done in {:.1} s: {}",
        tally.fates.values().sum::<usize>(),
        took.as_secs_f64(),
        count(&tally.fates)
    );
    println!(
        "    on {}; models {}; {} cluster specs asked for a kill themselves",
        count(&tally.by_runtime),
        count(&tally.by_model),
        tally.spec_kills
    );
    println!(
        "    ended: {}",
        tally
            .outcomes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "    cancels: {} landed, {} came after the run's end; kills: {} of {} ended a worker, {} respawns; {} sockets dropped mid-run; {} runs stopped by the deadline",
        tally.cancels_landed,
        tally.cancels_late,
        tally.kills_landed,
        tally.kills_sent,
        tally.respawns,
        tally.disconnects,
        tally.deadlines
    );
    let bad_total: usize = tally.bad.values().sum();
    println!(
        "  bad frames: {bad_total} of {} kinds, each answered as the protocol says; {} frames of 1 MiB, each an error and a 1009 close",
        tally.bad.len(),
        tally.huge
    );
    println!("    {}", count(&tally.bad));
}

fn merge(into: &mut Tally, from: Tally) {
    let add = |a: &mut BTreeMap<&'static str, usize>, b: BTreeMap<&'static str, usize>| {
        for (k, v) in b {
            *a.entry(k).or_default() += v;
        }
    };
    add(&mut into.fates, from.fates);
    add(&mut into.by_runtime, from.by_runtime);
    add(&mut into.by_model, from.by_model);
    add(&mut into.bad, from.bad);
    for (k, v) in from.outcomes {
        *into.outcomes.entry(k).or_default() += v;
    }
    into.cancels_landed += from.cancels_landed;
    into.cancels_late += from.cancels_late;
    into.kills_landed += from.kills_landed;
    into.kills_sent += from.kills_sent;
    into.respawns += from.respawns;
    into.spec_kills += from.spec_kills;
    into.disconnects += from.disconnects;
    into.deadlines += from.deadlines;
    into.huge += from.huge;
    into.groups += from.groups;
    into.reaped.extend(from.reaped);
}
