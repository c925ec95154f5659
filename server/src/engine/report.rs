//! What a worker tells its coordinator, in every model, and how that becomes
//! the protocol's events.
//!
//! Threads and processes reach their coordinator in different ways (a
//! channel, a pipe), but what they have to say is the same; this module is
//! the one place that turns it into `worker_*` and `progress` events.

use super::measure::{micros, percentile};
use super::{EventSink, Pass, Stop};
use protocol::{ErrorCode, Memory, RunId, ServerEvent, WorkResult};
use std::time::{Duration, Instant};

/// One thing a worker has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerReport {
    /// Its first message arrived, `latency` after the spawn call.
    Ready {
        latency: Duration,
        pid: u32,
        tid: Option<u32>,
    },
    /// Round trips of small messages over its channel.
    RoundTrips(Vec<Duration>),
    Progress {
        done: u64,
        total: u64,
    },
    /// Its work is over (`result` is `None` if it was stopped).
    Done {
        result: Option<WorkResult>,
        cpu: Duration,
        memory: Option<Memory>,
        /// Spawn to this report.
        wall: Duration,
        /// Messages it sent its coordinator, where that is counted.
        messages: Option<u64>,
    },
    /// It ended without reporting: killed, crashed, or broke the channel.
    Lost {
        wall: Duration,
        why: String,
    },
}

/// Shortest gap between two progress events of one worker: enough for smooth
/// bars, few enough that a fast worker does not flood a slow browser.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// Turns one run's worker reports into events.
pub struct Reporter {
    run: RunId,
    events: EventSink,
    last_progress: Vec<Option<Instant>>,
    /// The run's start, for the events' `at_us` stamps.
    began: Instant,
    /// Once a stop is requested, a lost worker is the stop's doing.
    stop: Stop,
}

impl Reporter {
    /// A reporter for `workers` workers of run `run`.
    pub fn new(run: RunId, workers: u32, events: EventSink, stop: Stop) -> Self {
        Reporter {
            run,
            events,
            last_progress: vec![None; workers as usize],
            began: Instant::now(),
            stop,
        }
    }

    fn send(&self, ev: ServerEvent) {
        // Nobody listening is not the workers' problem; the stop signal, not
        // the sink, ends the work.
        let _ = self.events.send(ev);
    }

    /// Pass on what `worker` said. Progress is thinned to one event per
    /// [`PROGRESS_EVERY`], except a worker's last step.
    pub fn report(&mut self, worker: u32, report: WorkerReport) {
        let run = self.run;
        let at_us = Some(micros(self.began.elapsed()));
        match report {
            WorkerReport::Ready { latency, pid, tid } => self.send(ServerEvent::WorkerSpawned {
                run,
                worker,
                start_latency_us: micros(latency),
                pid,
                tid,
                at_us,
            }),
            WorkerReport::RoundTrips(mut samples) => {
                samples.sort_unstable();
                self.send(ServerEvent::RoundTrips {
                    run,
                    worker,
                    count: samples.len() as u32,
                    p50_ns: percentile(&samples, 50.0).as_nanos() as u64,
                    p99_ns: percentile(&samples, 99.0).as_nanos() as u64,
                    max_ns: samples.last().map_or(0, |d| d.as_nanos() as u64),
                    at_us,
                })
            }
            WorkerReport::Progress { done, total } => {
                let slot = &mut self.last_progress[worker as usize];
                if slot.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done == total {
                    *slot = Some(Instant::now());
                    self.send(ServerEvent::Progress {
                        run,
                        worker,
                        done,
                        total,
                    });
                }
            }
            WorkerReport::Done {
                result,
                cpu,
                memory,
                wall,
                messages,
            } => self.send(ServerEvent::WorkerFinished {
                run,
                worker,
                wall_us: micros(wall),
                cpu_us: micros(cpu),
                memory,
                messages,
                result: result.unwrap_or(WorkResult::Incomplete),
                at_us,
            }),
            WorkerReport::Lost { wall, why } => {
                if !self.stop.is_requested() {
                    self.send(ServerEvent::Error {
                        run: Some(run),
                        code: ErrorCode::RunFailed,
                        field: None,
                        message: format!("worker {worker} ended without finishing: {why}"),
                    });
                }
                self.send(ServerEvent::WorkerFinished {
                    run,
                    worker,
                    wall_us: micros(wall),
                    cpu_us: 0,
                    memory: None,
                    messages: None,
                    result: WorkResult::Incomplete,
                    at_us,
                });
            }
        }
    }
}

/// Adds up one pass over the workers as their reports arrive.
pub struct Tally {
    started: Instant,
    results: Vec<Option<WorkResult>>,
    cpu: Duration,
    ended: Option<Instant>,
}

impl Tally {
    /// Start counting now, for `workers` workers.
    pub fn new(workers: u32) -> Self {
        Tally {
            started: Instant::now(),
            results: vec![None; workers as usize],
            cpu: Duration::ZERO,
            ended: None,
        }
    }

    /// Take note of a report before it is passed on.
    pub fn note(&mut self, worker: u32, report: &WorkerReport) {
        if let WorkerReport::Done { result, cpu, .. } = report {
            self.results[worker as usize] = result.clone();
            self.cpu += *cpu;
            self.ended = Some(Instant::now());
        }
    }

    /// The pass: first spawn to last result, every worker's CPU time.
    pub fn finish(self) -> Pass {
        Pass {
            wall: self.ended.unwrap_or_else(Instant::now) - self.started,
            cpu: self.cpu,
            results: self.results,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> (
        Reporter,
        tokio::sync::mpsc::UnboundedReceiver<ServerEvent>,
        Stop,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = Stop::new();
        (Reporter::new(4, 2, tx, stop.clone()), rx, stop)
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<ServerEvent>) -> Vec<ServerEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn progress_is_thinned_but_the_last_step_always_passes() {
        let (mut r, mut rx, _) = reporter();
        let step = |done| WorkerReport::Progress { done, total: 10 };
        r.report(0, step(1));
        r.report(0, step(2));
        r.report(1, step(1));
        r.report(0, step(10));
        let done: Vec<_> = drain(&mut rx)
            .into_iter()
            .map(|e| match e {
                ServerEvent::Progress { worker, done, .. } => (worker, done),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(done, vec![(0, 1), (1, 1), (0, 10)]);
    }

    #[test]
    fn a_lost_worker_is_an_error_unless_the_run_is_stopping() {
        let (mut r, mut rx, stop) = reporter();
        let lost = || WorkerReport::Lost {
            wall: Duration::from_millis(3),
            why: "killed by signal 9".into(),
        };
        r.report(1, lost());
        let events = drain(&mut rx);
        assert!(matches!(&events[0], ServerEvent::Error { message, .. }
            if message == "worker 1 ended without finishing: killed by signal 9"));
        assert!(matches!(
            events[1],
            ServerEvent::WorkerFinished {
                result: WorkResult::Incomplete,
                ..
            }
        ));
        stop.request(crate::engine::StopReason::Cancelled);
        r.report(0, lost());
        assert_eq!(drain(&mut rx).len(), 1, "only the worker's end");
    }

    #[test]
    fn round_trips_are_summarised_by_percentile() {
        let (mut r, mut rx, _) = reporter();
        let samples = (1..=100).rev().map(Duration::from_micros).collect();
        r.report(0, WorkerReport::RoundTrips(samples));
        assert!(matches!(
            drain(&mut rx)[0],
            ServerEvent::RoundTrips {
                count: 100,
                p50_ns: 50_000,
                p99_ns: 99_000,
                max_ns: 100_000,
                ..
            }
        ));
    }
}
