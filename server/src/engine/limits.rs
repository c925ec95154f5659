//! The bounds every run must fit in, and the check that a request does.
//!
//! The site runs work for anonymous visitors, so nothing reaches a worker
//! before [`Limits::validate`] has passed it. A refusal names the field, as a
//! dotted path into the request, and the range that field allows.

use super::catalogue::Compute;
use super::error::Refused;
use super::{cluster, process, scaling, threads, MainWork, Plan};
use protocol::{Fault, ModelSpec, RunSpec, Runtime, Workload};
use std::time::Duration;

/// Most hashes one pool run starts at once: 64 hashes of ~0.1 s each keep
/// a pool of one thread busy for a few seconds, well inside the deadline.
const MAX_POOL_CALLS: u64 = 64;
/// The largest pool a run may ask libuv for. libuv itself allows 1024; a
/// pool far wider than the machine's cores teaches nothing more.
const MAX_POOL_THREADS: u64 = 16;
/// Workers per instance in a scaling run: 4 instances of 4 workers and
/// their primaries are already 20 processes on a 2-core machine.
const MAX_SCALING_WORKERS: u64 = 4;
/// Faults one scaling run may schedule.
const MAX_FAULTS: usize = 8;

/// Configurable bounds. The defaults keep the largest run of each workload
/// within the deadline on one core of the 2-core machine the site was
/// measured on (primes below 50,000,000: about 8 s on one thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most workers one run may ask for.
    pub max_workers: u32,
    /// Largest `below` for the primes workload.
    pub max_primes_below: u64,
    /// Largest chain for the SHA-256 workload.
    pub max_sha256_rounds: u64,
    /// Longest sleep.
    pub max_sleep_ms: u64,
    /// Most ping-pong messages a child process answers before working.
    pub max_round_trips: u32,
    /// Most requests one cluster run sends.
    pub max_requests: u32,
    /// Most requests in flight at once.
    pub max_concurrency: u32,
    /// Longest per-request CPU burn or sleep, in milliseconds.
    pub max_request_ms: u64,
    /// Most CPU milliseconds a cluster run may ask for in all
    /// (requests × burn), so it fits its deadline on one core.
    pub max_cluster_cpu_ms: u64,
    /// Wall-clock time a run may take, baseline included, before it is stopped.
    pub run_deadline: Duration,
    /// Largest WebSocket frame read as a request; bigger ones are refused
    /// with an error, and the connection stays open.
    pub max_message_bytes: u32,
    /// Most app instances behind a scaling run's balancer.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_workers: 16,
            max_primes_below: 50_000_000,
            max_sha256_rounds: 20_000_000,
            max_sleep_ms: 10_000,
            max_round_trips: 10_000,
            max_requests: 50_000,
            max_concurrency: 256,
            max_request_ms: 100,
            max_cluster_cpu_ms: 20_000,
            run_deadline: Duration::from_secs(30),
            max_message_bytes: 4096,
            max_instances: 4,
        }
    }
}

/// Check that `fault` names an instance and worker a run of `instances`
/// instances of `workers` workers has; `at` is the field's path.
pub fn check_fault(fault: &Fault, at: &str, instances: u32, workers: u32) -> Result<(), Refused> {
    let instance = match *fault {
        Fault::KillWorker { instance, worker } => {
            in_range(
                &format!("{at}.worker"),
                worker.into(),
                0,
                u64::from(workers) - 1,
            )?;
            instance
        }
        Fault::KillInstance { instance } | Fault::RestartInstance { instance } => instance,
        Fault::KillBalancer => return Ok(()),
    };
    in_range(
        &format!("{at}.instance"),
        instance.into(),
        0,
        u64::from(instances) - 1,
    )
}

fn in_range(field: &str, value: u64, min: u64, max: u64) -> Result<(), Refused> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Refused::out_of_range(field, value, min, max))
    }
}

impl Limits {
    /// The limits as the page sees them.
    pub fn to_protocol(&self) -> protocol::Limits {
        protocol::Limits {
            max_workers: self.max_workers,
            max_primes_below: self.max_primes_below,
            max_sha256_rounds: self.max_sha256_rounds,
            max_sleep_ms: self.max_sleep_ms,
            max_round_trips: self.max_round_trips,
            max_requests: self.max_requests,
            max_concurrency: self.max_concurrency,
            max_request_ms: self.max_request_ms,
            run_deadline_ms: self.run_deadline.as_millis() as u64,
            max_message_bytes: self.max_message_bytes,
            max_instances: self.max_instances,
        }
    }

    /// The load generator's bounds, for a cluster or a scaling run.
    fn check_load(&self, requests: u32, concurrency: u32) -> Result<(), Refused> {
        in_range(
            "spec.model.requests",
            requests.into(),
            1,
            self.max_requests.into(),
        )?;
        in_range(
            "spec.model.concurrency",
            concurrency.into(),
            1,
            self.max_concurrency.into(),
        )
    }

    /// Accept `spec` as the plan its model runs, or say which field is
    /// wrong and what it allows.
    pub fn validate(&self, spec: &RunSpec) -> Result<Plan, Refused> {
        match &spec.model {
            ModelSpec::MainThread => {
                if spec.workers != 1 {
                    return Err(Refused::invalid(
                        "spec.workers",
                        format!(
                            "spec.workers must be 1 for the main thread, which has one loop; got {}",
                            spec.workers
                        ),
                    ));
                }
            }
            ModelSpec::Scaling { .. } => in_range(
                "spec.workers",
                spec.workers.into(),
                1,
                MAX_SCALING_WORKERS.min(self.max_workers.into()),
            )?,
            _ => in_range(
                "spec.workers",
                spec.workers.into(),
                1,
                self.max_workers.into(),
            )?,
        }
        if let ModelSpec::Scaling {
            instances,
            requests,
            concurrency,
            ref faults,
            ..
        } = spec.model
        {
            in_range(
                "spec.model.instances",
                instances.into(),
                2,
                self.max_instances.max(2).into(),
            )?;
            self.check_load(requests, concurrency)?;
            if faults.len() > MAX_FAULTS {
                return Err(Refused::invalid(
                    "spec.model.faults",
                    format!(
                        "spec.model.faults may list at most {MAX_FAULTS} faults, got {}",
                        faults.len()
                    ),
                ));
            }
            for (i, timed) in faults.iter().enumerate() {
                let at = format!("spec.model.faults[{i}]");
                in_range(
                    &format!("{at}.after_requests"),
                    timed.after_requests.into(),
                    0,
                    u64::from(requests) - 1,
                )?;
                check_fault(
                    &timed.fault,
                    &format!("{at}.fault"),
                    instances,
                    spec.workers,
                )?;
            }
            if let Workload::HttpCpu { ms } = spec.workload {
                let most = (self.max_cluster_cpu_ms / u64::from(requests)).min(self.max_request_ms);
                in_range("spec.workload.ms", ms, 0, most)?;
            }
        }
        if let ModelSpec::ChildProcess { round_trips, .. } = spec.model {
            in_range(
                "spec.model.round_trips",
                round_trips.into(),
                0,
                self.max_round_trips.into(),
            )?;
        }
        if let ModelSpec::Cluster {
            requests,
            concurrency,
            kill,
            ..
        } = spec.model
        {
            self.check_load(requests, concurrency)?;
            if let Some(kill) = kill {
                in_range(
                    "spec.model.kill.worker",
                    kill.worker.into(),
                    0,
                    u64::from(spec.workers) - 1,
                )?;
                in_range(
                    "spec.model.kill.after_requests",
                    kill.after_requests.into(),
                    0,
                    u64::from(requests) - 1,
                )?;
            }
            if let Workload::HttpCpu { ms } = spec.workload {
                let most = (self.max_cluster_cpu_ms / u64::from(requests)).min(self.max_request_ms);
                in_range("spec.workload.ms", ms, 0, most)?;
            }
        }
        let model = spec.model.kind();
        if !model.accepts(spec.workload.kind()) {
            let allowed: Vec<&str> = model.workloads().iter().map(|w| w.name()).collect();
            return Err(Refused::invalid(
                "spec.workload.kind",
                format!(
                    "spec.workload.kind {} cannot run in the {} model; choose one of: {}",
                    spec.workload.name(),
                    model.name(),
                    allowed.join(", ")
                ),
            ));
        }
        match spec.workload {
            Workload::Primes { below } => {
                in_range("spec.workload.below", below, 2, self.max_primes_below)?
            }
            Workload::Sha256Chain { rounds } => {
                in_range("spec.workload.rounds", rounds, 1, self.max_sha256_rounds)?
            }
            Workload::Sleep { ms } | Workload::BlockingWait { ms } => {
                in_range("spec.workload.ms", ms, 0, self.max_sleep_ms)?
            }
            Workload::HttpCpu { ms } | Workload::HttpSleep { ms } => {
                in_range("spec.workload.ms", ms, 0, self.max_request_ms)?
            }
            Workload::PoolHash {
                calls,
                pool_threads,
            } => {
                if spec.runtime != Runtime::Node {
                    return Err(Refused::invalid(
                        "spec.runtime",
                        format!(
                            "spec.runtime {} has no libuv thread pool, so spec.workload.kind pool_hash runs only on node",
                            spec.runtime.name()
                        ),
                    ));
                }
                in_range("spec.workload.calls", calls.into(), 1, MAX_POOL_CALLS)?;
                in_range(
                    "spec.workload.pool_threads",
                    pool_threads.into(),
                    1,
                    MAX_POOL_THREADS,
                )?;
            }
            Workload::Program { .. } | Workload::HttpHello => {}
        }
        plan(spec)
    }
}

/// The plan for a spec that passed every check: the model's kind has
/// accepted the workload's kind, so the conversions below cannot fail, and
/// if they ever did the request would be refused, not run.
fn plan(spec: &RunSpec) -> Result<Plan, Refused> {
    let compute = || {
        Compute::try_from(&spec.workload)
            .map_err(|e| Refused::invalid("spec.workload.kind", e.to_string()))
    };
    Ok(match spec.model {
        ModelSpec::MainThread => Plan::MainThread {
            work: match spec.workload {
                Workload::PoolHash {
                    calls,
                    pool_threads,
                } => MainWork::PoolHash {
                    calls,
                    pool_threads,
                },
                _ => MainWork::Compute(compute()?),
            },
        },
        ModelSpec::Threads { strategy, sharing } => Plan::Threads {
            work: compute()?,
            workers: spec.workers,
            style: threads::Style { strategy, sharing },
        },
        ModelSpec::ChildProcess { round_trips, .. } => Plan::ChildProcess {
            job: match spec.workload {
                Workload::Program { program } => process::ChildJob::Program(program),
                _ => process::ChildJob::Compute(compute()?),
            },
            workers: spec.workers,
            round_trips,
        },
        ModelSpec::Cluster {
            policy,
            requests,
            concurrency,
            keep_alive,
            kill,
        } => Plan::Cluster(cluster::Plan {
            workers: spec.workers,
            policy,
            workload: spec.workload.clone(),
            requests,
            concurrency,
            keep_alive,
            kill,
        }),
        ModelSpec::Scaling {
            instances,
            balancer,
            balance,
            requests,
            concurrency,
            keep_alive,
            retries,
            ref faults,
        } => Plan::Scaling(scaling::Plan {
            instances,
            workers: spec.workers,
            workload: spec.workload.clone(),
            balancer,
            balance,
            requests,
            concurrency,
            keep_alive,
            retries,
            faults: faults.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(workload: Workload, workers: u32) -> RunSpec {
        RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::Threads {
                strategy: protocol::ThreadStrategy::Spawn,
                sharing: protocol::Sharing::Messages,
            },
            workload,
            workers,
        }
    }

    #[test]
    fn a_reasonable_run_passes() {
        let limits = Limits::default();
        assert!(matches!(
            limits.validate(&threads(Workload::Primes { below: 20_000_000 }, 2)),
            Ok(Plan::Threads { workers: 2, .. })
        ));
    }

    #[test]
    fn worker_count_is_bounded_on_both_sides() {
        let limits = Limits::default();
        for workers in [0, 17, u32::MAX] {
            let err = limits
                .validate(&threads(Workload::Primes { below: 100 }, workers))
                .unwrap_err();
            assert_eq!(err.field(), Some("spec.workers"));
            assert_eq!(err.code(), protocol::ErrorCode::InvalidField);
            assert_eq!(
                err.to_string(),
                format!("spec.workers must be between 1 and 16, got {workers}")
            );
        }
    }

    #[test]
    fn workload_sizes_are_bounded() {
        let limits = Limits::default();
        let cases = [
            (
                Workload::Primes { below: 1 },
                "spec.workload.below",
                "between 2 and 50000000",
            ),
            (
                Workload::Primes { below: 50_000_001 },
                "spec.workload.below",
                "between 2 and 50000000",
            ),
            (
                Workload::Sha256Chain { rounds: 0 },
                "spec.workload.rounds",
                "between 1 and 20000000",
            ),
            (
                Workload::Sleep { ms: 10_001 },
                "spec.workload.ms",
                "between 0 and 10000",
            ),
        ];
        for (workload, field, range) in cases {
            let err = limits.validate(&threads(workload, 1)).unwrap_err();
            assert_eq!(err.field(), Some(field));
            assert!(err.to_string().contains(range), "{err}");
        }
    }

    #[test]
    fn pool_hashes_run_on_node_alone_within_bounds() {
        let main = |runtime, calls, pool_threads| RunSpec {
            runtime,
            model: ModelSpec::MainThread,
            workload: Workload::PoolHash {
                calls,
                pool_threads,
            },
            workers: 1,
        };
        let limits = Limits::default();
        assert!(matches!(
            limits.validate(&main(Runtime::Node, 8, 4)),
            Ok(Plan::MainThread {
                work: MainWork::PoolHash {
                    calls: 8,
                    pool_threads: 4
                }
            })
        ));
        let err = limits.validate(&main(Runtime::Rust, 8, 4)).unwrap_err();
        assert_eq!(err.field(), Some("spec.runtime"));
        for (calls, threads, field, range) in [
            (0, 4, "spec.workload.calls", "between 1 and 64"),
            (65, 4, "spec.workload.calls", "between 1 and 64"),
            (8, 0, "spec.workload.pool_threads", "between 1 and 16"),
            (8, 17, "spec.workload.pool_threads", "between 1 and 16"),
        ] {
            let err = limits
                .validate(&main(Runtime::Node, calls, threads))
                .unwrap_err();
            assert_eq!(err.field(), Some(field));
            assert!(err.to_string().contains(range), "{err}");
        }
        // Only the main thread hands work to the pool.
        let err = limits
            .validate(&threads(
                Workload::PoolHash {
                    calls: 8,
                    pool_threads: 4,
                },
                2,
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.workload.kind"));
    }

    #[test]
    fn a_workload_must_suit_its_model() {
        let err = Limits::default()
            .validate(&threads(Workload::HttpHello, 2))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.workload.kind"));
        assert!(
            err.to_string()
                .contains("choose one of: primes, sha256_chain, sleep"),
            "{err}"
        );
    }

    #[test]
    fn a_cluster_run_is_bounded_to_fit_its_deadline() {
        let cluster = |requests, kill| RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::Cluster {
                policy: Default::default(),
                requests,
                concurrency: 32,
                keep_alive: true,
                kill,
            },
            workload: Workload::HttpCpu { ms: 10 },
            workers: 2,
        };
        let limits = Limits::default();
        assert!(limits.validate(&cluster(2_000, None)).is_ok());
        // 20,000 requests × 10 ms is 200 s of CPU: too much for one run.
        let err = limits.validate(&cluster(20_000, None)).unwrap_err();
        assert_eq!(err.field(), Some("spec.workload.ms"));
        assert_eq!(
            err.to_string(),
            "spec.workload.ms must be between 0 and 1, got 10"
        );
        let kill = Some(protocol::KillWorker {
            worker: 2,
            after_requests: 10,
        });
        let err = limits.validate(&cluster(2_000, kill)).unwrap_err();
        assert_eq!(err.field(), Some("spec.model.kill.worker"));
    }

    #[test]
    fn the_main_thread_has_exactly_one_worker() {
        let spec = RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::MainThread,
            workload: Workload::Sleep { ms: 10 },
            workers: 2,
        };
        let err = Limits::default().validate(&spec).unwrap_err();
        assert_eq!(err.field(), Some("spec.workers"));
    }

    fn scaling(instances: u32, workers: u32, faults: Vec<protocol::TimedFault>) -> RunSpec {
        RunSpec {
            runtime: Runtime::Rust,
            model: ModelSpec::Scaling {
                instances,
                balancer: protocol::BalancerKind::Nginx,
                balance: protocol::Balance::RoundRobin,
                requests: 1_000,
                concurrency: 8,
                keep_alive: true,
                retries: true,
                faults,
            },
            workload: Workload::HttpSleep { ms: 5 },
            workers,
        }
    }

    #[test]
    fn a_scaling_run_names_the_instance_worker_or_fault_out_of_range() {
        let limits = Limits::default();
        assert!(matches!(
            limits.validate(&scaling(4, 4, vec![])),
            Ok(Plan::Scaling(scaling::Plan {
                instances: 4,
                workers: 4,
                ..
            }))
        ));
        let err = limits.validate(&scaling(5, 2, vec![])).unwrap_err();
        assert_eq!(err.field(), Some("spec.model.instances"));
        assert!(err.to_string().contains("between 2 and 4"), "{err}");
        let err = limits.validate(&scaling(2, 5, vec![])).unwrap_err();
        assert_eq!(err.field(), Some("spec.workers"));
        let fault = |after_requests, fault| protocol::TimedFault {
            after_requests,
            fault,
        };
        let err = limits
            .validate(&scaling(
                2,
                2,
                vec![fault(
                    10,
                    Fault::KillWorker {
                        instance: 1,
                        worker: 2,
                    },
                )],
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.model.faults[0].fault.worker"));
        let err = limits
            .validate(&scaling(
                2,
                2,
                vec![
                    fault(10, Fault::KillBalancer),
                    fault(10, Fault::RestartInstance { instance: 2 }),
                ],
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.model.faults[1].fault.instance"));
        let err = limits
            .validate(&scaling(2, 2, vec![fault(1_000, Fault::KillBalancer)]))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.model.faults[0].after_requests"));
        let err = limits
            .validate(&scaling(2, 2, vec![fault(1, Fault::KillBalancer); 9]))
            .unwrap_err();
        assert_eq!(err.field(), Some("spec.model.faults"));
    }
}
