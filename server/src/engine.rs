//! The engine: really runs a learner's workload and streams what it measures.
//!
//! It knows nothing of axum or Leptos. Whoever drives it — the WebSocket
//! route, the CLI, a test — hands [`Engine::run`] a validated [`RunSpec`], a
//! channel for [`ServerEvent`]s and a [`Stop`] it can trigger, and gets the
//! run's summary back when it is over.
//!
//! # Layout
//!
//! - [`catalogue`]: the workloads and how one is split between workers.
//! - [`limits`]: every bound a request must fit, and its validation.
//! - [`admission`]: run slots, the worker budget and the waiting line.
//! - [`main_thread`]: the work on an event loop with a heartbeat.
//! - [`threads`]: the worker-threads model.
//! - [`cluster`]: a primary and HTTP workers on one port, loaded by
//!   [`loadgen`].
//! - [`process`]: the child-process model (and allow-listed programs), over
//!   the line-delimited channel in [`ipc`]; [`spawn`] starts every process
//!   in its run's process group, armed to die with the server.
//! - [`report`]: what workers say, turned into the protocol's events.
//! - [`calibrate`]: the compare page's figures, every model run once.
//! - [`host`]: what machine the figures come from.
//! - [`measure`]: per-thread and per-process clocks.

pub mod admission;
pub mod calibrate;
pub mod catalogue;
pub mod cluster;
pub mod host;
pub mod ipc;
pub mod limits;
pub mod loadgen;
pub mod main_thread;
pub mod measure;
pub mod process;
pub mod report;
pub mod spawn;
pub mod threads;

use app::protocol::{
    ErrorCode, ModelSpec, Outcome, RunId, RunSpec, RunSummary, ServerEvent, WorkResult,
};
use limits::{Invalid, Limits};
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
        self.reason().map(|r| match r {
            StopReason::Deadline => Outcome::DeadlineExceeded,
            _ => Outcome::Cancelled,
        })
    }
}

/// What a model hands back to the engine when its workers are done.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRun {
    /// Start of the first spawn to the end of the last worker.
    pub wall: std::time::Duration,
    /// CPU time of all workers together.
    pub cpu: std::time::Duration,
    /// Each worker's result, in worker order; `None` for a worker that stopped.
    pub results: Vec<Option<WorkResult>>,
    /// The one-worker baseline's wall time, when it was measured.
    pub baseline_wall: Option<std::time::Duration>,
    /// Main-thread model: the latest any heartbeat ran.
    pub max_lag: Option<std::time::Duration>,
}

/// What one pass over a run's workers measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Start of the first spawn to the end of the last worker.
    pub wall: std::time::Duration,
    /// CPU time of all workers together.
    pub cpu: std::time::Duration,
    /// Each worker's result, in worker order; `None` for a worker that stopped.
    pub results: Vec<Option<WorkResult>>,
}

impl Pass {
    fn complete(&self) -> bool {
        self.results.iter().all(Option::is_some)
    }

    /// The run's result, without a baseline (nothing to compare with).
    pub fn alone(self) -> ModelRun {
        ModelRun {
            wall: self.wall,
            cpu: self.cpu,
            results: self.results,
            baseline_wall: None,
            max_lag: None,
        }
    }

    /// The run's result with its one-worker baseline, so the speedup is
    /// measured: a one-worker pass is its own baseline; otherwise, if the
    /// pass completed and nobody asked to stop, `one_worker` runs the same
    /// job on a single worker, announced by `baseline_*` events.
    pub fn with_baseline(
        self,
        id: RunId,
        workers: u32,
        events: &EventSink,
        stop: &Stop,
        one_worker: impl FnOnce() -> Result<Pass, String>,
    ) -> Result<ModelRun, String> {
        let baseline_wall = if workers == 1 {
            Some(self.wall)
        } else if self.complete() && !stop.is_requested() {
            let _ = events.send(ServerEvent::BaselineStarted { run: id });
            let baseline = one_worker()?;
            baseline.complete().then(|| {
                let _ = events.send(ServerEvent::BaselineFinished {
                    run: id,
                    wall_us: measure::micros(baseline.wall),
                    cpu_us: measure::micros(baseline.cpu),
                });
                baseline.wall
            })
        } else {
            None
        };
        Ok(ModelRun {
            baseline_wall,
            ..self.alone()
        })
    }
}

/// Runs requests within the configured limits.
#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    /// Run slots, the worker budget and the waiting line.
    admission: admission::Admission,
    /// The worker binary and the directory `list_public` lists.
    paths: process::Paths,
}

impl Engine {
    /// An engine that runs at most `max_concurrent_runs` at once, with at
    /// most `max_live_workers` workers among them, and lets at most
    /// `max_queue` more wait.
    pub fn new(
        limits: Limits,
        max_concurrent_runs: u32,
        max_live_workers: u32,
        max_queue: u32,
    ) -> Self {
        Engine {
            limits,
            admission: admission::Admission::new(max_concurrent_runs, max_live_workers, max_queue),
            paths: process::Paths {
                // Re-execute ourselves, as Node's fork() starts another node.
                worker_binary: std::env::current_exe().unwrap_or_else(|_| "spawnlab".into()),
                list_dir: "public".into(),
            },
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

    /// The bounds requests are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Check a request without running it.
    pub fn validate(&self, spec: &RunSpec) -> Result<(), Invalid> {
        self.limits.validate(spec)
    }

    /// Validate, admit, run and report one run, start to finish. Every event
    /// goes to `events` tagged with `id`; the last one is `run_finished`
    /// (or an `error` when the request is refused before it starts).
    pub async fn run(
        &self,
        id: RunId,
        spec: RunSpec,
        events: EventSink,
        stop: Stop,
    ) -> Option<RunSummary> {
        self.run_with_faults(id, spec, events, stop, None).await
    }

    /// [`Engine::run`], with a channel of workers to kill while a cluster
    /// serves its load (ignored by the other models).
    pub async fn run_with_faults(
        &self,
        id: RunId,
        spec: RunSpec,
        events: EventSink,
        stop: Stop,
        faults: Option<Faults>,
    ) -> Option<RunSummary> {
        let send = |ev| {
            // A closed sink means nobody is listening; the stop signal, not
            // the sink, is what ends the work.
            let _ = events.send(ev);
        };
        if let Err(invalid) = self.validate(&spec) {
            send(ServerEvent::Error {
                run: Some(id),
                code: invalid.code,
                field: Some(invalid.field),
                message: invalid.message,
            });
            return None;
        }
        let workers = match spec.model {
            // The primary is a process too.
            ModelSpec::Cluster { .. } => spec.workers + 1,
            _ => spec.workers,
        };
        let queued = |position| send(ServerEvent::Queued { run: id, position });
        let _pass = match self.admission.enter(workers, queued, &stop).await {
            Ok(pass) => pass,
            Err(admission::Refusal::QueueFull(n)) => {
                send(ServerEvent::Error {
                    run: Some(id),
                    code: ErrorCode::Busy,
                    field: None,
                    message: format!(
                        "the server is busy: {n} runs are already waiting, the most it queues; \
                         try again in a moment"
                    ),
                });
                return None;
            }
            Err(admission::Refusal::Stopped(reason)) => {
                let outcome = if reason == StopReason::Deadline {
                    Outcome::DeadlineExceeded
                } else {
                    Outcome::Cancelled
                };
                let summary = RunSummary::empty(outcome);
                send(ServerEvent::RunFinished {
                    run: id,
                    summary: summary.clone(),
                });
                return Some(summary);
            }
        };
        send(ServerEvent::Accepted { run: id });
        let host = tokio::task::spawn_blocking(host::describe)
            .await
            .expect("describing the host does not panic");
        send(ServerEvent::Started {
            run: id,
            spec: spec.clone(),
            host,
        });

        let deadline = {
            let stop = stop.clone();
            let after = self.limits.run_deadline;
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                stop.request(StopReason::Deadline);
            })
        };
        let result = match spec.model {
            ModelSpec::Threads { strategy, sharing } => {
                let style = threads::Style { strategy, sharing };
                let pool_size = self.limits.max_workers;
                let workload = spec.workload.clone();
                threads::run(id, workload, spec.workers, style, pool_size, &events, &stop).await
            }
            ModelSpec::MainThread => {
                main_thread::run(id, spec.workload.clone(), &events, &stop).await
            }
            ModelSpec::Cluster {
                policy,
                requests,
                concurrency,
                keep_alive,
                kill,
            } => {
                let plan = cluster::Plan {
                    workers: spec.workers,
                    policy,
                    workload: spec.workload.clone(),
                    requests,
                    concurrency,
                    keep_alive,
                    kill,
                    binary: self.paths.worker_binary.clone(),
                };
                cluster::run(id, plan, &events, &stop, faults).await
            }
            ModelSpec::ChildProcess { round_trips } => {
                process::run(
                    id,
                    spec.workload.clone(),
                    spec.workers,
                    round_trips,
                    self.paths.clone(),
                    &events,
                    &stop,
                )
                .await
            }
        };
        deadline.abort();

        let summary = match result {
            Ok(run) => summarize(run, &stop),
            Err(message) => {
                send(ServerEvent::Error {
                    run: Some(id),
                    code: ErrorCode::RunFailed,
                    field: None,
                    message,
                });
                RunSummary::empty(Outcome::Failed)
            }
        };
        send(ServerEvent::RunFinished {
            run: id,
            summary: summary.clone(),
        });
        Some(summary)
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
