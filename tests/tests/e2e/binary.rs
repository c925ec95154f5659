//! The built `spawnlab` binary on its own, as a self-hosting operator runs it:
//! address and site from flags, pages served, a clean exit on SIGTERM that
//! first tells connected learners their runs were stopped.

use protocol::{ClientMessage, ErrorCode, ModelSpec, Outcome, RunSpec, ServerEvent, Workload};
use spawnlab_tests::{children_of, http_get, is_running, ServerProcess, WsClient};
use std::time::Duration;

#[tokio::test]
async fn serves_pages_from_flags_and_stops_cleanly_on_sigterm() -> anyhow::Result<()> {
    let mut server = ServerProcess::start(&["--max-workers", "4"])?;

    let (status, body) = http_get(server.addr, "/healthz").await?;
    assert_eq!(status, 200);
    assert!(body.contains("\"max_workers\":4"), "{body}");

    // The page's text is in the HTML itself, so it reads without JavaScript.
    let (status, html) = http_get(server.addr, "/threads").await?;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Worker threads</h1>"), "{html}");
    assert!(html.contains("Common misconception"));
    assert!(
        html.contains("needs JavaScript"),
        "the lab says it needs JavaScript"
    );
    assert!(
        html.contains("/pkg/spawnlab.js"),
        "the page loads the built bundle"
    );

    let (status, _) = http_get(server.addr, "/pkg/spawnlab.css").await?;
    assert_eq!(status, 200, "the built site is served from --site-dir");
    let (status, _) = http_get(server.addr, "/no-such-page").await?;
    assert_eq!(status, 404);

    // Bad parameters: refused by name, and nothing is started.
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    ws.send_text(r#"{"type":"start","id":9,"spec":{"model":{"kind":"child_process"},"workload":{"kind":"primes","below":1000},"workers":40}}"#)
        .await?;
    let ServerEvent::Error { field, .. } = ws.next().await? else {
        panic!("a bad request gets an error");
    };
    assert_eq!(field.as_deref(), Some("spec.workers"));
    assert!(
        children_of(server.pid()).is_empty(),
        "no process was started"
    );
    drop(ws);

    // A run of child processes in progress when the operator stops the server.
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::ChildProcess {
                round_trips: 0,
                serialization: Default::default(),
            },
            workload: Workload::Sleep { ms: 10_000 },
            workers: 2,
        },
    })
    .await?;
    let mut workers = Vec::new();
    while workers.len() < 2 {
        if let ServerEvent::WorkerSpawned { pid, .. } = ws.next().await? {
            workers.push(pid);
        }
    }
    let server_pid = server.pid();
    for pid in &workers {
        assert!(
            children_of(server_pid).iter().any(|c| c.pid == *pid),
            "worker {pid} is the server's child"
        );
    }

    let terminate = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(10));
        (server, status)
    });
    let events = ws
        .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
        .await?;
    let told = events.iter().any(|e| {
        matches!(
            e,
            ServerEvent::Error {
                code: ErrorCode::ShuttingDown,
                ..
            }
        )
    });
    assert!(told, "the learner is told why the run stopped");
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert!(ws.closed().await, "the server closes the socket");
    let (_server, status) = terminate.await?;
    assert!(status?.success(), "a clean exit after SIGTERM");
    // The workers' own pids, checked after the server is gone: reparented
    // orphans would still be running.
    for pid in &workers {
        assert!(!is_running(*pid), "worker {pid} outlived the server");
    }
    Ok(())
}
