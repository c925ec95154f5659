//! The cluster model: a primary process and N HTTP workers sharing one
//! loopback port, driven by the engine's own load generator.
//!
//! Three processes are involved, all the same binary:
//!
//! - the server (this module) starts the primary, sends it the plan, fires
//!   the load at the port, and streams what it sees;
//! - the primary ([`primary`]) opens the port, starts the workers, spreads
//!   connections by the chosen policy, and replaces workers that die;
//! - each worker ([`worker`]) answers HTTP on a single-threaded loop.
//!
//! The primary is a child of the server in its own process group, and the
//! workers join that group, so one `killpg` ends the whole cluster; each is
//! also armed to die with its parent (see [`super::spawn`]).

pub mod channel;
pub mod primary;
pub mod worker;

use super::error::RunError;
use super::loadgen::{self, Load, Tally};
use super::measure::micros;
use super::spawn::{kill_group, spawn};
use super::{EventSink, Faults, ModelRun, Pass, Stop};
use protocol::{
    KillWorker, LoadStats, Memory, RunId, SchedPolicy, ServerEvent, WorkResult, Workload,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The hidden subcommand that makes the binary a cluster primary.
pub const PRIMARY_COMMAND: &str = "__cluster-primary";
/// The hidden subcommand that makes the binary a cluster worker.
pub const WORKER_COMMAND: &str = "__cluster-worker";

/// How often live figures are streamed while the load runs.
const TICK: Duration = Duration::from_millis(250);

/// Longest the cluster may take to start, or to report at the end.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Server → primary, one JSON line each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToPrimary {
    Start {
        workers: u32,
        policy: SchedPolicy,
        workload: Workload,
        /// The port to serve on (a scaling instance brought back on its old
        /// port); 0 for a free one.
        #[serde(default)]
        port: u16,
    },
    /// SIGKILL this worker (fault injection).
    Kill { worker: u32 },
    /// Collect the workers' own figures, end them, report, exit.
    Finish,
}

/// Primary → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromPrimary {
    Listening {
        port: u16,
    },
    WorkerUp {
        worker: u32,
        pid: u32,
        latency_us: u64,
    },
    /// Every worker is up and the port is being served.
    Serving,
    WorkerExited {
        worker: u32,
        pid: u32,
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
    WorkerRespawned {
        worker: u32,
        pid: u32,
        downtime_us: u64,
    },
    /// Each worker's own figures; `None` where a worker could not answer.
    Stats {
        served: Vec<Option<u64>>,
        cpu_us: Vec<Option<u64>>,
        memory: Vec<Option<Memory>>,
    },
    Failed {
        message: String,
    },
}

/// Primary → worker, over the worker's sequenced-packet channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToWorker {
    /// How to serve; with the listening socket attached for `shared_socket`.
    Serve {
        index: u32,
        policy: SchedPolicy,
        port: u16,
        workload: Workload,
    },
    /// An accepted connection is attached (round robin).
    Connection,
    /// Report your figures.
    Stats,
}

/// Worker → primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromWorker {
    Ready,
    Stats {
        served: u64,
        cpu_us: u64,
        memory: Memory,
    },
}

/// What the learner asked of the cluster.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workers: u32,
    pub policy: SchedPolicy,
    pub workload: Workload,
    pub requests: u32,
    pub concurrency: u32,
    pub keep_alive: bool,
    pub kill: Option<KillWorker>,
}

/// Start the cluster, drive the load through it, and report.
pub async fn run(
    id: RunId,
    plan: Plan,
    binary: &Path,
    events: &EventSink,
    stop: &Stop,
    faults: Option<Faults>,
) -> Result<ModelRun, RunError> {
    // Every stamp of the run counts from here, the primary's spawn.
    let clock = Clock(Instant::now());
    let mut primary = Primary::start(binary).await?;
    primary
        .tell(&ToPrimary::Start {
            workers: plan.workers,
            policy: plan.policy,
            workload: plan.workload.clone(),
            port: 0,
        })
        .await?;
    let port = tokio::select! {
        port = tokio::time::timeout(SETUP_TIMEOUT, primary.serving(id, clock, events)) => {
            port.map_err(|_| RunError::Timeout("the cluster's start"))??
        }
        _ = stop.requested() => return Ok(Pass::stopped(plan.workers).alone()),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Primary { to, from, .. } = &mut primary;
    let mut killer = PrimaryKill(to);
    let load = drive(
        id,
        &plan,
        addr,
        &mut killer,
        from,
        clock,
        events,
        stop,
        faults,
    )
    .await?;
    if stop.is_requested() {
        return Ok(Pass::stopped(plan.workers).alone());
    }
    let stats = tokio::time::timeout(SETUP_TIMEOUT, primary.finish())
        .await
        .map_err(|_| RunError::Timeout("the cluster's final report"))??;
    Ok(report(id, &plan, load, stats, clock, events))
}

/// The run's clock: every stamp counts from the cluster's start (the
/// primary's spawn; for Node.js, the script's own start).
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl From<Instant> for Clock {
    fn from(start: Instant) -> Self {
        Clock(start)
    }
}

impl Clock {
    fn at_us(self) -> Option<u64> {
        Some(micros(self.0.elapsed()))
    }

    fn at_ms(self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// What the cluster's side (the Rust primary, or the Node.js script) tells
/// the engine while it runs.
#[derive(Debug)]
pub enum Note {
    /// The runtime is up (Node.js: `runtime_ready`).
    Ready,
    /// The cluster (or the main thread's `/ping`) listens on this port.
    Listening(u16),
    /// A worker started.
    Spawned { worker: u32, pid: u32 },
    /// A worker died.
    Exited {
        worker: u32,
        pid: u32,
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
    /// The primary replaced a dead worker.
    Respawned {
        worker: u32,
        pid: u32,
        downtime_us: u64,
    },
    /// A worker's own end: its result, CPU time and memory.
    WorkerDone {
        worker: u32,
        report: super::report::WorkerReport,
    },
    /// The run is over, as the runtime measured it.
    Finished(Box<protocol::RunSummary>),
    /// Something went wrong; the run fails with this sentence.
    Failed(String),
    /// The other side closed its end.
    Closed,
}

/// Where [`drive`] hears the cluster's deaths and replacements.
pub trait Notes {
    /// The next note that matters under load; `None` once nothing more can come.
    fn next_note(&mut self) -> impl std::future::Future<Output = Option<Note>> + Send;
}

impl Notes for mpsc::UnboundedReceiver<Note> {
    async fn next_note(&mut self) -> Option<Note> {
        self.recv().await
    }
}

impl Notes for mpsc::UnboundedReceiver<FromPrimary> {
    async fn next_note(&mut self) -> Option<Note> {
        loop {
            return Some(match self.recv().await? {
                FromPrimary::WorkerExited {
                    worker,
                    pid,
                    signal,
                    exit_code,
                } => Note::Exited {
                    worker,
                    pid,
                    signal,
                    exit_code,
                },
                FromPrimary::WorkerRespawned {
                    worker,
                    pid,
                    downtime_us,
                } => Note::Respawned {
                    worker,
                    pid,
                    downtime_us,
                },
                FromPrimary::Failed { message } => Note::Failed(message),
                _ => continue,
            });
        }
    }
}

/// How [`drive`] kills a worker when the plan or the learner asks.
pub trait Kill {
    /// Kill worker `worker` now, as a crash would.
    fn kill(
        &mut self,
        worker: u32,
    ) -> impl std::future::Future<Output = Result<(), RunError>> + Send;

    /// Worker `worker` is now process `pid`.
    fn respawned(&mut self, _worker: u32, _pid: u32) {}
}

/// The Rust primary kills its own workers when told to.
struct PrimaryKill<'a>(&'a mut tokio::process::ChildStdin);

impl Kill for PrimaryKill<'_> {
    async fn kill(&mut self, worker: u32) -> Result<(), RunError> {
        tell(self.0, &ToPrimary::Kill { worker }).await
    }
}

/// The cluster's primary process, its channel, and the guard that ends the
/// whole cluster however the run ends.
struct Primary {
    to: tokio::process::ChildStdin,
    from: mpsc::UnboundedReceiver<FromPrimary>,
    _guard: ClusterGuard,
}

/// Ends the cluster however the run ends: kill the group, reap the primary.
struct ClusterGuard {
    primary: std::process::Child,
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        kill_group(self.primary.id());
        let _ = self.primary.wait();
    }
}

impl Primary {
    /// Start `binary` as a cluster primary in a process group of its own.
    async fn start(binary: &Path) -> Result<Self, RunError> {
        let mut command = Command::new(binary);
        command
            .arg(PRIMARY_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = tokio::task::spawn_blocking(move || spawn(command, None))
            .await
            .map_err(|e| RunError::joined("starting the cluster primary", e))?
            .map_err(|e| RunError::start("the cluster primary", e))?;
        let pipes = child.stdin.take().zip(child.stdout.take());
        let guard = ClusterGuard { primary: child };
        let (stdin, stdout) = pipes.ok_or(RunError::Cluster("started without pipes".into()))?;
        let io = |e| RunError::io("the cluster primary's pipes", e);
        Ok(Primary {
            to: tokio::process::ChildStdin::from_std(stdin).map_err(io)?,
            from: relay(tokio::process::ChildStdout::from_std(stdout).map_err(io)?),
            _guard: guard,
        })
    }

    /// Send one message.
    async fn tell(&mut self, msg: &ToPrimary) -> Result<(), RunError> {
        tell(&mut self.to, msg).await
    }

    /// Wait until every worker is up and the port is served, announcing
    /// each worker's start; the port.
    async fn serving(
        &mut self,
        id: RunId,
        clock: Clock,
        events: &EventSink,
    ) -> Result<u16, RunError> {
        let mut port = None;
        loop {
            match self.from.recv().await {
                Some(FromPrimary::Listening { port: p }) => port = Some(p),
                Some(FromPrimary::WorkerUp {
                    worker,
                    pid,
                    latency_us,
                }) => {
                    let _ = events.send(ServerEvent::WorkerSpawned {
                        run: id,
                        worker,
                        start_latency_us: latency_us,
                        pid,
                        tid: None,
                        at_us: clock.at_us(),
                    });
                }
                Some(FromPrimary::Serving) => {
                    return port.ok_or(RunError::Cluster("it named no port".into()))
                }
                Some(FromPrimary::Failed { message }) => return Err(RunError::Cluster(message)),
                Some(_) => {}
                None => return Err(RunError::Cluster("it exited during start-up".into())),
            }
        }
    }

    /// Ask for the workers' own figures and wait for them.
    async fn finish(&mut self) -> Result<WorkerStats, RunError> {
        self.tell(&ToPrimary::Finish).await?;
        loop {
            match self.from.recv().await {
                Some(FromPrimary::Stats {
                    served,
                    cpu_us,
                    memory,
                }) => {
                    return Ok(WorkerStats {
                        served,
                        cpu_us,
                        memory,
                    })
                }
                Some(_) => continue,
                None => return Err(RunError::Cluster("it did not report its workers".into())),
            }
        }
    }
}

/// A cluster serving as one of a scaling run's instances, on either
/// runtime: what it says, where it serves, and its processes.
pub struct Serving {
    pub notes: mpsc::UnboundedReceiver<Note>,
    pub port: u16,
    /// The cluster's primary, which leads its process group.
    pub pid: u32,
    /// Each worker's pid, by index.
    pub workers: Vec<Option<u32>>,
}

/// One Rust cluster serving as a scaling run's instance: its primary
/// (dropping it ends the instance) and what it serves.
pub struct Instance {
    _primary: Primary,
    pub serving: Serving,
}

impl Instance {
    /// Start a round-robin cluster of `workers` serving `workload`, on
    /// `port` when given, and wait until every worker serves.
    pub async fn start(
        binary: &Path,
        workers: u32,
        workload: Workload,
        port: Option<u16>,
    ) -> Result<Self, RunError> {
        let mut primary = Primary::start(binary).await?;
        primary
            .tell(&ToPrimary::Start {
                workers,
                policy: SchedPolicy::RoundRobin,
                workload,
                port: port.unwrap_or(0),
            })
            .await?;
        let mut pids = vec![None; workers as usize];
        let serving = async {
            let mut port = None;
            loop {
                match primary.from.recv().await {
                    Some(FromPrimary::Listening { port: p }) => port = Some(p),
                    Some(FromPrimary::WorkerUp { worker, pid, .. }) => {
                        if let Some(slot) = pids.get_mut(worker as usize) {
                            *slot = Some(pid);
                        }
                    }
                    Some(FromPrimary::Serving) => {
                        return port.ok_or(RunError::Cluster("it named no port".into()))
                    }
                    Some(FromPrimary::Failed { message }) => {
                        return Err(RunError::Cluster(message))
                    }
                    Some(_) => {}
                    None => return Err(RunError::Cluster("it exited during start-up".into())),
                }
            }
        };
        let port = tokio::time::timeout(SETUP_TIMEOUT, serving)
            .await
            .map_err(|_| RunError::Timeout("an instance's start"))??;
        // What the primary says from now on, as notes.
        let (tx, notes) = mpsc::unbounded_channel();
        let mut from = std::mem::replace(&mut primary.from, mpsc::unbounded_channel().1);
        tokio::spawn(async move {
            while let Some(note) = from.next_note().await {
                if tx.send(note).is_err() {
                    return;
                }
            }
        });
        Ok(Instance {
            serving: Serving {
                notes,
                port,
                pid: primary._guard.primary.id(),
                workers: pids,
            },
            _primary: primary,
        })
    }
}

/// Send the primary one message.
async fn tell(to: &mut tokio::process::ChildStdin, msg: &ToPrimary) -> Result<(), RunError> {
    let mut line = serde_json::to_vec(msg).expect("messages serialize");
    line.push(b'\n');
    to.write_all(&line)
        .await
        .map_err(|e| RunError::io("the cluster primary stopped listening", e))
}

/// Each worker's own figures, as the primary collected them at the end.
pub struct WorkerStats {
    served: Vec<Option<u64>>,
    cpu_us: Vec<Option<u64>>,
    memory: Vec<Option<Memory>>,
}

impl WorkerStats {
    /// No figures yet, for `workers` workers.
    pub fn empty(workers: u32) -> Self {
        WorkerStats {
            served: vec![None; workers as usize],
            cpu_us: vec![None; workers as usize],
            memory: vec![None; workers as usize],
        }
    }

    /// Worker `worker`'s own end, as its runtime reported it.
    pub fn take(&mut self, worker: u32, report: super::report::WorkerReport) {
        let w = worker as usize;
        if let (
            super::report::WorkerReport::Done {
                result,
                cpu,
                memory,
                ..
            },
            true,
        ) = (report, w < self.served.len())
        {
            if let Some(WorkResult::Requests { served }) = result {
                self.served[w] = Some(served);
            }
            self.cpu_us[w] = Some(micros(cpu));
            self.memory[w] = memory;
        }
    }
}

/// What the load amounted to.
pub struct LoadDone {
    tally: Tally,
    duration: Duration,
    respawns: u32,
}

/// Fire the load at `addr`, folding its samples, streaming live figures,
/// killing workers when asked (by the plan or by the learner) and passing
/// on the deaths and respawns the cluster reports, until the load is done.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    id: RunId,
    plan: &Plan,
    addr: SocketAddr,
    killer: &mut impl Kill,
    notes: &mut impl Notes,
    clock: Clock,
    events: &EventSink,
    stop: &Stop,
    mut faults: Option<Faults>,
) -> Result<LoadDone, RunError> {
    let load = Load {
        addr,
        requests: plan.requests.into(),
        concurrency: plan.concurrency,
        keep_alive: plan.keep_alive,
        sources: 0,
        upstreams: None,
    };
    let started = Instant::now();
    let mut samples = loadgen::start(load, stop.clone());
    let mut tally = Tally::new(plan.workers);
    let mut ticker = tokio::time::interval(TICK);
    let mut last_completed = 0;
    let mut kill = plan.kill;
    let mut respawns = 0;
    loop {
        tokio::select! {
            sample = samples.recv() => match sample {
                Some(sample) => {
                    tally.add(sample);
                    if let Some(k) = kill.filter(|k| tally.completed >= k.after_requests.into()) {
                        killer.kill(k.worker).await?;
                        kill = None;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                last_completed = tick(id, &tally, last_completed, clock.at_ms(), started.elapsed(), events);
            }
            // A kill the learner asked for, now.
            Some(worker) = async { faults.as_mut()?.recv().await } => {
                killer.kill(worker).await?;
            }
            note = notes.next_note() => match note {
                Some(Note::Exited { worker, pid, signal, exit_code }) => {
                    let at_ms = clock.at_ms();
                    let _ = events.send(ServerEvent::WorkerExited { run: id, instance: None, worker, pid, signal, exit_code, at_ms });
                }
                Some(Note::Respawned { worker, pid, downtime_us }) => {
                    respawns += 1;
                    killer.respawned(worker, pid);
                    let at_ms = clock.at_ms();
                    let _ = events.send(ServerEvent::WorkerRespawned { run: id, instance: None, worker, pid, downtime_us, at_ms });
                }
                Some(Note::Spawned { worker, pid }) => killer.respawned(worker, pid),
                Some(Note::Failed(why)) => return Err(RunError::Cluster(why)),
                Some(Note::Closed) | None => return Err(RunError::Cluster("it exited under load".into())),
                Some(_) => {}
            },
        }
    }
    tick(
        id,
        &tally,
        last_completed,
        clock.at_ms(),
        started.elapsed(),
        events,
    );
    Ok(LoadDone {
        tally,
        duration: started.elapsed(),
        respawns,
    })
}

/// Every worker's end, the load's figures, and the run's result.
pub fn report(
    id: RunId,
    plan: &Plan,
    load: LoadDone,
    stats: WorkerStats,
    clock: Clock,
    events: &EventSink,
) -> ModelRun {
    let per_worker = load.tally.per_worker();
    let mut results = Vec::new();
    let mut cpu = Duration::ZERO;
    for (worker, &answered) in per_worker.iter().enumerate() {
        let worker_cpu = stats.cpu_us.get(worker).copied().flatten().unwrap_or(0);
        cpu += Duration::from_micros(worker_cpu);
        let result = WorkResult::Requests { served: answered };
        let _ = events.send(ServerEvent::WorkerFinished {
            run: id,
            worker: worker as u32,
            wall_us: micros(load.duration),
            cpu_us: worker_cpu,
            memory: stats.memory.get(worker).copied().flatten(),
            messages: None,
            result: result.clone(),
            at_us: clock.at_us(),
        });
        results.push(Some(result));
    }
    let completed = load.tally.completed;
    let _ = events.send(ServerEvent::LoadFinished {
        run: id,
        stats: LoadStats {
            requests: plan.requests.into(),
            completed,
            errors: load.tally.errors,
            per_worker,
            served_by_workers: stats.served,
            duration_us: micros(load.duration),
            rps: completed as f64 / load.duration.as_secs_f64().max(1e-9),
            latency: load.tally.latency(),
            respawns: load.respawns,
        },
    });
    Pass {
        wall: load.duration,
        cpu,
        results,
    }
    .alone()
}

/// Stream the live figures; returns the completed count for the next tick.
fn tick(
    id: RunId,
    tally: &Tally,
    last_completed: u64,
    at_ms: u64,
    load: Duration,
    events: &EventSink,
) -> u64 {
    let latency = tally.latency();
    let _ = events.send(ServerEvent::ClusterTick {
        run: id,
        at_ms,
        per_worker: tally.per_worker(),
        completed: tally.completed,
        errors: tally.errors,
        rps: (tally.completed - last_completed) as f64 / TICK.as_secs_f64(),
        load_ms: load.as_millis() as u64,
        p50_us: latency.p50_us,
        p90_us: latency.p90_us,
        p99_us: latency.p99_us,
    });
    tally.completed
}

/// Read the primary's lines on a task of their own and pass them on.
fn relay(stdout: tokio::process::ChildStdout) -> mpsc::UnboundedReceiver<FromPrimary> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str(&line) {
                Ok(msg) => {
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!("unreadable line from the cluster primary: {e}: {line}"),
            }
        }
    });
    rx
}
