//! The WebSocket route, driven by a real client against a real server bound
//! to a loopback port: validation, a full run, cancel and disconnect.

use protocol::{
    ClientMessage, ErrorCode, ModelSpec, Outcome, RunSpec, ServerEvent, WorkResult, Workload,
};
use spawnlab_tests::{eventually, http_get, spawn_app, WsClient};
use std::time::Duration;

fn threads(workload: Workload, workers: u32) -> RunSpec {
    RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::Threads {
            strategy: Default::default(),
            sharing: Default::default(),
        },
        workload,
        workers,
    }
}

fn finished(ev: &ServerEvent) -> bool {
    matches!(ev, ServerEvent::RunFinished { .. })
}

/// True while thread `tid` of this process (the server runs in it) lives.
fn thread_alive(tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

#[tokio::test]
async fn a_bad_request_then_a_good_one_on_the_same_connection() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, hello) = WsClient::connect(&app.ws_url()).await?;
    let ServerEvent::Hello { limits, .. } = hello else {
        panic!("the first frame is hello, got {hello:?}");
    };

    // Out of range: the error names the field and the allowed range.
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: threads(
            Workload::Primes { below: 1_000_000 },
            limits.max_workers + 1,
        ),
    })
    .await?;
    match ws.next().await? {
        ServerEvent::Error {
            run,
            code,
            field,
            message,
        } => {
            assert_eq!(run, Some(1));
            assert_eq!(code, ErrorCode::InvalidField);
            assert_eq!(field.as_deref(), Some("spec.workers"));
            assert_eq!(message, "spec.workers must be between 1 and 16, got 17");
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // Not a request at all.
    ws.send_text(r#"{"type":"start","id":2,"spec":{"model":{"kind":"threads"},"workload":{"kind":"rm -rf /"},"workers":1}}"#)
        .await?;
    match ws.next().await? {
        ServerEvent::Error {
            code,
            field,
            message,
            ..
        } => {
            assert_eq!(code, ErrorCode::Malformed);
            assert_eq!(field.as_deref(), Some("spec.workload.kind"));
            assert!(message.contains("unknown variant `rm -rf /`"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // The same connection still runs a good request to the end.
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: threads(Workload::Primes { below: 1_000_000 }, 2),
    })
    .await?;
    let events = ws.until(finished).await?;
    assert!(matches!(events[0], ServerEvent::Accepted { run: 1 }));
    let ServerEvent::Started { host, .. } = &events[1] else {
        panic!("accepted is followed by started, got {:?}", events[1]);
    };
    assert!(host.logical_cores >= 1);

    let spawned: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::WorkerSpawned { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect();
    assert_eq!(spawned.len(), 2);
    let per_worker: u64 = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::WorkerFinished {
                result: WorkResult::Primes { count },
                ..
            } => Some(*count),
            _ => None,
        })
        .sum();
    assert_eq!(per_worker, 78_498, "the workers' counts add up");
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Progress { worker: 1, .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::BaselineFinished { .. })));

    let Some(ServerEvent::RunFinished { run, summary }) = events.last() else {
        unreachable!()
    };
    assert_eq!(*run, 1);
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.result, WorkResult::Primes { count: 78_498 });
    assert!(summary.baseline_wall_us.is_some());
    assert!(summary.speedup.is_some_and(|s| s > 0.0));
    Ok(())
}

#[tokio::test]
async fn cancel_and_disconnect_stop_the_threads() -> anyhow::Result<()> {
    let app = spawn_app().await;
    // Five seconds per thread, far past the two seconds allowed below.
    let long = threads(Workload::Sleep { ms: 10_000 }, 2);

    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 7,
        spec: long.clone(),
    })
    .await?;
    ws.until(|e| matches!(e, ServerEvent::WorkerSpawned { worker: 1, .. }))
        .await?;
    ws.send(&ClientMessage::Cancel { id: 7 }).await?;
    let events = ws.until(finished).await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert_eq!(summary.result, WorkResult::Incomplete);

    // A learner who closes the tab mid-run: the server stops the work.
    // Its own threads, as it reported them, not a count of threads that
    // other tests in this process could change.
    ws.send(&ClientMessage::Start { id: 8, spec: long }).await?;
    // Both threads start at once, so their reports come in either order.
    let mut started = Vec::new();
    while tids(&started).len() < 2 {
        started.push(ws.next().await?);
    }
    let workers = tids(&started);
    assert_eq!(workers.len(), 2, "{started:?}");
    assert!(workers.iter().all(|&tid| thread_alive(tid)));
    drop(ws);
    eventually(Duration::from_secs(2), "the workers to exit", || async {
        Ok(workers.iter().all(|&tid| !thread_alive(tid)).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_frame_too_large_to_read_gets_an_error_and_a_1009_close() -> anyhow::Result<()> {
    let app = spawn_app().await;
    // A MiB: far past what the WebSocket layer reads (64 KiB), so the rest
    // of it is still on the wire when the server answers.
    let big = format!(
        r#"{{"type":"start","id":1,"pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    for _ in 0..3 {
        let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
        // The server stops reading part-way, so the send may not complete;
        // what matters is what comes back.
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.send_text(&big)).await;
        let ServerEvent::Error { code, message, .. } = ws.next().await? else {
            panic!("expected an error event first");
        };
        assert_eq!(code, ErrorCode::TooLarge);
        assert!(
            message.contains("at most 4096 bytes") && message.contains(&big.len().to_string()),
            "{message}"
        );
        let (close, reason) = ws.close_frame().await?;
        assert_eq!(close, 1009, "{reason}");
        assert!(reason.contains("4096"), "{reason}");
    }
    // The server goes on serving others.
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: threads(Workload::Primes { below: 1_000 }, 1),
    })
    .await?;
    let events = ws.until(finished).await?;
    assert!(matches!(
        events.last(),
        Some(ServerEvent::RunFinished { summary, .. }) if summary.outcome == Outcome::Completed
    ));
    Ok(())
}

#[tokio::test]
async fn the_health_endpoint_answers() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (status, body) = http_get(app.addr, "/healthz").await?;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(json["status"], "ok");
    app.shutdown().await?;
    Ok(())
}

/// The workers' kernel thread ids in a finished run's events.
fn tids(events: &[ServerEvent]) -> std::collections::BTreeSet<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::WorkerSpawned { tid, .. } => *tid,
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_pool_reuses_its_threads_and_shared_memory_sends_no_messages() -> anyhow::Result<()> {
    use protocol::{Sharing, ThreadStrategy};
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let spec = |strategy, sharing| RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::Threads { strategy, sharing },
        workload: Workload::Primes { below: 200_000 },
        workers: 3,
    };
    let mut runs = Vec::new();
    for (id, strategy, sharing) in [
        (1, ThreadStrategy::Pool, Sharing::Messages),
        (2, ThreadStrategy::Pool, Sharing::SharedMemory),
        (3, ThreadStrategy::Spawn, Sharing::SharedMemory),
        (4, ThreadStrategy::Spawn, Sharing::Messages),
    ] {
        ws.send(&ClientMessage::Start {
            id,
            spec: spec(strategy, sharing),
        })
        .await?;
        let events = ws.until(finished).await?;
        let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(
            summary.result,
            WorkResult::Primes { count: 17_984 },
            "{strategy:?} {sharing:?}"
        );
        let messages: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::WorkerFinished { messages, .. } => *messages,
                _ => None,
            })
            .collect();
        assert_eq!(messages.len(), 3);
        match sharing {
            Sharing::SharedMemory => assert_eq!(messages, vec![0, 0, 0]),
            // Ready, one progress message per step, and the result.
            Sharing::Messages => assert!(messages.iter().all(|&m| m > 2), "{messages:?}"),
        }
        runs.push(tids(&events));
    }
    // The pool's threads outlive a run and serve the next; spawned threads
    // end with their run.
    let name = |tid: u32| std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok();
    for tid in runs[0].iter().chain(&runs[1]) {
        let alive = name(*tid).unwrap_or_default();
        assert!(
            alive.starts_with("spawnlab-pool-"),
            "pool thread {tid}: {alive:?}"
        );
    }
    for tid in runs[2].iter().chain(&runs[3]) {
        assert_eq!(name(*tid), None, "spawned thread {tid} ended with its run");
    }
    Ok(())
}
