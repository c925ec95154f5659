//! A panic fails its run and nothing else: injected on purpose (the test
//! build's `fault-injection` feature) where a real bug could strike, each
//! is a failed run with a clear message, the connection stays usable, its
//! places are freed, and the server goes on serving.

use protocol::{
    ClientMessage, ErrorCode, ModelSpec, Outcome, RunSpec, ServerEvent, Sharing, ThreadStrategy,
    Workload,
};
use spawnlab::engine::PanicAt;
use spawnlab_tests::{http_get, spawn_app_with, test_settings, WsClient};

fn finished(ev: &ServerEvent) -> bool {
    matches!(ev, ServerEvent::RunFinished { .. })
}

/// The error messages and the outcome of one run, to its end.
async fn run(ws: &mut WsClient, id: u64, spec: RunSpec) -> anyhow::Result<(Vec<String>, Outcome)> {
    ws.send(&ClientMessage::Start { id, spec }).await?;
    let events = ws.until(finished).await?;
    let errors = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Error {
                run: Some(run),
                code: ErrorCode::RunFailed,
                message,
                ..
            } if *run == id => Some(message.clone()),
            _ => None,
        })
        .collect();
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    Ok((errors, summary.outcome))
}

fn threads(strategy: ThreadStrategy, sharing: Sharing) -> RunSpec {
    RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::Threads { strategy, sharing },
        workload: Workload::Primes { below: 300_000 },
        workers: 2,
    }
}

#[tokio::test]
async fn a_worker_thread_that_panics_fails_its_run_only() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.panic_at = Some(PanicAt::Worker);
    let app = spawn_app_with(settings).await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    // Shared memory used to leave its reader spinning forever; the pool's
    // default would abort the whole server.
    for (id, strategy, sharing) in [
        (1, ThreadStrategy::Spawn, Sharing::SharedMemory),
        (2, ThreadStrategy::Pool, Sharing::SharedMemory),
        (3, ThreadStrategy::Pool, Sharing::Messages),
        (4, ThreadStrategy::Spawn, Sharing::Messages),
    ] {
        let (errors, outcome) = run(&mut ws, id, threads(strategy, sharing)).await?;
        assert_eq!(outcome, Outcome::Failed, "{strategy:?} {sharing:?}");
        assert_eq!(errors.len(), 2, "one per worker: {errors:?}");
        for e in errors {
            assert!(
                e.contains("ended without finishing: it panicked: injected panic in worker"),
                "{e}"
            );
        }
    }
    // The same connection runs another model to the end, and the site answers.
    let main = RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::MainThread,
        workload: Workload::Primes { below: 100_000 },
        workers: 1,
    };
    let (errors, outcome) = run(&mut ws, 5, main).await?;
    assert_eq!((errors.len(), outcome), (0, Outcome::Completed));
    assert_eq!(http_get(app.addr, "/healthz").await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn a_run_that_panics_is_failed_and_frees_its_places() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.panic_at = Some(PanicAt::Run);
    // One run at a time on the whole server: a run whose place was never
    // given back would leave every later run queued for ever.
    settings.budget.max_runs = 1;
    let app = spawn_app_with(settings).await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    // More runs than one connection may hold at once.
    for id in 1..=4 {
        let spec = threads(ThreadStrategy::Spawn, Sharing::Messages);
        ws.send(&ClientMessage::Start { id, spec }).await?;
        let events = ws.until(finished).await?;
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ServerEvent::Queued { .. })),
            "run {id} waited for a place a panicked run kept: {events:?}"
        );
        let failed = events.iter().any(|e| {
            matches!(e, ServerEvent::Error { run: Some(r), code: ErrorCode::RunFailed, message, .. }
                if *r == id && message == &format!("run {id} panicked: injected panic in run {id}"))
        });
        assert!(failed, "{events:?}");
        let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(summary.outcome, Outcome::Failed);
    }
    assert_eq!(http_get(app.addr, "/healthz").await?.0, 200);
    Ok(())
}
