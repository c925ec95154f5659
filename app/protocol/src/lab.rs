//! What a lab knows about its run, rebuilt from the event stream.
//!
//! Plain data and one [`LabState::apply`] function, with no Leptos in it, so
//! the way the page, the CLI and the calibration pass read the protocol is
//! one fold, tested on the host like any other code. The components only
//! draw this state.

use crate::format::{
    describe_spec, format_count, format_us, incident_sentence, median, outcome_word, Fixed,
};
use crate::{
    BalancerInfo, BalancerKind, BalancerLog, HostInfo, Limits, LoadStats, Memory, RunId, RunSpec,
    RunSummary, Runtime, RuntimeInfo, ScalingStats, ServerEvent, WorkResult,
};

/// One worker's row in the lab's table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerRow {
    pub worker: u32,
    pub pid: u32,
    pub tid: Option<u32>,
    pub start_latency_us: Option<u64>,
    /// Median and 99th percentile of the small-message round trips, in ns.
    pub round_trip_ns: Option<(u64, u64)>,
    pub done: u64,
    pub total: u64,
    pub wall_us: Option<u64>,
    pub cpu_us: Option<u64>,
    pub memory: Option<Memory>,
    /// Messages the worker sent its coordinator, where counted.
    pub messages: Option<u64>,
    pub result: Option<WorkResult>,
    /// Timeline stamps, in µs since the run started (server clock): when the
    /// worker's first message arrived, when its round trips were done, when
    /// it finished.
    pub ready_at_us: Option<u64>,
    pub messages_at_us: Option<u64>,
    pub finished_at_us: Option<u64>,
}

impl WorkerRow {
    /// When the worker was spawned: its first message, less its start latency.
    pub fn spawned_at_us(&self) -> Option<u64> {
        Some(self.ready_at_us?.saturating_sub(self.start_latency_us?))
    }

    /// Progress from 0 to 1.
    pub fn fraction(&self) -> f64 {
        if self.wall_us.is_some() && self.total == 0 {
            1.0
        } else if self.total == 0 {
            0.0
        } else {
            self.done as f64 / self.total as f64
        }
    }
}

/// One cluster tick: the load's progress at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at_ms: u64,
    pub per_worker: Vec<u64>,
    pub completed: u64,
    pub errors: u64,
    /// Answers per second over this tick alone: the throughput line.
    pub rps: f64,
    /// Time since the load began, in ms.
    pub load_ms: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
}

impl Tick {
    /// Answers per second so far: answered requests over the load's time,
    /// the same definition as the final figure's.
    pub fn rate_so_far(&self) -> f64 {
        self.completed as f64 * 1_000.0 / self.load_ms.max(1) as f64
    }
}

/// A worker's death or replacement during a cluster run.
#[derive(Debug, Clone, PartialEq)]
pub enum Incident {
    Exited {
        worker: u32,
        pid: u32,
        signal: Option<i32>,
        at_ms: u64,
    },
    Respawned {
        worker: u32,
        pid: u32,
        downtime_us: u64,
        at_ms: u64,
    },
}

impl Incident {
    /// When it happened, in ms since the run began.
    pub fn at_ms(&self) -> u64 {
        match self {
            Incident::Exited { at_ms, .. } | Incident::Respawned { at_ms, .. } => *at_ms,
        }
    }
}

/// Where a box of the scaling diagram is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoxState {
    /// Not started yet.
    #[default]
    Starting,
    /// Serving.
    Up,
    /// Killed (a worker waiting for its replacement, an instance or the
    /// balancer killed by the lab).
    Down,
}

impl BoxState {
    /// One word for the diagram's label and its screen-reader text.
    pub fn word(self) -> &'static str {
        match self {
            BoxState::Starting => "starting",
            BoxState::Up => "up",
            BoxState::Down => "down",
        }
    }
}

/// One app instance of a scaling run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceRow {
    pub port: Option<u16>,
    pub pid: Option<u32>,
    pub state: BoxState,
    /// Start to serving, the last time it started.
    pub start_us: Option<u64>,
    /// Each worker's state, by index.
    pub workers: Vec<BoxState>,
    /// Times it was started (1, or more once brought back).
    pub starts: u32,
}

/// One scaling tick: the spread and the load at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingTick {
    pub at_ms: u64,
    pub load_ms: u64,
    pub per_instance: Vec<Vec<u64>>,
    pub completed: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub balancer: BalancerLog,
}

/// What the scaling lab knows about its run: the diagram's boxes, the live
/// figures, and what happened when.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalingView {
    /// The balancer: which, its version, port and pid, and its state.
    pub balancer: Option<(BalancerKind, String, u16, u32)>,
    pub balancer_state: BoxState,
    pub instances: Vec<InstanceRow>,
    pub ticks: Vec<ScalingTick>,
    /// Faults and recoveries, as (ms since the run began, a sentence).
    pub log: Vec<(u64, String)>,
    pub stats: Option<ScalingStats>,
}

impl ScalingView {
    fn instance(&mut self, instance: u32) -> &mut InstanceRow {
        let i = instance as usize;
        if self.instances.len() <= i {
            self.instances.resize(i + 1, InstanceRow::default());
        }
        &mut self.instances[i]
    }

    fn worker(&mut self, instance: u32, worker: u32, state: BoxState) {
        let row = self.instance(instance);
        let w = worker as usize;
        if row.workers.len() <= w {
            row.workers.resize(w + 1, BoxState::Starting);
        }
        row.workers[w] = state;
    }
}

/// A finished run, kept so the learner can compare it with the next ones
/// (shared memory against messages, a pool against fresh threads, …).
#[derive(Debug, Clone, PartialEq)]
pub struct PastRun {
    pub run: RunId,
    /// What was asked for.
    pub spec: RunSpec,
    /// What was asked for, in words.
    pub settings: String,
    pub summary: RunSummary,
    /// Median start latency of its workers.
    pub start_us: Option<u64>,
    /// Median memory a worker held (anonymous resident), where measured.
    pub memory_bytes: Option<u64>,
    /// Messages its workers sent, where counted.
    pub messages: Option<u64>,
    /// The runtime's own start-up before the model ran (Node.js).
    pub boot_us: Option<u64>,
}

impl PastRun {
    /// The runtime that ran it.
    pub fn runtime(&self) -> Runtime {
        self.spec.runtime
    }
}

/// The same settings run on both runtimes: the newest pair in a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub node: PastRun,
    pub rust: PastRun,
}

impl Pair {
    /// The newest Node.js run and Rust run with the same settings, each the
    /// newest of its runtime, if both completed.
    pub fn newest(history: &[PastRun]) -> Option<Pair> {
        let completed = |r: &&PastRun| r.summary.outcome == crate::Outcome::Completed;
        let newest = history.iter().find(completed)?;
        let other = history.iter().filter(completed).find(|r| {
            r.runtime() != newest.runtime()
                && RunSpec {
                    runtime: newest.runtime(),
                    ..r.spec.clone()
                } == newest.spec
        })?;
        let (node, rust) = match newest.runtime() {
            Runtime::Node => (newest, other),
            Runtime::Rust => (other, newest),
        };
        Some(Pair {
            node: node.clone(),
            rust: rust.clone(),
        })
    }
}

/// How the runtime started, when it started on its own (Node.js).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub runtime: Runtime,
    pub version: String,
    pub boot_us: u64,
    pub pid: u32,
}

/// How many finished runs a lab keeps.
pub const HISTORY: usize = 8;

/// Where the current run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing started yet, or the last run is over.
    #[default]
    Idle,
    /// Sent `start`, waiting for the server.
    Requested,
    /// Waiting in the server's queue: the place (1 is next) and the
    /// server's estimate of the wait, milliseconds.
    Queued { position: u32, wait_ms: Option<u64> },
    /// Workers are running.
    Running,
    /// Measuring the one-worker baseline.
    Baseline,
}

/// Everything the lab shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabState {
    /// The server's limits, from `hello`.
    pub limits: Option<Limits>,
    /// The runtimes this server has, from `hello`.
    pub runtimes: Vec<RuntimeInfo>,
    /// The load balancers this server has, from `hello`.
    pub balancers: Vec<BalancerInfo>,
    /// Scaling: the balancer, the instances, what they did.
    pub scaling: ScalingView,
    /// The runtime's own start-up, before the model (Node.js).
    pub boot: Option<Boot>,
    /// The port the run serves HTTP on (`/ping`, or the cluster's).
    pub port: Option<u16>,
    /// Main thread: each `/ping` sent from outside, as (ms since the run
    /// began, its latency in µs or `None` if unanswered).
    pub pings: Vec<(u64, Option<u64>)>,
    /// Main thread, Node.js: `monitorEventLoopDelay`'s p50, p99 and max, µs.
    pub loop_delay: Option<(u64, u64, u64)>,
    /// Main thread, Node.js: each pool hash and when it finished, in µs
    /// after they were all started, in the order they finished.
    pub pool_tasks: Vec<(u32, u64)>,
    /// The run this lab is following.
    pub run: Option<RunId>,
    pub phase: Phase,
    pub host: Option<HostInfo>,
    pub workers: Vec<WorkerRow>,
    pub baseline_wall_us: Option<u64>,
    pub summary: Option<RunSummary>,
    /// Main thread: every heartbeat, as (ms since the run began, lag in µs).
    pub heartbeats: Vec<(u64, u64)>,
    /// Cluster: the live figures, one entry per tick.
    pub ticks: Vec<Tick>,
    /// Cluster: deaths and replacements, in order.
    pub incidents: Vec<Incident>,
    /// Cluster: what the load generator measured, at the end.
    pub load: Option<LoadStats>,
    /// The newest server timestamp seen, in µs since the run started: the
    /// timeline's "now".
    pub latest_us: u64,
    /// What the current run asked for, from `started`.
    pub spec: Option<RunSpec>,
    /// Earlier runs on this page, newest first.
    pub history: Vec<PastRun>,
    /// The last error the server reported, for the page to show.
    pub error: Option<String>,
    /// Plain-language lines for the screen-reader log, newest last.
    pub narration: Vec<String>,
}

/// Keep the narration short: it is a live region, not an archive.
const NARRATION_LINES: usize = 12;

impl LabState {
    /// Forget the previous run and follow `run`.
    pub fn begin(&mut self, run: RunId) {
        *self = LabState {
            limits: self.limits.clone(),
            runtimes: std::mem::take(&mut self.runtimes),
            balancers: std::mem::take(&mut self.balancers),
            history: std::mem::take(&mut self.history),
            run: Some(run),
            phase: Phase::Requested,
            ..LabState::default()
        };
    }

    /// True while a run is requested, queued or running.
    pub fn busy(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The socket dropped: the server stops a run whose learner is gone,
    /// so the lab is free again.
    pub fn connection_lost(&mut self) {
        if self.busy() {
            self.phase = Phase::Idle;
            self.error =
                Some("The connection to the server was lost, so the run was stopped.".into());
            self.say("Connection lost; the run was stopped.".into());
        }
    }

    fn say(&mut self, line: String) {
        self.narration.push(line);
        let extra = self.narration.len().saturating_sub(NARRATION_LINES);
        self.narration.drain(..extra);
    }

    fn saw(&mut self, at_us: Option<u64>) {
        self.latest_us = self.latest_us.max(at_us.unwrap_or(0));
    }

    fn row(&mut self, worker: u32) -> &mut WorkerRow {
        let i = worker as usize;
        if self.workers.len() <= i {
            let len = self.workers.len() as u32;
            self.workers.extend((len..=worker).map(|w| WorkerRow {
                worker: w,
                ..WorkerRow::default()
            }));
        }
        &mut self.workers[i]
    }

    /// Fold one server event into the state. Events about other runs (an
    /// earlier run finishing late) are ignored.
    pub fn apply(&mut self, ev: ServerEvent) {
        if let ServerEvent::Hello {
            limits,
            runtimes,
            balancers,
            ..
        } = ev
        {
            self.limits = Some(limits);
            self.runtimes = runtimes;
            self.balancers = balancers;
            return;
        }
        if ev.run().is_some() && ev.run() != self.run {
            return;
        }
        match ev {
            ServerEvent::Hello { .. } => {}
            ServerEvent::RuntimeReady {
                runtime,
                version,
                boot_us,
                pid,
                ..
            } => {
                self.say(format!(
                    "{} {version} started in {} (pid {pid}); that start-up is not counted in the figures below.",
                    runtime.label(),
                    format_us(boot_us)
                ));
                self.boot = Some(Boot {
                    runtime,
                    version,
                    boot_us,
                    pid,
                });
            }
            ServerEvent::Listening { port, .. } => self.port = Some(port),
            ServerEvent::PoolTask {
                task, finished_us, ..
            } => self.pool_tasks.push((task, finished_us)),
            ServerEvent::Ping {
                at_ms, latency_us, ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.pings.push((at_ms, latency_us));
            }
            ServerEvent::LoopDelay {
                p50_us,
                p99_us,
                max_us,
                ..
            } => self.loop_delay = Some((p50_us, p99_us, max_us)),
            ServerEvent::Accepted { .. } => {
                self.phase = Phase::Running;
                self.say("Run accepted; starting workers.".into());
            }
            ServerEvent::Queued {
                position, wait_ms, ..
            } => {
                self.phase = Phase::Queued { position, wait_ms };
                self.say(format!(
                    "The server is busy: you are number {position} in the queue{}.",
                    wait_phrase(wait_ms)
                ));
            }
            ServerEvent::Started { host, spec, .. } => {
                self.spec = Some(spec);
                if host.busy {
                    self.say("The machine was already busy when this run began, so its times may be slower than usual.".into());
                }
                self.host = Some(host);
            }
            ServerEvent::WorkerSpawned {
                worker,
                start_latency_us,
                pid,
                tid,
                at_us,
                ..
            } => {
                self.saw(at_us);
                let row = self.row(worker);
                row.ready_at_us = at_us;
                row.start_latency_us = Some(start_latency_us);
                row.pid = pid;
                row.tid = tid;
                self.say(format!(
                    "Worker {worker} is running, {} after it was spawned.",
                    format_us(start_latency_us)
                ));
            }
            ServerEvent::Progress {
                worker,
                done,
                total,
                ..
            } => {
                let row = self.row(worker);
                row.done = done;
                row.total = total;
            }
            ServerEvent::RoundTrips {
                worker,
                count,
                p50_ns,
                p99_ns,
                at_us,
                ..
            } => {
                self.saw(at_us);
                let row = self.row(worker);
                row.round_trip_ns = Some((p50_ns, p99_ns));
                row.messages_at_us = at_us;
                self.say(format!(
                    "Worker {worker} answered {count} messages: a round trip takes {} (median).",
                    format_us(p50_ns / 1_000)
                ));
            }
            ServerEvent::Heartbeat { at_ms, lag_us, .. } => {
                self.saw(Some(at_ms * 1_000));
                self.heartbeats.push((at_ms, lag_us))
            }
            ServerEvent::ClusterTick {
                at_ms,
                per_worker,
                completed,
                errors,
                rps,
                load_ms,
                p50_us,
                p90_us,
                p99_us,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.ticks.push(Tick {
                    at_ms,
                    per_worker,
                    completed,
                    errors,
                    rps,
                    load_ms,
                    p50_us,
                    p90_us,
                    p99_us,
                })
            }
            ServerEvent::WorkerExited {
                instance: Some(instance),
                worker,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.scaling.worker(instance, worker, BoxState::Down);
                self.scaling.log.push((
                    at_ms,
                    format!("Worker {worker} of instance {instance} died."),
                ));
            }
            ServerEvent::WorkerRespawned {
                instance: Some(instance),
                worker,
                downtime_us,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.scaling.worker(instance, worker, BoxState::Up);
                let line = format!(
                    "Instance {instance}'s primary replaced worker {worker} in {}.",
                    format_us(downtime_us)
                );
                self.say(line.clone());
                self.scaling.log.push((at_ms, line));
            }
            ServerEvent::WorkerExited {
                worker,
                pid,
                signal,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                let incident = Incident::Exited {
                    worker,
                    pid,
                    signal,
                    at_ms,
                };
                self.say(incident_sentence(&incident));
                self.incidents.push(incident);
            }
            ServerEvent::WorkerRespawned {
                worker,
                pid,
                downtime_us,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                let incident = Incident::Respawned {
                    worker,
                    pid,
                    downtime_us,
                    at_ms,
                };
                self.say(incident_sentence(&incident));
                self.incidents.push(incident);
            }
            ServerEvent::InstanceUp {
                instance,
                port,
                pid,
                start_us,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                let workers = self.spec.as_ref().map_or(0, |s| s.workers) as usize;
                let row = self.scaling.instance(instance);
                row.port = Some(port);
                row.pid = Some(pid);
                row.state = BoxState::Up;
                row.start_us = Some(start_us);
                row.workers = vec![BoxState::Up; workers];
                row.starts += 1;
                let again = row.starts > 1;
                let line = format!(
                    "Instance {instance} {} on port {port} after {}.",
                    if again { "is back, serving" } else { "serves" },
                    format_us(start_us)
                );
                self.say(line.clone());
                if again {
                    self.scaling.log.push((at_ms, line));
                }
            }
            ServerEvent::InstanceDown {
                instance, at_ms, ..
            } => {
                self.saw(Some(at_ms * 1_000));
                let row = self.scaling.instance(instance);
                row.state = BoxState::Down;
                row.workers.iter_mut().for_each(|w| *w = BoxState::Down);
                let line = format!("Instance {instance} was killed, primary and workers.");
                self.say(line.clone());
                self.scaling.log.push((at_ms, line));
            }
            ServerEvent::BalancerUp {
                balancer,
                version,
                port,
                pid,
                at_ms,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.say(format!(
                    "{} ({version}) balances on port {port}.",
                    balancer.label()
                ));
                self.scaling.balancer = Some((balancer, version, port, pid));
                self.scaling.balancer_state = BoxState::Up;
            }
            ServerEvent::BalancerDown { at_ms, .. } => {
                self.saw(Some(at_ms * 1_000));
                self.scaling.balancer_state = BoxState::Down;
                let line = "The balancer was killed: nothing reaches the instances now.";
                self.say(line.into());
                self.scaling.log.push((at_ms, line.into()));
            }
            ServerEvent::ScalingTick {
                at_ms,
                load_ms,
                per_instance,
                completed,
                errors,
                rps,
                p50_us,
                p90_us,
                p99_us,
                balancer,
                ..
            } => {
                self.saw(Some(at_ms * 1_000));
                self.scaling.ticks.push(ScalingTick {
                    at_ms,
                    load_ms,
                    per_instance,
                    completed,
                    errors,
                    rps,
                    p50_us,
                    p90_us,
                    p99_us,
                    balancer,
                });
            }
            ServerEvent::ScalingFinished { stats, .. } => {
                self.say(format!(
                    "The load is done: {} of {} requests answered, {} failed as the client saw it; the balancer made {} attempts, {} of them failed.",
                    format_count(stats.completed),
                    format_count(stats.requests),
                    format_count(stats.errors),
                    format_count(stats.balancer.attempts.iter().sum()),
                    format_count(stats.balancer.failed_attempts),
                ));
                self.scaling.stats = Some(stats);
            }
            ServerEvent::LoadFinished { stats, .. } => {
                self.say(format!(
                    "The load is done: {} of {} requests answered, {} failed, {} per second.",
                    format_count(stats.completed),
                    format_count(stats.requests),
                    format_count(stats.errors),
                    Fixed(stats.rps, 0)
                ));
                self.load = Some(stats);
            }
            ServerEvent::WorkerFinished {
                worker,
                wall_us,
                cpu_us,
                memory,
                messages,
                result,
                at_us,
                ..
            } => {
                self.saw(at_us);
                let row = self.row(worker);
                row.finished_at_us = at_us;
                row.wall_us = Some(wall_us);
                row.cpu_us = Some(cpu_us);
                row.memory = memory;
                row.messages = messages;
                row.result = Some(result);
                self.say(format!(
                    "Worker {worker} finished in {} using {} of CPU.",
                    format_us(wall_us),
                    format_us(cpu_us)
                ));
            }
            ServerEvent::BaselineStarted { .. } => {
                self.phase = Phase::Baseline;
                self.say("Now timing the same work on one worker, to measure the speedup.".into());
            }
            ServerEvent::BaselineFinished { wall_us, .. } => {
                self.baseline_wall_us = Some(wall_us);
                self.say(format!("One worker took {}.", format_us(wall_us)));
            }
            ServerEvent::RunFinished { summary, .. } => {
                self.phase = Phase::Idle;
                let speedup = summary
                    .speedup
                    .map(|s| format!(", {}× faster than one worker", Fixed(s, 2)))
                    .unwrap_or_default();
                self.say(format!(
                    "Run {}: {}{speedup}.",
                    outcome_word(summary.outcome),
                    format_us(summary.wall_us)
                ));
                if let Some(spec) = &self.spec {
                    let counted: Vec<u64> =
                        self.workers.iter().filter_map(|w| w.messages).collect();
                    self.history.insert(
                        0,
                        PastRun {
                            run: self.run.unwrap_or_default(),
                            spec: spec.clone(),
                            settings: describe_spec(spec),
                            summary: summary.clone(),
                            start_us: median(
                                self.workers
                                    .iter()
                                    .filter_map(|w| w.start_latency_us)
                                    .collect(),
                            ),
                            memory_bytes: median(
                                self.workers
                                    .iter()
                                    .filter_map(|w| w.memory.map(|m| m.anon_bytes))
                                    .collect(),
                            ),
                            messages: (!counted.is_empty()).then(|| counted.iter().sum()),
                            boot_us: self.boot.as_ref().map(|b| b.boot_us),
                        },
                    );
                    self.history.truncate(HISTORY);
                }
                self.summary = Some(summary);
            }
            ServerEvent::Error { message, .. } => {
                if matches!(self.phase, Phase::Requested) {
                    self.phase = Phase::Idle;
                }
                self.say(format!("Error: {message}"));
                self.error = Some(message);
            }
        }
    }
}

/// ", about 3 s" for an estimated wait in milliseconds; nothing without one.
pub fn wait_phrase(wait_ms: Option<u64>) -> String {
    match wait_ms {
        None => String::new(),
        Some(ms) if ms < 1_000 => ", under a second".into(),
        Some(ms) => format!(", about {} s", ms.div_ceil(1_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelSpec, Outcome, RunSummary, Sharing, ThreadStrategy, Workload};

    fn finished(run: RunId) -> ServerEvent {
        ServerEvent::RunFinished {
            run,
            summary: RunSummary {
                outcome: Outcome::Completed,
                wall_us: 1_500_000,
                cpu_us: 3_000_000,
                result: WorkResult::Primes { count: 10 },
                baseline_wall_us: Some(3_000_000),
                speedup: Some(2.0),
                main_loop_lag_us: None,
                shared_with: Some(0),
            },
        }
    }

    #[test]
    fn a_run_is_followed_from_start_to_summary() {
        let mut lab = LabState::default();
        lab.begin(1);
        lab.apply(ServerEvent::Accepted { run: 1 });
        assert_eq!(lab.phase, Phase::Running);
        lab.apply(ServerEvent::WorkerSpawned {
            run: 1,
            worker: 1,
            start_latency_us: 40,
            pid: 10,
            tid: Some(11),
            at_us: Some(140),
        });
        assert_eq!(lab.workers[1].spawned_at_us(), Some(100));
        assert_eq!(lab.latest_us, 140);
        assert_eq!(lab.workers.len(), 2, "rows exist up to the highest worker");
        lab.apply(ServerEvent::Progress {
            run: 1,
            worker: 1,
            done: 3,
            total: 4,
        });
        assert_eq!(lab.workers[1].fraction(), 0.75);
        lab.apply(finished(1));
        assert_eq!(lab.phase, Phase::Idle);
        assert_eq!(lab.summary.as_ref().unwrap().speedup, Some(2.0));
        assert_eq!(
            lab.narration.last().unwrap(),
            "Run completed: 1.50 s, 2.00× faster than one worker."
        );
    }

    #[test]
    fn events_of_another_run_are_ignored() {
        let mut lab = LabState::default();
        lab.begin(2);
        lab.apply(finished(1));
        assert_eq!(lab.phase, Phase::Requested);
        assert!(lab.summary.is_none());
    }

    #[test]
    fn a_refused_request_frees_the_lab() {
        let mut lab = LabState::default();
        lab.begin(3);
        lab.apply(ServerEvent::Error {
            run: Some(3),
            code: crate::ErrorCode::InvalidField,
            field: Some("spec.workers".into()),
            message: "spec.workers must be between 1 and 16, got 99".into(),
        });
        assert!(!lab.busy());
        assert_eq!(
            lab.error.as_deref(),
            Some("spec.workers must be between 1 and 16, got 99")
        );
    }

    #[test]
    fn finished_runs_are_kept_to_compare_with_the_next() {
        let mut lab = LabState::default();
        let spec = RunSpec {
            runtime: Default::default(),
            model: ModelSpec::Threads {
                strategy: ThreadStrategy::Pool,
                sharing: Sharing::SharedMemory,
            },
            workload: Workload::Primes { below: 3_000_000 },
            workers: 2,
        };
        for run in 1..=(HISTORY as u64 + 2) {
            lab.begin(run);
            lab.apply(ServerEvent::Started {
                run,
                spec: spec.clone(),
                host: HostInfo {
                    cpu_model: "test".into(),
                    logical_cores: 2,
                    physical_cores: None,
                    load_average: [0.0; 3],
                    memory_total_bytes: 1,
                    memory_available_bytes: 1,
                    busy: false,
                    debug_build: false,
                },
            });
            for worker in 0..2 {
                lab.apply(ServerEvent::WorkerFinished {
                    run,
                    worker,
                    wall_us: 1,
                    cpu_us: 1,
                    memory: None,
                    messages: Some(0),
                    result: WorkResult::Primes { count: 1 },
                    at_us: None,
                });
            }
            lab.apply(finished(run));
        }
        assert_eq!(lab.history.len(), HISTORY, "only the newest are kept");
        let newest = &lab.history[0];
        assert_eq!(newest.run, HISTORY as u64 + 2);
        assert_eq!(
            newest.settings,
            "primes below 3,000,000 · 2 workers · pool · shared memory"
        );
        assert_eq!(newest.messages, Some(0), "a shared board sends none");
        assert_eq!(newest.summary.speedup, Some(2.0));
    }
}
