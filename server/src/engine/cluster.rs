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

use super::loadgen::{self, Live, Load};
use super::measure::micros;
use super::spawn::{kill_group, spawn};
use super::{EventSink, Faults, ModelRun, Pass, Stop};
use app::protocol::{
    KillWorker, LoadStats, Memory, RunId, SchedPolicy, ServerEvent, WorkResult, Workload,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
    pub binary: PathBuf,
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

/// Start the cluster, drive the load through it, and report.
pub async fn run(
    id: RunId,
    plan: Plan,
    events: &EventSink,
    stop: &Stop,
    mut faults: Option<Faults>,
) -> Result<ModelRun, String> {
    let send = |ev| {
        let _ = events.send(ev);
    };
    // Every stamp of the run counts from here, the primary's spawn.
    let began = Instant::now();
    let at_us = || Some(micros(began.elapsed()));
    let mut command = Command::new(&plan.binary);
    command
        .arg(PRIMARY_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut primary = tokio::task::spawn_blocking(move || spawn(command, None))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("could not start the cluster primary: {e}"))?;
    let stdin = primary.stdin.take().ok_or("no primary stdin")?;
    let stdout = primary.stdout.take().ok_or("no primary stdout")?;
    let _guard = ClusterGuard { primary };
    let mut to_primary = tokio::process::ChildStdin::from_std(stdin).map_err(|e| e.to_string())?;
    let from_primary = tokio::process::ChildStdout::from_std(stdout).map_err(|e| e.to_string())?;
    let mut messages = relay(from_primary);

    tell(
        &mut to_primary,
        &ToPrimary::Start {
            workers: plan.workers,
            policy: plan.policy,
            workload: plan.workload.clone(),
        },
    )
    .await?;

    // Set-up: the port, then every worker's start latency.
    let mut port = None;
    let setup = async {
        loop {
            match messages.recv().await {
                Some(FromPrimary::Listening { port: p }) => port = Some(p),
                Some(FromPrimary::WorkerUp {
                    worker,
                    pid,
                    latency_us,
                }) => send(ServerEvent::WorkerSpawned {
                    run: id,
                    worker,
                    start_latency_us: latency_us,
                    pid,
                    tid: None,
                    at_us: at_us(),
                }),
                Some(FromPrimary::Serving) => return Ok(()),
                Some(FromPrimary::Failed { message }) => return Err(message),
                Some(_) => {}
                None => return Err("the cluster primary exited during start-up".to_string()),
            }
        }
    };
    tokio::select! {
        r = tokio::time::timeout(SETUP_TIMEOUT, setup) => {
            r.map_err(|_| "the cluster did not start in time".to_string())??
        }
        _ = stop.requested() => return Ok(stopped(plan.workers)),
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port.ok_or("the primary named no port")?));

    // The load, with live figures and fault injection beside it.
    let live = Arc::new(Live::new(plan.workers));
    let load = tokio::spawn(loadgen::run(
        Load {
            addr,
            requests: plan.requests.into(),
            concurrency: plan.concurrency,
            keep_alive: plan.keep_alive,
        },
        live.clone(),
        stop.clone(),
    ));
    tokio::pin!(load);
    let mut ticker = tokio::time::interval(TICK);
    let mut last_completed = 0;
    let mut kill = plan.kill;
    let mut respawns = 0;
    let at_ms = || began.elapsed().as_millis() as u64;
    let duration = loop {
        tokio::select! {
            done = &mut load => break done.map_err(|e| e.to_string())?,
            _ = ticker.tick() => {
                last_completed = tick(id, &live, last_completed, at_ms(), events);
                if let Some(k) = kill.filter(|k| live.completed.load(Ordering::Relaxed) >= k.after_requests.into()) {
                    tell(&mut to_primary, &ToPrimary::Kill { worker: k.worker }).await?;
                    kill = None;
                }
            }
            // A kill the learner asked for, now.
            Some(worker) = async { faults.as_mut()?.recv().await } => {
                tell(&mut to_primary, &ToPrimary::Kill { worker }).await?;
            }
            msg = messages.recv() => match msg {
                Some(FromPrimary::WorkerExited { worker, pid, signal, exit_code }) => {
                    send(ServerEvent::WorkerExited { run: id, worker, pid, signal, exit_code, at_ms: at_ms() })
                }
                Some(FromPrimary::WorkerRespawned { worker, pid, downtime_us }) => {
                    respawns += 1;
                    send(ServerEvent::WorkerRespawned { run: id, worker, pid, downtime_us, at_ms: at_ms() })
                }
                Some(FromPrimary::Failed { message }) => return Err(message),
                Some(_) => {}
                None => return Err("the cluster primary exited under load".to_string()),
            },
            // A kill that waits for a request count must not wait forever:
            // check more often than the ticker while one is pending.
            _ = tokio::time::sleep(Duration::from_millis(5)), if kill.is_some() => {
                if let Some(k) = kill.filter(|k| live.completed.load(Ordering::Relaxed) >= k.after_requests.into()) {
                    tell(&mut to_primary, &ToPrimary::Kill { worker: k.worker }).await?;
                    kill = None;
                }
            }
        }
    };
    tick(id, &live, last_completed, at_ms(), events);
    if stop.is_requested() {
        return Ok(stopped(plan.workers));
    }

    // The workers' own counts, CPU time and memory.
    tell(&mut to_primary, &ToPrimary::Finish).await?;
    let stats = tokio::time::timeout(SETUP_TIMEOUT, async {
        loop {
            match messages.recv().await {
                Some(FromPrimary::Stats {
                    served,
                    cpu_us,
                    memory,
                }) => return Some((served, cpu_us, memory)),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
    .ok_or("the cluster primary did not report its workers")?;
    let (served, cpu_us, memory) = stats;
    let per_worker = live.per_worker();
    let mut results = Vec::new();
    let mut cpu = Duration::ZERO;
    for (worker, &answered) in per_worker.iter().enumerate() {
        let worker_cpu = cpu_us.get(worker).copied().flatten().unwrap_or(0);
        cpu += Duration::from_micros(worker_cpu);
        let result = WorkResult::Requests { served: answered };
        send(ServerEvent::WorkerFinished {
            run: id,
            worker: worker as u32,
            wall_us: micros(duration),
            cpu_us: worker_cpu,
            memory: memory.get(worker).copied().flatten(),
            messages: None,
            result: result.clone(),
            at_us: at_us(),
        });
        results.push(Some(result));
    }
    let completed = live.completed.load(Ordering::Relaxed);
    send(ServerEvent::LoadFinished {
        run: id,
        stats: LoadStats {
            requests: plan.requests.into(),
            completed,
            errors: live.errors.load(Ordering::Relaxed),
            per_worker,
            served_by_workers: served,
            duration_us: micros(duration),
            rps: completed as f64 / duration.as_secs_f64().max(1e-9),
            latency: live.latency(),
            respawns,
        },
    });
    Ok(Pass {
        wall: duration,
        cpu,
        results,
    }
    .alone())
}

/// What a stopped cluster run amounts to: nothing complete.
fn stopped(workers: u32) -> ModelRun {
    Pass {
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        results: vec![None; workers as usize],
    }
    .alone()
}

/// Stream the live figures; returns the completed count for the next tick.
fn tick(id: RunId, live: &Live, last_completed: u64, at_ms: u64, events: &EventSink) -> u64 {
    let completed = live.completed.load(Ordering::Relaxed);
    let latency = live.latency();
    let _ = events.send(ServerEvent::ClusterTick {
        run: id,
        at_ms,
        per_worker: live.per_worker(),
        completed,
        errors: live.errors.load(Ordering::Relaxed),
        rps: (completed - last_completed) as f64 / TICK.as_secs_f64(),
        p50_us: latency.p50_us,
        p90_us: latency.p90_us,
        p99_us: latency.p99_us,
    });
    completed
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

async fn tell(to: &mut tokio::process::ChildStdin, msg: &ToPrimary) -> Result<(), String> {
    let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
    line.push(b'\n');
    to.write_all(&line)
        .await
        .map_err(|e| format!("the cluster primary stopped listening: {e}"))
}
