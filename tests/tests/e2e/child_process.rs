//! The child-process model end to end: real worker processes started by a
//! real server, driven over a real WebSocket. Every failure path ends with a
//! look at the host's process table: nothing the test started may survive.

use nix::sys::signal::Signal;
use protocol::{
    ClientMessage, ModelSpec, Outcome, Program, RunSpec, ServerEvent, WorkResult, Workload,
};
use spawnlab_tests::procs::signal;
use spawnlab_tests::{
    children_of, eventually, group_is_gone, is_running, spawn_app, spawn_app_with, test_settings,
    ServerProcess, WsClient,
};
use std::time::Duration;

fn children(workload: Workload, workers: u32, round_trips: u32) -> RunSpec {
    RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::ChildProcess {
            round_trips,
            serialization: Default::default(),
        },
        workload,
        workers,
    }
}

fn finished(ev: &ServerEvent) -> bool {
    matches!(ev, ServerEvent::RunFinished { .. })
}

/// The worker pids of a run, in worker order, from its `worker_spawned`
/// events (which arrive in whatever order the workers start).
fn pids(events: &[ServerEvent]) -> Vec<u32> {
    let mut by_worker: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::WorkerSpawned { worker, pid, .. } => Some((*worker, *pid)),
            _ => None,
        })
        .collect();
    by_worker.sort_unstable();
    by_worker.into_iter().map(|(_, pid)| pid).collect()
}

/// Start `spec` and wait until all `workers` have said they are ready;
/// returns the events so far.
async fn start_and_wait_ready(ws: &mut WsClient, id: u64, spec: RunSpec) -> Vec<ServerEvent> {
    let workers = spec.workers;
    ws.send(&ClientMessage::Start { id, spec }).await.unwrap();
    let mut seen = Vec::new();
    while pids(&seen).len() < workers as usize {
        seen.push(ws.next().await.unwrap());
    }
    seen
}

#[tokio::test]
async fn children_count_primes_and_report_their_own_costs() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: children(Workload::Primes { below: 1_000_000 }, 2, 100),
    })
    .await?;
    let events = ws.until(finished).await?;

    let workers = pids(&events);
    assert_eq!(workers.len(), 2);
    assert_ne!(workers[0], workers[1], "each worker is its own process");
    assert!(!workers.contains(&std::process::id()));

    let trips: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::RoundTrips {
                count,
                p50_ns,
                p99_ns,
                ..
            } => Some((*count, *p50_ns, *p99_ns)),
            _ => None,
        })
        .collect();
    assert_eq!(trips.len(), 2, "one round-trip summary per child");
    for (count, p50, p99) in trips {
        assert_eq!(count, 100);
        assert!(p50 > 0 && p50 <= p99);
    }

    let mut total = 0;
    for e in &events {
        if let ServerEvent::WorkerFinished {
            memory,
            result,
            cpu_us,
            ..
        } = e
        {
            let memory = memory.expect("a process reports its memory");
            assert!(memory.rss_bytes > 0 && memory.anon_bytes > 0);
            assert!(memory.anon_bytes < memory.rss_bytes);
            assert!(*cpu_us > 0);
            let WorkResult::Primes { count } = result else {
                panic!("{result:?}")
            };
            total += count;
        }
    }
    assert_eq!(total, 78_498);
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.result, WorkResult::Primes { count: 78_498 });
    assert!(summary.speedup.is_some(), "the one-child baseline ran");
    for pid in workers {
        assert!(!is_running(pid), "worker {pid} has exited and been reaped");
    }
    Ok(())
}

#[tokio::test]
async fn allow_listed_programs_run_without_a_shell() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    for (id, program) in [(1, Program::Uname), (2, Program::NodeVersion)] {
        ws.send(&ClientMessage::Start {
            id,
            spec: children(Workload::Program { program }, 1, 0),
        })
        .await?;
        let events = ws.until(finished).await?;
        let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(summary.outcome, Outcome::Completed);
        let WorkResult::Program {
            exit_code, output, ..
        } = &summary.result
        else {
            panic!("{:?}", summary.result)
        };
        match program {
            Program::Uname => {
                assert_eq!(*exit_code, Some(0));
                assert!(output.starts_with("Linux "), "{output}");
            }
            _ => assert!(
                output.starts_with('v') || output.contains("not installed"),
                "{output}"
            ),
        }
    }
    Ok(())
}

#[tokio::test]
async fn cancel_disconnect_and_deadline_leave_no_process_behind() -> anyhow::Result<()> {
    // Five seconds of sleep per worker: far past the two seconds the checks
    // below allow for the processes to go.
    let long = || children(Workload::Sleep { ms: 10_000 }, 2, 0);

    // Cancel.
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let seen = start_and_wait_ready(&mut ws, 1, long()).await;
    let group = pids(&seen)[0];
    ws.send(&ClientMessage::Cancel { id: 1 }).await?;
    let events = ws.until(finished).await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Cancelled);
    group_is_gone(group).await?;

    // Disconnect: the learner closes the tab.
    let seen = start_and_wait_ready(&mut ws, 2, long()).await;
    let group = pids(&seen)[0];
    drop(ws);
    group_is_gone(group).await?;

    // Deadline.
    let mut settings = test_settings();
    settings.limits.run_deadline = Duration::from_millis(500);
    let app = spawn_app_with(settings).await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let seen = start_and_wait_ready(&mut ws, 3, long()).await;
    let group = pids(&seen)[0];
    let events = ws.until(finished).await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::DeadlineExceeded);
    group_is_gone(group).await?;
    Ok(())
}

#[tokio::test]
async fn workers_die_with_the_server_however_it_ends() -> anyhow::Result<()> {
    // SIGTERM: the server stops its runs, reaps its workers and exits.
    let mut server = ServerProcess::start(&[])?;
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    let seen =
        start_and_wait_ready(&mut ws, 1, children(Workload::Sleep { ms: 10_000 }, 2, 0)).await;
    let workers = pids(&seen);
    let status =
        tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10))).await??;
    assert!(status.success());
    for pid in &workers {
        assert!(!is_running(*pid), "worker {pid} outlived the server");
    }

    // SIGKILL: no code of the server runs, so only the kernel's parent-death
    // signal can end the worker, which would otherwise sleep on for 10 s.
    let mut server = ServerProcess::start(&[])?;
    let server_pid = server.pid();
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    let sleeper = children(Workload::Sleep { ms: 10_000 }, 1, 0);
    let workers = pids(&start_and_wait_ready(&mut ws, 1, sleeper).await);
    assert_eq!(children_of(server_pid).len(), 1);
    server.kill_hard()?;
    let dead = || async { Ok(workers.iter().all(|pid| !is_running(*pid)).then_some(())) };
    eventually(Duration::from_secs(3), "the orphaned worker to die", dead).await?;
    Ok(())
}

#[tokio::test]
async fn a_crashed_child_fails_the_run_and_the_rest_are_reaped() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let seen =
        start_and_wait_ready(&mut ws, 1, children(Workload::Sleep { ms: 10_000 }, 2, 0)).await;
    let workers = pids(&seen);
    // Something outside the server kills one worker.
    signal(workers[1] as i32, Signal::SIGKILL);
    let events = ws.until(finished).await?;
    let error = events.iter().find_map(|e| match e {
        ServerEvent::Error { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert!(
        error
            .as_deref()
            .is_some_and(|m| m.starts_with("worker 1 ended without finishing")),
        "{error:?}"
    );
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(summary.result, WorkResult::Incomplete);
    group_is_gone(workers[0]).await?;
    Ok(())
}
