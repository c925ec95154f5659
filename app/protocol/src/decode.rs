//! The browser's reader of [`ServerEvent`]s, written without serde's derive.
//!
//! The wire format is serde's (the server and the CLI keep the derived
//! code): this reads the same JSON. It exists for the size of the wasm
//! bundle. The events are internally tagged enums (`"type"`, and `"kind"`
//! inside them), and serde's derive reads those by first buffering the whole
//! object into its own `Content` tree, then running a visitor for every
//! variant over that tree: about a fifth of the bundle. Here the text is
//! parsed once into a [`serde_json::Value`] and each type picks its fields
//! from it.
//!
//! The same rules as serde's: a field marked `#[serde(default)]` may be
//! absent; an absent `Option` is `None`; unknown fields are ignored (no
//! event denies them). Each struct is built with a struct literal, so a
//! field added to the protocol and not here does not compile, and the
//! tests decode every variant both ways and compare.

use crate::catalogue::{ModelKind, Runtime};
use crate::*;
use serde_json::{Map, Value};

/// Why an event could not be read: which field, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cold]
#[inline(never)]
fn wrong(what: &str) -> DecodeError {
    DecodeError(format!("expected {what}"))
}

/// One event, from the text of one WebSocket frame.
pub fn server_event(text: &str) -> Result<ServerEvent, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError(e.to_string()))?;
    ServerEvent::decode(&value)
}

/// A type read from a JSON value.
pub trait Decode: Sized {
    fn decode(v: &Value) -> Result<Self, DecodeError>;

    /// What an absent field of this type reads as: nothing, unless the
    /// type is an `Option`.
    fn absent() -> Option<Self> {
        None
    }
}

/// The field `name` of `o`; when absent, `default` or else the type's own
/// [`Decode::absent`]. Never inlined, and its errors built out of line:
/// there is one copy per field type rather than one per field, which keeps
/// the bundle small.
#[inline(never)]
fn field<T: Decode>(
    o: &Map<String, Value>,
    name: &str,
    default: Option<T>,
) -> Result<T, DecodeError> {
    match lookup(o, name) {
        Some(v) => T::decode(v).map_err(|e| in_field(name, e)),
        None => match default {
            Some(d) => Ok(d),
            None => T::absent().ok_or_else(|| missing(name)),
        },
    }
}

#[inline(never)]
fn lookup<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name)
}

#[cold]
#[inline(never)]
fn in_field(name: &str, e: DecodeError) -> DecodeError {
    DecodeError(format!("{name}: {e}"))
}

#[cold]
#[inline(never)]
fn missing(name: &str) -> DecodeError {
    DecodeError(format!("missing field {name}"))
}

fn object(v: &Value) -> Result<&Map<String, Value>, DecodeError> {
    v.as_object().ok_or_else(|| wrong("an object"))
}

/// The tag (`"type"` or `"kind"`) of an internally tagged object.
fn tag<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a str, DecodeError> {
    lookup(o, name)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(name))
}

impl Decode for u64 {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_u64().ok_or_else(|| wrong("an unsigned integer"))
    }
}

impl Decode for u32 {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        u32::try_from(u64::decode(v)?).map_err(|_| wrong("a u32"))
    }
}

impl Decode for u16 {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        u16::try_from(u64::decode(v)?).map_err(|_| wrong("a u16"))
    }
}

impl Decode for i32 {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| wrong("an i32"))
    }
}

impl Decode for f64 {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_f64().ok_or_else(|| wrong("a number"))
    }
}

impl Decode for bool {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_bool().ok_or_else(|| wrong("true or false"))
    }
}

impl Decode for String {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong("a string"))
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        match v {
            Value::Null => Ok(None),
            v => T::decode(v).map(Some),
        }
    }

    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        v.as_array()
            .ok_or_else(|| wrong("an array"))?
            .iter()
            .map(T::decode)
            .collect()
    }
}

impl Decode for [f64; 3] {
    fn decode(v: &Value) -> Result<Self, DecodeError> {
        match Vec::<f64>::decode(v)?[..] {
            [a, b, c] => Ok([a, b, c]),
            _ => Err(wrong("three numbers")),
        }
    }
}

/// `Some(value)` for a field with a default, `None` for one without.
macro_rules! default_of {
    () => {
        None
    };
    ($default:expr) => {
        Some($default)
    };
}

/// A struct, field by field: `name` or `name = default` when it may be absent.
macro_rules! decode_struct {
    ($($ty:ident { $($field:ident $(= $default:expr)?),* $(,)? })*) => {$(
        impl Decode for $ty {
            fn decode(v: &Value) -> Result<Self, DecodeError> {
                let o = object(v)?;
                Ok($ty {
                    $($field: field(o, stringify!($field), default_of!($($default)?))?,)*
                })
            }
        }
    )*};
}

/// An enum written as a string (`"round_robin"`).
macro_rules! decode_name {
    ($($ty:ident { $($name:literal => $variant:ident),* $(,)? })*) => {$(
        impl Decode for $ty {
            fn decode(v: &Value) -> Result<Self, DecodeError> {
                match v.as_str() {
                    $(Some($name) => Ok($ty::$variant),)*
                    _ => Err(wrong(concat!("one of:" $(, " ", $name)*))),
                }
            }
        }
    )*};
}

/// An internally tagged enum: the tag names the variant, and the variant's
/// fields sit beside it in the same object.
macro_rules! decode_tagged {
    ($ty:ident, $tag:literal {
        $($name:literal => $variant:ident $({ $($field:ident $(= $default:expr)?),* $(,)? })?),* $(,)?
    }) => {
        impl Decode for $ty {
            fn decode(v: &Value) -> Result<Self, DecodeError> {
                let o = object(v)?;
                #[allow(unused_variables)]
                let variant = tag(o, $tag)?;
                match variant {
                    $($name => Ok($ty::$variant $({
                        $($field: field(o, stringify!($field), default_of!($($default)?))?,)*
                    })?),)*
                    other => Err(DecodeError(format!(concat!("unknown ", $tag, " {:?}"), other))),
                }
            }
        }
    };
}

decode_name! {
    Runtime { "node" => Node, "rust" => Rust }
    ModelKind {
        "main_thread" => MainThread, "threads" => Threads, "child_process" => ChildProcess,
        "cluster" => Cluster, "scaling" => Scaling,
    }
    BalancerKind { "nginx" => Nginx, "haproxy" => Haproxy }
    Balance { "round_robin" => RoundRobin, "least_conn" => LeastConn, "hash" => Hash }
    ThreadStrategy { "spawn" => Spawn, "pool" => Pool }
    Sharing { "messages" => Messages, "shared_memory" => SharedMemory }
    SchedPolicy {
        "round_robin" => RoundRobin, "shared_socket" => SharedSocket, "reuse_port" => ReusePort,
    }
    Serialization { "json" => Json, "advanced" => Advanced }
    Program {
        "uname" => Uname, "list_public" => ListPublic, "python_version" => PythonVersion,
        "node_version" => NodeVersion,
    }
    Outcome {
        "completed" => Completed, "cancelled" => Cancelled,
        "deadline_exceeded" => DeadlineExceeded, "failed" => Failed,
    }
    ErrorCode {
        "malformed" => Malformed, "invalid_field" => InvalidField, "too_large" => TooLarge,
        "unsupported" => Unsupported, "duplicate_run" => DuplicateRun,
        "unknown_run" => UnknownRun, "busy" => Busy, "run_failed" => RunFailed,
        "shutting_down" => ShuttingDown,
    }
}

decode_struct! {
    RunSpec { runtime = Runtime::default(), model, workload, workers }
    TimedFault { after_requests, fault }
    KillWorker { worker, after_requests }
    Limits {
        max_workers, max_primes_below, max_sha256_rounds, max_sleep_ms, max_round_trips,
        max_requests, max_concurrency, max_request_ms, run_deadline_ms, max_message_bytes,
        max_instances = 0,
    }
    BalancerInfo { balancer, version, available, note }
    BalancerLog { requests, attempts, failed_attempts, retried, errors }
    ScalingStats {
        requests, completed, errors, per_instance, client_addresses, duration_us, rps,
        latency, balancer, respawns,
    }
    RuntimeInfo { runtime, version, available, note, missing = Vec::new() }
    MissingFeature { feature, needs }
    HostInfo {
        cpu_model, logical_cores, physical_cores, load_average, memory_total_bytes,
        memory_available_bytes, busy, debug_build = false,
    }
    LoadStats {
        requests, completed, errors, per_worker, served_by_workers, duration_us, rps,
        latency, respawns,
    }
    Latency { p50_us, p90_us, p99_us, max_us, buckets }
    Bucket { upper_us, count }
    Memory { rss_bytes, anon_bytes }
    RunSummary {
        outcome, wall_us, cpu_us, result, baseline_wall_us, speedup,
        main_loop_lag_us, shared_with,
    }
}

decode_tagged!(ModelSpec, "kind" {
    "main_thread" => MainThread,
    "threads" => Threads {
        strategy = ThreadStrategy::default(), sharing = Sharing::default(),
    },
    "child_process" => ChildProcess {
        round_trips = 0, serialization = Serialization::default(),
    },
    "cluster" => Cluster {
        policy = SchedPolicy::default(), requests, concurrency, keep_alive = true, kill,
    },
    "scaling" => Scaling {
        instances, balancer = BalancerKind::default(), balance = Balance::default(), requests,
        concurrency, keep_alive = true, retries = true, faults = Vec::new(),
    },
});

decode_tagged!(Fault, "kind" {
    "kill_worker" => KillWorker { instance, worker },
    "kill_instance" => KillInstance { instance },
    "restart_instance" => RestartInstance { instance },
    "kill_balancer" => KillBalancer,
});

decode_tagged!(Workload, "kind" {
    "primes" => Primes { below },
    "sha256_chain" => Sha256Chain { rounds },
    "sleep" => Sleep { ms },
    "blocking_wait" => BlockingWait { ms },
    "program" => Program { program },
    "http_hello" => HttpHello,
    "http_cpu" => HttpCpu { ms },
    "http_sleep" => HttpSleep { ms },
    "pool_hash" => PoolHash { calls, pool_threads },
});

decode_tagged!(WorkResult, "kind" {
    "primes" => Primes { count },
    "sha256_chain" => Sha256Chain { digests },
    "slept" => Slept { ms },
    "program" => Program { exit_code, output, truncated },
    "requests" => Requests { served },
    "hashed" => Hashed { calls },
    "incomplete" => Incomplete,
});

decode_tagged!(ServerEvent, "type" {
    "hello" => Hello { version, limits, runtimes = Vec::new(), balancers = Vec::new() },
    "accepted" => Accepted { run },
    "queued" => Queued { run, position, wait_ms },
    "started" => Started { run, spec, host },
    "runtime_ready" => RuntimeReady { run, runtime, version, boot_us, pid },
    "listening" => Listening { run, port },
    "ping" => Ping { run, at_ms, latency_us },
    "pool_task" => PoolTask { run, task, finished_us },
    "loop_delay" => LoopDelay { run, p50_us, p99_us, max_us },
    "worker_spawned" => WorkerSpawned { run, worker, start_latency_us, pid, tid, at_us },
    "progress" => Progress { run, worker, done, total },
    "round_trips" => RoundTrips { run, worker, count, p50_ns, p99_ns, max_ns, at_us },
    "heartbeat" => Heartbeat { run, at_ms, lag_us },
    "worker_finished" => WorkerFinished {
        run, worker, wall_us, cpu_us, memory, messages, result, at_us,
    },
    "baseline_started" => BaselineStarted { run },
    "baseline_finished" => BaselineFinished { run, wall_us, cpu_us },
    "cluster_tick" => ClusterTick {
        run, at_ms, per_worker, completed, errors, rps, load_ms = 0, p50_us, p90_us, p99_us,
    },
    "worker_exited" => WorkerExited { run, instance, worker, pid, signal, exit_code, at_ms },
    "worker_respawned" => WorkerRespawned { run, instance, worker, pid, downtime_us, at_ms },
    "load_finished" => LoadFinished { run, stats },
    "instance_up" => InstanceUp { run, instance, port, pid, start_us, at_ms },
    "instance_down" => InstanceDown { run, instance, at_ms },
    "balancer_up" => BalancerUp { run, balancer, version, port, pid, at_ms },
    "balancer_down" => BalancerDown { run, at_ms },
    "scaling_tick" => ScalingTick {
        run, at_ms, load_ms, per_instance, completed, errors, rps, p50_us, p90_us, p99_us,
        balancer,
    },
    "scaling_finished" => ScalingFinished { run, stats },
    "run_finished" => RunFinished { run, summary },
    "error" => Error { run, code, field, message },
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Both readers on the same text: serde's derive, which the server and
    /// the CLI use, and this one.
    fn same(json: &str) -> ServerEvent {
        let serde: ServerEvent = serde_json::from_str(json).expect(json);
        let ours = server_event(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(ours, serde, "{json}");
        ours
    }

    fn host() -> HostInfo {
        HostInfo {
            cpu_model: "Xeon \"quoted\" é".into(),
            logical_cores: 2,
            physical_cores: None,
            load_average: [0.5, 1.25, 2.0],
            memory_total_bytes: 24 << 30,
            memory_available_bytes: 20 << 30,
            busy: true,
            debug_build: true,
        }
    }

    fn latency() -> Latency {
        Latency {
            p50_us: 1,
            p90_us: 2,
            p99_us: 3,
            max_us: u64::MAX,
            buckets: vec![Bucket {
                upper_us: 10,
                count: 4,
            }],
        }
    }

    fn balancer_log() -> BalancerLog {
        BalancerLog {
            requests: 9,
            attempts: vec![4, 5],
            failed_attempts: 1,
            retried: 1,
            errors: 0,
        }
    }

    fn specs() -> Vec<RunSpec> {
        let models = [
            ModelSpec::MainThread,
            ModelSpec::Threads {
                strategy: ThreadStrategy::Pool,
                sharing: Sharing::SharedMemory,
            },
            ModelSpec::ChildProcess {
                round_trips: 7,
                serialization: Serialization::Advanced,
            },
            ModelSpec::Cluster {
                policy: SchedPolicy::ReusePort,
                requests: 100,
                concurrency: 8,
                keep_alive: false,
                kill: Some(KillWorker {
                    worker: 1,
                    after_requests: 50,
                }),
            },
            ModelSpec::Scaling {
                instances: 2,
                balancer: BalancerKind::Haproxy,
                balance: Balance::LeastConn,
                requests: 100,
                concurrency: 8,
                keep_alive: true,
                retries: false,
                faults: [
                    Fault::KillWorker {
                        instance: 1,
                        worker: 0,
                    },
                    Fault::KillInstance { instance: 0 },
                    Fault::RestartInstance { instance: 0 },
                    Fault::KillBalancer,
                ]
                .into_iter()
                .map(|fault| TimedFault {
                    after_requests: 3,
                    fault,
                })
                .collect(),
            },
        ];
        let workloads = [
            Workload::Primes { below: 1_000 },
            Workload::Sha256Chain { rounds: 5 },
            Workload::Sleep { ms: 1 },
            Workload::BlockingWait { ms: 2 },
            Workload::Program {
                program: Program::PythonVersion,
            },
            Workload::HttpHello,
            Workload::HttpCpu { ms: 3 },
            Workload::HttpSleep { ms: 4 },
            Workload::PoolHash {
                calls: 4,
                pool_threads: 2,
            },
        ];
        models
            .into_iter()
            .cycle()
            .zip(workloads)
            .zip([Runtime::Node, Runtime::Rust].into_iter().cycle())
            .map(|((model, workload), runtime)| RunSpec {
                runtime,
                model,
                workload,
                workers: 2,
            })
            .collect()
    }

    fn results() -> Vec<WorkResult> {
        vec![
            WorkResult::Primes { count: 168 },
            WorkResult::Sha256Chain {
                digests: vec!["ab".into(), "cd".into()],
            },
            WorkResult::Slept { ms: 5 },
            WorkResult::Program {
                exit_code: Some(-1),
                output: "line\nnext\t\u{1F600}".into(),
                truncated: true,
            },
            WorkResult::Requests { served: 10 },
            WorkResult::Hashed { calls: 4 },
            WorkResult::Incomplete,
        ]
    }

    /// One event of every kind, with every nested variant among them.
    fn events() -> Vec<ServerEvent> {
        let mut events = vec![
            ServerEvent::Hello {
                version: 3,
                limits: Limits {
                    max_workers: 8,
                    max_primes_below: 50_000_000,
                    max_sha256_rounds: 1,
                    max_sleep_ms: 2,
                    max_round_trips: 3,
                    max_requests: 4,
                    max_concurrency: 5,
                    max_request_ms: 6,
                    run_deadline_ms: 7,
                    max_message_bytes: 4096,
                    max_instances: 4,
                },
                runtimes: vec![RuntimeInfo {
                    runtime: Runtime::Node,
                    version: Some("v20.20.2".into()),
                    available: true,
                    note: String::new(),
                    missing: vec![MissingFeature {
                        feature: "reusePort".into(),
                        needs: "v22.12".into(),
                    }],
                }],
                balancers: vec![BalancerInfo {
                    balancer: BalancerKind::Nginx,
                    version: None,
                    available: false,
                    note: "apt-get install nginx-light".into(),
                }],
            },
            ServerEvent::Accepted { run: 1 },
            ServerEvent::Queued {
                run: 1,
                position: 3,
                wait_ms: Some(900),
            },
            ServerEvent::RuntimeReady {
                run: 1,
                runtime: Runtime::Node,
                version: "v20".into(),
                boot_us: 40_000,
                pid: 77,
            },
            ServerEvent::Listening {
                run: 1,
                port: 65535,
            },
            ServerEvent::Ping {
                run: 1,
                at_ms: 5,
                latency_us: None,
            },
            ServerEvent::PoolTask {
                run: 1,
                task: 2,
                finished_us: 9,
            },
            ServerEvent::LoopDelay {
                run: 1,
                p50_us: 1,
                p99_us: 2,
                max_us: 3,
            },
            ServerEvent::WorkerSpawned {
                run: 1,
                worker: 0,
                start_latency_us: 10,
                pid: 5,
                tid: Some(6),
                at_us: Some(7),
            },
            ServerEvent::Progress {
                run: 1,
                worker: 0,
                done: 1,
                total: 2,
            },
            ServerEvent::RoundTrips {
                run: 1,
                worker: 0,
                count: 3,
                p50_ns: 4,
                p99_ns: 5,
                max_ns: 6,
                at_us: None,
            },
            ServerEvent::Heartbeat {
                run: 1,
                at_ms: 2,
                lag_us: 3,
            },
            ServerEvent::BaselineStarted { run: 1 },
            ServerEvent::BaselineFinished {
                run: 1,
                wall_us: 2,
                cpu_us: 3,
            },
            ServerEvent::ClusterTick {
                run: 1,
                at_ms: 250,
                per_worker: vec![1, 2],
                completed: 3,
                errors: 0,
                rps: 1234.5,
                load_ms: 250,
                p50_us: 1,
                p90_us: 2,
                p99_us: 3,
            },
            ServerEvent::WorkerExited {
                run: 1,
                instance: Some(1),
                worker: 0,
                pid: 9,
                signal: Some(9),
                exit_code: None,
                at_ms: 4,
            },
            ServerEvent::WorkerRespawned {
                run: 1,
                instance: None,
                worker: 0,
                pid: 10,
                downtime_us: 5,
                at_ms: 6,
            },
            ServerEvent::LoadFinished {
                run: 1,
                stats: LoadStats {
                    requests: 10,
                    completed: 9,
                    errors: 1,
                    per_worker: vec![4, 5],
                    served_by_workers: vec![Some(4), None],
                    duration_us: 100,
                    rps: 0.0,
                    latency: latency(),
                    respawns: 1,
                },
            },
            ServerEvent::InstanceUp {
                run: 1,
                instance: 0,
                port: 4000,
                pid: 11,
                start_us: 12,
                at_ms: 13,
            },
            ServerEvent::InstanceDown {
                run: 1,
                instance: 0,
                at_ms: 14,
            },
            ServerEvent::BalancerUp {
                run: 1,
                balancer: BalancerKind::Haproxy,
                version: "2.6".into(),
                port: 4100,
                pid: 15,
                at_ms: 16,
            },
            ServerEvent::BalancerDown { run: 1, at_ms: 17 },
            ServerEvent::ScalingTick {
                run: 1,
                at_ms: 18,
                load_ms: 19,
                per_instance: vec![vec![1, 2], vec![]],
                completed: 3,
                errors: 4,
                rps: 5.5,
                p50_us: 6,
                p90_us: 7,
                p99_us: 8,
                balancer: balancer_log(),
            },
            ServerEvent::ScalingFinished {
                run: 1,
                stats: ScalingStats {
                    requests: 1,
                    completed: 1,
                    errors: 0,
                    per_instance: vec![vec![1]],
                    client_addresses: 1,
                    duration_us: 2,
                    rps: 3.0,
                    latency: latency(),
                    balancer: balancer_log(),
                    respawns: 0,
                },
            },
            ServerEvent::Error {
                run: None,
                code: ErrorCode::InvalidField,
                field: Some("spec.workers".into()),
                message: "workers must be 1 to 8".into(),
            },
        ];
        events.extend(specs().into_iter().map(|spec| ServerEvent::Started {
            run: 2,
            spec,
            host: host(),
        }));
        let outcomes = [
            Outcome::Completed,
            Outcome::Cancelled,
            Outcome::DeadlineExceeded,
            Outcome::Failed,
        ];
        for (i, result) in results().into_iter().enumerate() {
            events.push(ServerEvent::WorkerFinished {
                run: 3,
                worker: i as u32,
                wall_us: 1,
                cpu_us: 2,
                memory: Some(Memory {
                    rss_bytes: 3,
                    anon_bytes: 4,
                }),
                messages: Some(5),
                result: result.clone(),
                at_us: Some(6),
            });
            events.push(ServerEvent::RunFinished {
                run: 3,
                summary: RunSummary {
                    outcome: outcomes[i % outcomes.len()],
                    wall_us: 7,
                    cpu_us: 8,
                    result,
                    baseline_wall_us: Some(9),
                    speedup: Some(1.9),
                    main_loop_lag_us: None,
                    shared_with: Some(2),
                },
            });
        }
        events
    }

    /// Which variant an event is: the match has no wildcard, so a variant
    /// added to the protocol must be added here (and to [`events`]).
    fn variant(e: &ServerEvent) -> usize {
        match e {
            ServerEvent::Hello { .. } => 0,
            ServerEvent::Accepted { .. } => 1,
            ServerEvent::Queued { .. } => 2,
            ServerEvent::Started { .. } => 3,
            ServerEvent::RuntimeReady { .. } => 4,
            ServerEvent::Listening { .. } => 5,
            ServerEvent::Ping { .. } => 6,
            ServerEvent::PoolTask { .. } => 7,
            ServerEvent::LoopDelay { .. } => 8,
            ServerEvent::WorkerSpawned { .. } => 9,
            ServerEvent::Progress { .. } => 10,
            ServerEvent::RoundTrips { .. } => 11,
            ServerEvent::Heartbeat { .. } => 12,
            ServerEvent::WorkerFinished { .. } => 13,
            ServerEvent::BaselineStarted { .. } => 14,
            ServerEvent::BaselineFinished { .. } => 15,
            ServerEvent::ClusterTick { .. } => 16,
            ServerEvent::WorkerExited { .. } => 17,
            ServerEvent::WorkerRespawned { .. } => 18,
            ServerEvent::LoadFinished { .. } => 19,
            ServerEvent::InstanceUp { .. } => 20,
            ServerEvent::InstanceDown { .. } => 21,
            ServerEvent::BalancerUp { .. } => 22,
            ServerEvent::BalancerDown { .. } => 23,
            ServerEvent::ScalingTick { .. } => 24,
            ServerEvent::ScalingFinished { .. } => 25,
            ServerEvent::RunFinished { .. } => 26,
            ServerEvent::Error { .. } => 27,
        }
    }

    #[test]
    fn every_event_reads_as_serde_reads_it() {
        let events = events();
        let mut seen = [false; 28];
        for event in &events {
            seen[variant(event)] = true;
            let json = serde_json::to_string(event).unwrap();
            assert_eq!(&same(&json), event);
        }
        assert!(
            seen.iter().all(|s| *s),
            "a variant without a sample: {seen:?}"
        );
    }

    #[test]
    fn an_outcome_is_named_as_on_the_wire() {
        for outcome in [
            Outcome::Completed,
            Outcome::Cancelled,
            Outcome::DeadlineExceeded,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.name());
        }
    }

    #[test]
    fn absent_defaults_read_as_serde_reads_them() {
        for json in [
            // Every defaulted field left out, and every Option.
            r#"{"type":"hello","version":1,"limits":{"max_workers":8,"max_primes_below":1,"max_sha256_rounds":1,"max_sleep_ms":1,"max_round_trips":1,"max_requests":1,"max_concurrency":1,"max_request_ms":1,"run_deadline_ms":1,"max_message_bytes":1}}"#,
            r#"{"type":"queued","run":1,"position":2}"#,
            r#"{"type":"ping","run":1,"at_ms":2}"#,
            r#"{"type":"error","code":"busy","message":"m"}"#,
            r#"{"type":"cluster_tick","run":1,"at_ms":2,"per_worker":[],"completed":3,"errors":4,"rps":5,"p50_us":6,"p90_us":7,"p99_us":8}"#,
            r#"{"type":"started","run":1,"host":{"cpu_model":"x","logical_cores":1,"physical_cores":null,"load_average":[0,0,0],"memory_total_bytes":1,"memory_available_bytes":1,"busy":false},"spec":{"model":{"kind":"threads"},"workload":{"kind":"primes","below":5},"workers":1}}"#,
            r#"{"type":"started","run":1,"host":{"cpu_model":"x","logical_cores":1,"physical_cores":1,"load_average":[0,0,0],"memory_total_bytes":1,"memory_available_bytes":1,"busy":false},"spec":{"runtime":"rust","model":{"kind":"scaling","instances":2,"requests":1,"concurrency":1},"workload":{"kind":"http_hello"},"workers":1}}"#,
            r#"{"type":"started","run":1,"host":{"cpu_model":"x","logical_cores":1,"physical_cores":1,"load_average":[0,0,0],"memory_total_bytes":1,"memory_available_bytes":1,"busy":false},"spec":{"model":{"kind":"cluster","requests":1,"concurrency":1},"workload":{"kind":"http_cpu","ms":1},"workers":1}}"#,
            r#"{"type":"started","run":1,"host":{"cpu_model":"x","logical_cores":1,"physical_cores":1,"load_average":[0,0,0],"memory_total_bytes":1,"memory_available_bytes":1,"busy":false},"spec":{"model":{"kind":"child_process"},"workload":{"kind":"sleep","ms":1},"workers":1}}"#,
            r#"{"type":"worker_exited","run":1,"worker":0,"pid":1,"signal":null,"exit_code":0,"at_ms":1}"#,
            // Fields the reader does not know are ignored, in any order.
            r#"{"run":1,"future":[1,{"a":null}],"type":"accepted"}"#,
        ] {
            same(json);
        }
    }

    #[test]
    fn bad_events_are_refused_with_the_field() {
        for (json, says) in [
            (r#"{"type":"nope","run":1}"#, "unknown type \"nope\""),
            (r#"{"run":1}"#, "missing field type"),
            (r#"{"type":"accepted"}"#, "missing field run"),
            (
                r#"{"type":"accepted","run":-1}"#,
                "run: expected an unsigned integer",
            ),
            (
                r#"{"type":"listening","run":1,"port":70000}"#,
                "port: expected a u16",
            ),
            (
                r#"{"type":"error","code":"odd","message":""}"#,
                "code: expected one of:",
            ),
            (r#"[1]"#, "expected an object"),
            (r#"{"type":"#, "EOF"),
        ] {
            assert!(serde_json::from_str::<ServerEvent>(json).is_err(), "{json}");
            let err = server_event(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }
}
