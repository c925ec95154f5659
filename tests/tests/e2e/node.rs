//! The Node.js runtime end to end: real `node` running our scripts, started
//! by a real server, driven over a real WebSocket. Results are checked as
//! for the Rust engine; processes are found by the marker every process of
//! a Node run carries (`SPAWNLAB_RUN`), so the checks hold whatever other
//! tests run beside these.

use protocol::{
    ClientMessage, ErrorCode, KillWorker, ModelSpec, Outcome, Program, RunSpec, Runtime,
    SchedPolicy, Serialization, ServerEvent, Sharing, ThreadStrategy, WorkResult, Workload,
};
use spawnlab_tests::{
    env_of, marker_is_gone, marker_of, process, spawn_app, spawn_app_with, test_settings,
    ServerProcess, WsClient,
};
use std::time::Duration;

fn finished(ev: &ServerEvent) -> bool {
    matches!(ev, ServerEvent::RunFinished { .. })
}

fn node(model: ModelSpec, workload: Workload, workers: u32) -> RunSpec {
    RunSpec {
        runtime: Runtime::Node,
        model,
        workload,
        workers,
    }
}

fn threads(strategy: ThreadStrategy, sharing: Sharing, below: u64) -> RunSpec {
    node(
        ModelSpec::Threads { strategy, sharing },
        Workload::Primes { below },
        2,
    )
}

fn children(serialization: Serialization, round_trips: u32, workload: Workload) -> RunSpec {
    node(
        ModelSpec::ChildProcess {
            round_trips,
            serialization,
        },
        workload,
        2,
    )
}

fn cluster(policy: SchedPolicy, requests: u32, kill: Option<KillWorker>) -> RunSpec {
    node(
        ModelSpec::Cluster {
            policy,
            requests,
            concurrency: 16,
            keep_alive: true,
            kill,
        },
        Workload::HttpHello,
        2,
    )
}

/// The `node` process of a run: the pid its `runtime_ready` names.
fn node_pid(events: &[ServerEvent]) -> Option<u32> {
    events.iter().find_map(|e| match e {
        ServerEvent::RuntimeReady { pid, .. } => Some(*pid),
        _ => None,
    })
}

fn summary(events: &[ServerEvent]) -> protocol::RunSummary {
    match events.last() {
        Some(ServerEvent::RunFinished { summary, .. }) => summary.clone(),
        other => panic!("the run did not finish: {other:?}"),
    }
}

#[tokio::test]
async fn worker_threads_count_primes_in_every_style() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let mut id = 0;
    for strategy in ThreadStrategy::ALL {
        for sharing in Sharing::ALL {
            id += 1;
            ws.send(&ClientMessage::Start {
                id,
                spec: threads(strategy, sharing, 1_000_000),
            })
            .await?;
            let events = ws.until(finished).await?;
            let s = summary(&events);
            assert_eq!(
                s.outcome,
                Outcome::Completed,
                "{strategy:?} {sharing:?}: {events:?}"
            );
            assert_eq!(s.result, WorkResult::Primes { count: 78_498 });
            assert!(
                s.speedup.is_some_and(|x| x > 0.0) && s.baseline_wall_us.is_some_and(|b| b > 0),
                "the one-worker baseline was measured: {s:?}"
            );
            let ready = events.iter().find_map(|e| match e {
                ServerEvent::RuntimeReady {
                    runtime,
                    version,
                    boot_us,
                    ..
                } => Some((*runtime, version.clone(), *boot_us)),
                _ => None,
            });
            let (runtime, version, boot_us) = ready.expect("node said it was ready");
            assert_eq!(runtime, Runtime::Node);
            assert!(version.starts_with('v'), "{version}");
            assert!(boot_us > 0);
            // Every Worker is a thread of the one node process.
            let pid = node_pid(&events).unwrap();
            let count = |f: fn(&ServerEvent) -> bool| events.iter().filter(|e| f(e)).count();
            assert_eq!(
                (
                    count(|e| matches!(e, ServerEvent::WorkerSpawned { .. })),
                    count(|e| matches!(e, ServerEvent::WorkerFinished { .. }))
                ),
                (2, 2),
                "{strategy:?} {sharing:?}: both Workers started and finished"
            );
            for e in &events {
                if let ServerEvent::WorkerSpawned { pid: p, tid, .. } = e {
                    assert_eq!(*p, pid, "a Worker lives in the node process");
                    assert!(
                        tid.is_some_and(|t| t != pid),
                        "a Worker has a thread of its own"
                    );
                }
                if let ServerEvent::WorkerFinished {
                    messages, memory, ..
                } = e
                {
                    match sharing {
                        Sharing::SharedMemory => assert_eq!(*messages, Some(0)),
                        Sharing::Messages => assert!(messages.is_some_and(|m| m >= 2)),
                    }
                    assert!(memory.is_some(), "memory per Worker is measured");
                    // A fresh Worker grows the process by megabytes; a
                    // pooled one may have grown it before this run.
                    if strategy == ThreadStrategy::Spawn {
                        assert!(
                            memory.is_some_and(|m| m.rss_bytes > 0),
                            "a new Worker adds resident memory: {memory:?}"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_worker_run_adds_its_threads_to_the_node_process() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: node(
            ModelSpec::Threads {
                strategy: ThreadStrategy::Spawn,
                sharing: Sharing::Messages,
            },
            Workload::Sleep { ms: 4_000 },
            2,
        ),
    })
    .await?;
    let mut seen = Vec::new();
    let mut tids = Vec::new();
    while tids.len() < 2 {
        let ev = ws.next().await?;
        if let ServerEvent::WorkerSpawned { tid: Some(t), .. } = &ev {
            tids.push(*t);
        }
        seen.push(ev);
    }
    let pid = node_pid(&seen).expect("runtime_ready comes first");
    for tid in &tids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists(),
            "thread {tid} is a thread of node ({pid})"
        );
    }
    let marker = marker_of(pid).expect("node carries the run's marker");
    ws.send(&ClientMessage::Cancel { id: 1 }).await?;
    assert_eq!(
        summary(&ws.until(finished).await?).outcome,
        Outcome::Cancelled
    );
    marker_is_gone(&marker).await?;
    Ok(())
}

#[tokio::test]
async fn forked_children_count_primes_and_time_their_channel() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    for (id, serialization) in [(1, Serialization::Json), (2, Serialization::Advanced)] {
        ws.send(&ClientMessage::Start {
            id,
            spec: children(serialization, 100, Workload::Primes { below: 1_000_000 }),
        })
        .await?;
        let events = ws.until(finished).await?;
        let s = summary(&events);
        assert_eq!(
            s.outcome,
            Outcome::Completed,
            "{serialization:?}: {events:?}"
        );
        assert_eq!(s.result, WorkResult::Primes { count: 78_498 });
        let trips: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::RoundTrips { count, .. } => Some(*count),
                _ => None,
            })
            .collect();
        assert_eq!(trips, vec![100, 100]);
        let memory = events.iter().filter_map(|e| match e {
            ServerEvent::WorkerFinished { memory, .. } => *memory,
            _ => None,
        });
        assert_eq!(
            memory.filter(|m| m.anon_bytes > 0).count(),
            2,
            "each child's own memory"
        );
    }
    Ok(())
}

#[tokio::test]
async fn forked_children_are_children_of_node_and_die_with_the_run() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: children(Serialization::Json, 0, Workload::Sleep { ms: 10_000 }),
    })
    .await?;
    let mut seen = Vec::new();
    let mut pids = Vec::new();
    while pids.len() < 2 {
        let ev = ws.next().await?;
        if let ServerEvent::WorkerSpawned { pid, .. } = &ev {
            pids.push(*pid);
        }
        seen.push(ev);
    }
    let parent = node_pid(&seen).unwrap();
    for pid in &pids {
        assert_eq!(
            process(*pid).map(|p| p.ppid),
            Some(parent),
            "{pid} is node's child"
        );
    }
    let marker = marker_of(parent).unwrap();
    // The learner goes away: every process of the run goes too.
    drop(ws);
    marker_is_gone(&marker).await?;
    Ok(())
}

#[tokio::test]
async fn programs_run_by_execfile_without_a_shell() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: children(
            Serialization::Json,
            0,
            Workload::Program {
                program: Program::Uname,
            },
        ),
    })
    .await?;
    let events = ws.until(finished).await?;
    assert_eq!(summary(&events).outcome, Outcome::Completed, "{events:?}");
    let outputs: Vec<(Option<i32>, String)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::WorkerFinished {
                result:
                    WorkResult::Program {
                        exit_code, output, ..
                    },
                ..
            } => Some((*exit_code, output.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(outputs.len(), 2, "{events:?}");
    for (exit_code, output) in outputs {
        assert_eq!(exit_code, Some(0));
        assert!(output.contains("Linux"), "{output}");
    }
    Ok(())
}

#[tokio::test]
async fn the_main_thread_freezes_for_cpu_and_blocking_waits_but_not_for_timers(
) -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let main = |workload| node(ModelSpec::MainThread, workload, 1);
    let mut lags = Vec::new();
    for (id, workload) in [
        (1, Workload::Sleep { ms: 600 }),
        (2, Workload::BlockingWait { ms: 600 }),
        (3, Workload::Primes { below: 3_000_000 }),
    ] {
        ws.send(&ClientMessage::Start {
            id,
            spec: main(workload),
        })
        .await?;
        let events = ws.until(finished).await?;
        let s = summary(&events);
        assert_eq!(s.outcome, Outcome::Completed, "{events:?}");
        let pings: Vec<Option<u64>> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Ping { latency_us, .. } => Some(*latency_us),
                _ => None,
            })
            .collect();
        assert!(!pings.is_empty(), "the server probed /ping from outside");
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::LoopDelay { .. })));
        lags.push((
            s.main_loop_lag_us.unwrap(),
            pings.into_iter().flatten().max().unwrap_or(0),
            s.wall_us,
        ));
    }
    let (timer, blocking, cpu) = (lags[0], lags[1], lags[2]);
    // The heartbeat and the pings wait for the whole blocking wait (600 ms),
    // not for a timer wait; how long exactly depends on the machine.
    assert!(
        blocking.0 >= 500_000,
        "a synchronous wait froze the loop: {blocking:?}"
    );
    assert!(
        blocking.1 >= 200_000,
        "a ping waited behind it: {blocking:?}"
    );
    assert!(
        timer.0 < blocking.0 / 2,
        "awaiting a timer kept the loop free: {timer:?} {blocking:?}"
    );
    // A CPU-bound job holds the loop for as long as it runs: the heartbeat
    // that fell due waited about the job's whole time (less one tick).
    assert!(
        cpu.0 + 40_000 >= cpu.2,
        "the CPU job blocked the loop for its whole run: lag {} µs, job {} µs",
        cpu.0,
        cpu.2
    );
    Ok(())
}

#[tokio::test]
async fn libuv_pool_hashes_run_on_the_pool_size_asked_for_and_only_on_node() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let pool = |runtime| RunSpec {
        runtime,
        model: ModelSpec::MainThread,
        workload: Workload::PoolHash {
            calls: 4,
            pool_threads: 1,
        },
        workers: 1,
    };
    // The Rust engine has no libuv pool: refused, naming the runtime.
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: pool(Runtime::Rust),
    })
    .await?;
    let ServerEvent::Error { field, message, .. } = ws.next().await? else {
        panic!("a pool run on the Rust engine was not refused");
    };
    assert_eq!(field.as_deref(), Some("spec.runtime"), "{message}");
    assert!(message.contains("only on node"), "{message}");

    // The same connection runs it on Node.js, with the pool it asked for.
    ws.send(&ClientMessage::Start {
        id: 2,
        spec: pool(Runtime::Node),
    })
    .await?;
    let mut events = Vec::new();
    let mut pool_size = None;
    loop {
        let ev = ws.next().await?;
        if let ServerEvent::RuntimeReady { pid, .. } = &ev {
            pool_size = env_of(*pid, "UV_THREADPOOL_SIZE");
        }
        let done = finished(&ev);
        events.push(ev);
        if done {
            break;
        }
    }
    assert_eq!(pool_size.as_deref(), Some("1"), "node's environment");
    let s = summary(&events);
    assert_eq!(s.outcome, Outcome::Completed, "{events:?}");
    assert_eq!(s.result, WorkResult::Hashed { calls: 4 });
    let order: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::PoolTask { task, .. } => Some(*task),
            _ => None,
        })
        .collect();
    // One pool thread takes the hashes first come, first served.
    assert_eq!(order, [0, 1, 2, 3]);
    Ok(())
}

fn per_worker(events: &[ServerEvent]) -> protocol::LoadStats {
    events
        .iter()
        .find_map(|e| match e {
            ServerEvent::LoadFinished { stats, .. } => Some(stats.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no load_finished in {events:?}"))
}

#[tokio::test]
async fn a_node_cluster_counts_every_request_once_under_each_policy() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    for (id, policy) in [(1, SchedPolicy::RoundRobin), (2, SchedPolicy::SharedSocket)] {
        ws.send(&ClientMessage::Start {
            id,
            spec: cluster(policy, 2_000, None),
        })
        .await?;
        let events = ws.until(finished).await?;
        assert_eq!(
            summary(&events).outcome,
            Outcome::Completed,
            "{policy:?}: {events:?}"
        );
        let stats = per_worker(&events);
        assert_eq!(stats.completed, 2_000);
        assert_eq!(stats.errors, 0);
        assert_eq!(stats.per_worker.iter().sum::<u64>(), 2_000, "{policy:?}");
        let own: u64 = stats.served_by_workers.iter().flatten().sum();
        assert_eq!(own, 2_000, "each worker's own count adds up: {stats:?}");
        // Every worker is a node whose parent is the primary.
        let primary = node_pid(&events).unwrap();
        let workers: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::WorkerSpawned { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        assert_eq!(workers.len(), 2);
        assert!(!workers.contains(&primary));
    }
    Ok(())
}

#[tokio::test]
async fn cluster_workers_are_the_primarys_children_and_are_replaced_when_killed(
) -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let spec = node(
        ModelSpec::Cluster {
            policy: SchedPolicy::RoundRobin,
            requests: 2_000,
            concurrency: 4,
            keep_alive: true,
            kill: None,
        },
        Workload::HttpSleep { ms: 5 },
        2,
    );
    ws.send(&ClientMessage::Start { id: 1, spec }).await?;
    let mut seen = Vec::new();
    // By worker index: the workers say they are up in either order.
    let mut pids = [0u32; 2];
    while pids.contains(&0) {
        let ev = ws.next().await?;
        if let ServerEvent::WorkerSpawned { worker, pid, .. } = &ev {
            pids[*worker as usize] = *pid;
        }
        seen.push(ev);
    }
    let primary = node_pid(&seen).unwrap();
    for pid in &pids {
        let info = process(*pid).expect("the worker is alive");
        assert_eq!(info.ppid, primary, "worker {pid}'s parent is the primary");
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
        assert!(name.trim().starts_with("node"), "{name}");
    }
    ws.until(|e| matches!(e, ServerEvent::ClusterTick { .. }))
        .await?;
    ws.send(&ClientMessage::Kill { id: 1, worker: 0 }).await?;
    let events = ws.until(finished).await?;
    let exited = events.iter().find_map(|e| match e {
        ServerEvent::WorkerExited {
            worker: 0,
            pid,
            signal,
            ..
        } => Some((*pid, *signal)),
        _ => None,
    });
    assert_eq!(exited, Some((pids[0], Some(9))), "{events:?}");
    let respawned = events.iter().find_map(|e| match e {
        ServerEvent::WorkerRespawned { worker: 0, pid, .. } => Some(*pid),
        _ => None,
    });
    let replacement = respawned.expect("the primary's exit handler forked a replacement");
    assert_ne!(replacement, pids[0]);
    let stats = per_worker(&events);
    assert_eq!(stats.respawns, 1);
    assert_eq!(
        stats.completed + stats.errors,
        2_000,
        "every request accounted for"
    );
    Ok(())
}

#[tokio::test]
async fn reuse_port_is_offered_only_where_node_has_it() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, hello) = WsClient::connect(&app.ws_url()).await?;
    let ServerEvent::Hello { runtimes, .. } = hello else {
        panic!("{hello:?}")
    };
    let info = runtimes
        .iter()
        .find(|r| r.runtime == Runtime::Node)
        .expect("the node runtime is described");
    let missing = info.missing.iter().any(|m| m.feature == "reuse_port");
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: cluster(SchedPolicy::ReusePort, 500, None),
    })
    .await?;
    let events = ws
        .until(|e| finished(e) || matches!(e, ServerEvent::Error { .. }))
        .await?;
    match events.last() {
        Some(ServerEvent::Error {
            field,
            message,
            code,
            ..
        }) if missing => {
            assert_eq!(*code, ErrorCode::InvalidField);
            assert_eq!(field.as_deref(), Some("spec.model.policy"));
            assert!(message.contains("v22.12"), "{message}");
            assert!(
                message.contains(info.version.as_deref().unwrap()),
                "{message}"
            );
        }
        Some(ServerEvent::RunFinished { summary, .. }) if !missing => {
            assert_eq!(summary.outcome, Outcome::Completed);
        }
        other => panic!("reuse_port missing={missing}, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_deadline_ends_a_node_run_and_all_its_processes() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.limits.run_deadline = Duration::from_secs(5);
    let app = spawn_app_with(settings).await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    // 50,000 requests that each wait 20 ms, 16 at a time: about a minute.
    let slow = node(
        ModelSpec::Cluster {
            policy: SchedPolicy::RoundRobin,
            requests: 50_000,
            concurrency: 16,
            keep_alive: true,
            kill: None,
        },
        Workload::HttpSleep { ms: 20 },
        2,
    );
    ws.send(&ClientMessage::Start { id: 1, spec: slow }).await?;
    // The first thing node says, well before the deadline on a busy host.
    let seen = ws
        .until(|e| matches!(e, ServerEvent::RuntimeReady { .. }))
        .await?;
    let marker = marker_of(node_pid(&seen).unwrap()).unwrap();
    let events = ws.until(finished).await?;
    assert_eq!(summary(&events).outcome, Outcome::DeadlineExceeded);
    marker_is_gone(&marker).await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_server_leaves_no_process_of_a_node_run() -> anyhow::Result<()> {
    let mut server = ServerProcess::start(&[])?;
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: node(
            ModelSpec::Cluster {
                policy: SchedPolicy::RoundRobin,
                requests: 50_000,
                concurrency: 4,
                keep_alive: true,
                kill: None,
            },
            Workload::HttpSleep { ms: 20 },
            2,
        ),
    })
    .await?;
    let mut seen = Vec::new();
    let mut workers = 0;
    while workers < 2 {
        let ev = ws.next().await?;
        workers += u32::from(matches!(ev, ServerEvent::WorkerSpawned { .. }));
        seen.push(ev);
    }
    let marker = marker_of(node_pid(&seen).unwrap()).unwrap();
    assert!(
        spawnlab_tests::with_marker(&marker).len() >= 4,
        "guardian, primary and two workers: {:?}",
        spawnlab_tests::with_marker(&marker)
    );
    // SIGKILL: none of the server's own clean-up runs.
    server.kill_hard()?;
    marker_is_gone(&marker).await?;
    Ok(())
}

/// A stand-in for `node` that answers `detect.js` like a real one and then
/// misbehaves as `how` says.
fn fake_node(how: &str) -> FakeNode {
    let dir = std::env::temp_dir().join(format!("spawnlab-fake-node-{}-{how}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node");
    let body = match how {
        "garbage" => "echo 'this is not an event' >&3",
        "ready-then-exit" => {
            r#"printf '{"type":"runtime_ready","run":1,"runtime":"node","version":"v20.0.0","boot_us":5,"pid":%s}\n' $$ >&3; exit 3"#
        }
        _ => "exit 1",
    };
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in *detect.js) echo '{{\"version\":\"v20.0.0\",\"reuse_port\":false}}'; exit 0;; esac\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    FakeNode { dir, path }
}

/// The stand-in and its folder, removed on drop.
struct FakeNode {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_script_that_prints_garbage_or_dies_fails_only_its_run() -> anyhow::Result<()> {
    // Each misbehaviour with the words its failure must say.
    for (how, says) in [
        ("garbage", "not a protocol event"),
        ("ready-then-exit", "ended without finishing"),
    ] {
        let fake = fake_node(how);
        let mut settings = test_settings();
        settings.node = fake.path.clone();
        let app = spawn_app_with(settings).await;
        let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
        ws.send(&ClientMessage::Start {
            id: 1,
            spec: threads(ThreadStrategy::Spawn, Sharing::Messages, 100_000),
        })
        .await?;
        let events = ws.until(finished).await?;
        assert_eq!(
            summary(&events).outcome,
            Outcome::Failed,
            "{how}: {events:?}"
        );
        let message = events
            .iter()
            .find_map(|e| match e {
                ServerEvent::Error {
                    code: ErrorCode::RunFailed,
                    message,
                    ..
                } => Some(message.clone()),
                _ => None,
            })
            .expect("the failure is explained");
        assert!(
            message.starts_with("Node.js: ") && message.contains(says),
            "{how}: {message}"
        );
        // The connection and the server go on: the Rust engine still runs.
        let rust = RunSpec {
            runtime: Runtime::Rust,
            ..threads(ThreadStrategy::Spawn, Sharing::Messages, 100_000)
        };
        ws.send(&ClientMessage::Start { id: 2, spec: rust }).await?;
        let events = ws.until(finished).await?;
        assert_eq!(summary(&events).result, WorkResult::Primes { count: 9_592 });
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_node_is_named_and_the_rust_engine_still_works() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.node = "/nonexistent/node".into();
    let app = spawn_app_with(settings).await;
    let (mut ws, hello) = WsClient::connect(&app.ws_url()).await?;
    let ServerEvent::Hello { runtimes, .. } = hello else {
        panic!("{hello:?}")
    };
    let info = runtimes
        .iter()
        .find(|r| r.runtime == Runtime::Node)
        .unwrap();
    assert!(!info.available);
    assert!(
        info.note.contains("apt-get install nodejs"),
        "{}",
        info.note
    );
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: threads(ThreadStrategy::Spawn, Sharing::Messages, 1_000),
    })
    .await?;
    let ServerEvent::Error { field, message, .. } = ws.next().await? else {
        panic!("a node run is refused")
    };
    assert_eq!(field.as_deref(), Some("spec.runtime"));
    assert!(message.contains("runtime rust"), "{message}");
    let rust = RunSpec {
        runtime: Runtime::Rust,
        ..threads(ThreadStrategy::Spawn, Sharing::Messages, 1_000)
    };
    ws.send(&ClientMessage::Start { id: 2, spec: rust }).await?;
    let events = ws.until(finished).await?;
    assert_eq!(summary(&events).outcome, Outcome::Completed);
    Ok(())
}
