//! Past one machine: several app instances behind a real load balancer.
//!
//! A scaling run starts K instances, each a cluster of W workers on a
//! loopback port of its own (Node.js's `cluster.js`, or the Rust engine's
//! primary, as the run's runtime says), writes a balancer configuration for
//! them into a folder of the run's own, starts the balancer (nginx, or
//! HAProxy) on a free loopback port, and sends the engine's load to the
//! balancer from several client addresses. It streams what the client saw
//! (answers per instance and per worker, from the `x-upstream` header the
//! balancer adds and the `x-worker` header the worker adds), and what the
//! balancer logged (every attempt, and which failed).
//!
//! Faults — a worker, a whole instance, the balancer — come from the plan
//! (after so many answers) or from the learner, while the load runs. Every
//! process of the run is in a process group of its own under a guardian or
//! armed to die with the server, and all of them are ended however the run
//! ends: the instances and the balancer are dropped with the run.

pub mod balancer;

use super::cluster::{self, Note};
use super::error::RunError;
use super::loadgen::{self, Load, Tally};
use super::measure::micros;
use super::node;
use super::spawn::kill_process;
use super::{EventSink, ModelRun, Pass, Stop};
use protocol::{
    Balance, BalancerKind, Fault, ModelSpec, RunId, RunSpec, Runtime, ScalingStats, SchedPolicy,
    ServerEvent, TimedFault, WorkResult, Workload,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often live figures are streamed while the load runs.
const TICK: Duration = Duration::from_millis(250);

/// What the learner asked of the scaling run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub instances: u32,
    pub workers: u32,
    pub workload: Workload,
    pub balancer: BalancerKind,
    pub balance: Balance,
    pub requests: u32,
    pub concurrency: u32,
    pub keep_alive: bool,
    pub retries: bool,
    pub faults: Vec<TimedFault>,
}

/// Where a running scaling run hears the learner's faults.
pub type Faults = mpsc::UnboundedReceiver<Fault>;

/// Everything a scaling run needs from the engine.
pub struct Context<'a> {
    pub runtime: Runtime,
    /// The spawnlab binary: the Rust primaries, and every guardian.
    pub binary: &'a Path,
    /// The Node.js runtime, for Node instances.
    pub node: Option<node::Context<'a>>,
    /// The balancer the plan names, as this server found it.
    pub found: &'a balancer::Found,
}

/// One instance while it runs.
enum Running {
    Rust(cluster::Instance),
    Node(node::Instance),
}

impl Running {
    fn serving(&mut self) -> &mut cluster::Serving {
        match self {
            Running::Rust(i) => &mut i.serving,
            Running::Node(i) => &mut i.serving,
        }
    }

    async fn kill(self) {
        match self {
            // Dropping the primary kills its group and reaps it.
            Running::Rust(i) => drop(i),
            Running::Node(i) => i.kill().await,
        }
    }
}

/// An instance's place in the run: its port stays, its processes come and go.
struct Slot {
    port: u16,
    running: Option<Running>,
    /// Bumped on every start, so notes from a killed instance are ignored.
    generation: u64,
    workers: Vec<Option<u32>>,
}

/// A folder of the run's own for the balancer's configuration and logs,
/// removed with the run.
struct RunDir(PathBuf);

impl RunDir {
    fn create() -> Result<Self, RunError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!(
            "spawnlab-{}-scaling-{}",
            std::process::id(),
            node::unique()
        ));
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| RunError::io("creating the run's folder", e))?;
        Ok(RunDir(path))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The run's instances and how to start one.
struct Fleet<'a> {
    id: RunId,
    plan: &'a Plan,
    cx: &'a Context<'a>,
    slots: Vec<Slot>,
    clock: Instant,
    /// Where every instance's notes meet: (instance, generation, note).
    notes: mpsc::UnboundedSender<(u32, u64, Note)>,
}

impl Fleet<'_> {
    /// Start instance `index` (on its old port when it had one) and tell
    /// the page.
    async fn start(&mut self, index: u32, events: &EventSink) -> Result<(), RunError> {
        let began = Instant::now();
        let old_port = self.slots.get(index as usize).map(|s| s.port);
        let mut running = match self.cx.runtime {
            Runtime::Rust => Running::Rust(
                cluster::Instance::start(
                    self.cx.binary,
                    self.plan.workers,
                    self.plan.workload.clone(),
                    old_port,
                )
                .await?,
            ),
            Runtime::Node => {
                let cx = self
                    .cx
                    .node
                    .as_ref()
                    .ok_or_else(|| RunError::Node("Node.js is not set up".into()))?;
                let (spec, plan) = instance_spec(self.plan);
                Running::Node(node::Instance::start(self.id, &spec, &plan, cx, old_port).await?)
            }
        };
        let serving = running.serving();
        let (port, pid, workers) = (serving.port, serving.pid, serving.workers.clone());
        let mut notes = std::mem::replace(&mut serving.notes, mpsc::unbounded_channel().1);
        let generation = self
            .slots
            .get(index as usize)
            .map_or(0, |s| s.generation + 1);
        let tx = self.notes.clone();
        tokio::spawn(async move {
            while let Some(note) = notes.recv().await {
                if tx.send((index, generation, note)).is_err() {
                    return;
                }
            }
        });
        let slot = Slot {
            port,
            running: Some(running),
            generation,
            workers,
        };
        match self.slots.get_mut(index as usize) {
            Some(s) => *s = slot,
            None => self.slots.push(slot),
        }
        let _ = events.send(ServerEvent::InstanceUp {
            run: self.id,
            instance: index,
            port,
            pid,
            start_us: micros(began.elapsed()),
            at_ms: self.at_ms(),
        });
        Ok(())
    }

    fn at_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// Kill every instance still running.
    async fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(running) = slot.running.take() {
                running.kill().await;
            }
        }
    }
}

/// The cluster spec and plan each Node.js instance runs: round robin,
/// Node's default, with the scaling run's workers and workload.
fn instance_spec(plan: &Plan) -> (RunSpec, super::Plan) {
    let cluster = cluster::Plan {
        workers: plan.workers,
        policy: SchedPolicy::RoundRobin,
        workload: plan.workload.clone(),
        requests: plan.requests,
        concurrency: plan.concurrency,
        keep_alive: plan.keep_alive,
        kill: None,
    };
    let spec = RunSpec {
        runtime: Runtime::Node,
        model: ModelSpec::Cluster {
            policy: SchedPolicy::RoundRobin,
            requests: plan.requests,
            concurrency: plan.concurrency,
            keep_alive: plan.keep_alive,
            kill: None,
        },
        workload: plan.workload.clone(),
        workers: plan.workers,
    };
    (spec, super::Plan::Cluster(cluster))
}

/// A free loopback port for the balancer.
fn free_port() -> Result<u16, RunError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| RunError::io("finding a free port for the balancer", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| RunError::io("finding a free port for the balancer", e))
}

/// Start the instances and the balancer, drive the load through them,
/// apply the faults, and report.
pub async fn run(
    id: RunId,
    plan: Plan,
    cx: Context<'_>,
    events: &EventSink,
    stop: &Stop,
    mut faults: Option<Faults>,
) -> Result<ModelRun, RunError> {
    let stopped = || Ok(Pass::stopped(plan.instances).alone());
    let dir = RunDir::create()?;
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let mut fleet = Fleet {
        id,
        plan: &plan,
        cx: &cx,
        slots: Vec::new(),
        clock: Instant::now(),
        notes: notes_tx,
    };
    for index in 0..plan.instances {
        tokio::select! {
            started = fleet.start(index, events) => started?,
            _ = stop.requested() => {
                fleet.kill_all().await;
                return stopped();
            }
        }
    }
    let setup = balancer::Setup {
        kind: plan.balancer,
        balance: plan.balance,
        retries: plan.retries,
        port: free_port()?,
        instances: fleet.slots.iter().map(|s| s.port).collect(),
    };
    let mut balancer = balancer::Balancer::start(cx.found, &setup, &dir.0, cx.binary).await?;
    let _ = events.send(ServerEvent::BalancerUp {
        run: id,
        balancer: plan.balancer,
        version: cx.found.info.version.clone().unwrap_or_default(),
        port: setup.port,
        pid: balancer.pid,
        at_ms: fleet.at_ms(),
    });

    let load = Load {
        addr: SocketAddr::from(([127, 0, 0, 1], setup.port)),
        requests: plan.requests.into(),
        concurrency: plan.concurrency,
        keep_alive: plan.keep_alive,
        sources: plan.concurrency.min(loadgen::MAX_SOURCES),
        upstreams: Some(Arc::from(setup.upstream_names())),
    };
    let client_addresses = load.sources;
    let started = Instant::now();
    let mut samples = loadgen::start(load, stop.clone());
    let mut tally = Tally::new(plan.workers);
    let mut spread = vec![vec![0u64; plan.workers as usize]; plan.instances as usize];
    let mut ticker = tokio::time::interval(TICK);
    let mut last_completed = 0;
    let mut pending: Vec<TimedFault> = plan.faults.clone();
    let mut respawns = 0;
    let mut balancer_up = true;
    loop {
        tokio::select! {
            sample = samples.recv() => match sample {
                Some(sample) => {
                    if let (Some(i), Some(w)) = (sample.instance, sample.worker) {
                        if let Some(count) = spread.get_mut(i).and_then(|row| row.get_mut(w)) {
                            *count += 1;
                        }
                    }
                    tally.add(sample);
                    let due: Vec<Fault> = pending
                        .iter()
                        .filter(|f| tally.completed >= f.after_requests.into())
                        .map(|f| f.fault)
                        .collect();
                    pending.retain(|f| tally.completed < f.after_requests.into());
                    for fault in due {
                        apply(fault, &mut fleet, &mut balancer, &mut balancer_up, events).await?;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                let latency = tally.latency();
                let _ = events.send(ServerEvent::ScalingTick {
                    run: id,
                    at_ms: fleet.at_ms(),
                    load_ms: started.elapsed().as_millis() as u64,
                    per_instance: spread.clone(),
                    completed: tally.completed,
                    errors: tally.errors,
                    rps: (tally.completed - last_completed) as f64 / TICK.as_secs_f64(),
                    p50_us: latency.p50_us,
                    p90_us: latency.p90_us,
                    p99_us: latency.p99_us,
                    balancer: balancer.read_log(),
                });
                last_completed = tally.completed;
            }
            Some(fault) = async { faults.as_mut()?.recv().await } => {
                apply(fault, &mut fleet, &mut balancer, &mut balancer_up, events).await?;
            }
            Some((instance, generation, note)) = notes.recv() => {
                let Some(slot) = fleet.slots.get_mut(instance as usize) else { continue };
                if slot.generation != generation || slot.running.is_none() {
                    continue;
                }
                let at_ms = fleet.clock.elapsed().as_millis() as u64;
                match note {
                    Note::Exited { worker, pid, signal, exit_code } => {
                        let _ = events.send(ServerEvent::WorkerExited {
                            run: id, instance: Some(instance), worker, pid, signal, exit_code, at_ms,
                        });
                    }
                    Note::Respawned { worker, pid, downtime_us } => {
                        respawns += 1;
                        if let Some(p) = slot.workers.get_mut(worker as usize) {
                            *p = Some(pid);
                        }
                        let _ = events.send(ServerEvent::WorkerRespawned {
                            run: id, instance: Some(instance), worker, pid, downtime_us, at_ms,
                        });
                    }
                    Note::Spawned { worker, pid } => {
                        if let Some(p) = slot.workers.get_mut(worker as usize) {
                            *p = Some(pid);
                        }
                    }
                    // An instance that fails on its own is a fault like any
                    // other: the balancer routes around it, and the page
                    // shows it down.
                    Note::Failed(_) | Note::Closed => {
                        if let Some(running) = slot.running.take() {
                            running.kill().await;
                        }
                        let _ = events.send(ServerEvent::InstanceDown { run: id, instance, at_ms });
                    }
                    _ => {}
                }
            }
        }
    }
    let duration = started.elapsed();
    // The CPU the instances used: every process of each one still running
    // (its primary leads its group), and the workers it reaped.
    let cpu = fleet
        .slots
        .iter_mut()
        .filter_map(|s| s.running.as_mut().map(|r| r.serving().pid))
        .map(super::measure::cpu_time_of_group)
        .sum();
    let log = if balancer_up {
        balancer.final_log(tally.completed + tally.errors).await
    } else {
        balancer.read_log()
    };
    balancer.kill().await;
    fleet.kill_all().await;
    if stop.is_requested() {
        return stopped();
    }
    let completed = tally.completed;
    let _ = events.send(ServerEvent::ScalingFinished {
        run: id,
        stats: ScalingStats {
            requests: plan.requests.into(),
            completed,
            errors: tally.errors,
            per_instance: spread.clone(),
            client_addresses,
            duration_us: micros(duration),
            rps: completed as f64 / duration.as_secs_f64().max(1e-9),
            latency: tally.latency(),
            balancer: log,
            respawns,
        },
    });
    // One result per instance: the requests its workers answered.
    Ok(Pass {
        wall: duration,
        cpu,
        results: spread
            .iter()
            .map(|row| {
                Some(WorkResult::Requests {
                    served: row.iter().sum(),
                })
            })
            .collect(),
    }
    .alone())
}

/// Break (or mend) what `fault` names, and tell the page.
async fn apply(
    fault: Fault,
    fleet: &mut Fleet<'_>,
    balancer: &mut balancer::Balancer,
    balancer_up: &mut bool,
    events: &EventSink,
) -> Result<(), RunError> {
    let id = fleet.id;
    match fault {
        Fault::KillWorker { instance, worker } => {
            if let Some(Some(pid)) = fleet
                .slots
                .get(instance as usize)
                .filter(|s| s.running.is_some())
                .and_then(|s| s.workers.get(worker as usize))
            {
                kill_process(*pid);
            }
        }
        Fault::KillInstance { instance } => {
            if let Some(running) = fleet
                .slots
                .get_mut(instance as usize)
                .and_then(|s| s.running.take())
            {
                running.kill().await;
                let _ = events.send(ServerEvent::InstanceDown {
                    run: id,
                    instance,
                    at_ms: fleet.at_ms(),
                });
            }
        }
        Fault::RestartInstance { instance } => {
            let down = fleet
                .slots
                .get(instance as usize)
                .is_some_and(|s| s.running.is_none());
            if down {
                fleet.start(instance, events).await?;
            }
        }
        Fault::KillBalancer => {
            if std::mem::take(balancer_up) {
                balancer.kill().await;
                let _ = events.send(ServerEvent::BalancerDown {
                    run: id,
                    at_ms: fleet.at_ms(),
                });
            }
        }
    }
    Ok(())
}
