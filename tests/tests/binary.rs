//! The built `spawnlab` binary on its own, as a self-hosting operator runs it:
//! address and site from flags, pages served, a clean exit on SIGTERM that
//! first tells connected learners their runs were stopped.

use app::protocol::{ClientMessage, ModelSpec, Outcome, RunSpec, ServerEvent, Workload};
use spawnlab_tests::{http_get, ServerProcess, WsClient};
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

    // A run in progress when the operator stops the server.
    let (mut ws, _) = WsClient::connect(&server.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: RunSpec {
            model: ModelSpec::Threads {
                strategy: Default::default(),
                sharing: Default::default(),
            },
            workload: Workload::Sleep { ms: 10_000 },
            workers: 2,
        },
    })
    .await?;
    ws.until(|e| matches!(e, ServerEvent::WorkerSpawned { worker: 1, .. }))
        .await?;

    let terminate = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(10));
        (server, status)
    });
    let events = ws
        .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
        .await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert!(ws.closed().await, "the server closes the socket");
    let (_server, status) = terminate.await?;
    assert!(status?.success(), "a clean exit after SIGTERM");
    Ok(())
}
