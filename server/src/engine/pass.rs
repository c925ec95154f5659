//! What a model hands back, and the skeleton the threads and process models
//! share: one pass over the workers, reported live, then the same job on one
//! worker, so the speedup is measured rather than assumed.

use super::error::RunError;
use super::measure;
use super::report::{Reporter, WorkerReport};
use super::{EventSink, Stop};
use protocol::{RunId, ServerEvent, WorkResult};
use std::time::Duration;

/// What a model hands back to the engine when its workers are done.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRun {
    /// Start of the first spawn to the end of the last worker.
    pub wall: Duration,
    /// CPU time of all workers together.
    pub cpu: Duration,
    /// Each worker's result, in worker order; `None` for a worker that stopped.
    pub results: Vec<Option<WorkResult>>,
    /// The one-worker baseline's wall time, when it was measured.
    pub baseline_wall: Option<Duration>,
    /// Main-thread model: the latest any heartbeat ran.
    pub max_lag: Option<Duration>,
}

/// What one pass over a run's workers measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Start of the first spawn to the end of the last worker.
    pub wall: Duration,
    /// CPU time of all workers together.
    pub cpu: Duration,
    /// Each worker's result, in worker order; `None` for a worker that stopped.
    pub results: Vec<Option<WorkResult>>,
}

impl Pass {
    /// A pass in which no worker finished.
    pub fn stopped(workers: u32) -> Self {
        Pass {
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
            results: vec![None; workers as usize],
        }
    }

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
        one_worker: impl FnOnce() -> Result<Pass, RunError>,
    ) -> Result<ModelRun, RunError> {
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

/// Which pass a model is asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The learner's run, every worker, reported live.
    Run,
    /// The same job on one worker, for the speedup; not reported per worker.
    Baseline,
}

/// The shared skeleton: on a blocking thread, `pass(Which::Run, workers, …)`
/// with its reports turned into events, then — when `baseline` is true —
/// `pass(Which::Baseline, 1, …)` for the speedup. `what` names the
/// coordinator in the error if it panics.
pub async fn measured<F>(
    id: RunId,
    workers: u32,
    baseline: bool,
    events: &EventSink,
    stop: &Stop,
    what: &'static str,
    pass: F,
) -> Result<ModelRun, RunError>
where
    F: Fn(Which, u32, &Stop, &mut dyn FnMut(u32, WorkerReport)) -> Result<Pass, RunError>
        + Send
        + 'static,
{
    let (events, stop) = (events.clone(), stop.clone());
    tokio::task::spawn_blocking(move || {
        let mut reporter = Reporter::new(id, workers, events.clone(), stop.clone());
        let first = pass(Which::Run, workers, &stop, &mut |worker, report| {
            reporter.report(worker, report)
        })?;
        if !baseline {
            return Ok(first.alone());
        }
        first.with_baseline(id, workers, &events, &stop, || {
            pass(Which::Baseline, 1, &stop, &mut |_, _| {})
        })
    })
    .await
    .map_err(|e| RunError::joined(what, e))?
}
