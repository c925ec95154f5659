//! The main-thread model: the heartbeat on the run's own loop stops while the
//! work runs, and the site around it does not.

use protocol::{ClientMessage, ModelSpec, Outcome, RunSpec, ServerEvent, WorkResult, Workload};
use spawnlab_tests::{http_get, spawn_app, WsClient};

#[tokio::test]
async fn the_heartbeat_stalls_for_the_work_and_the_site_does_not() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::MainThread,
            workload: Workload::Primes { below: 5_000_000 },
            workers: 1,
        },
    })
    .await?;
    let mut events = ws
        .until(|e| matches!(e, ServerEvent::WorkerSpawned { .. }))
        .await?;

    // While the run's loop is blocked, the server still answers at once.
    let (status, _) = http_get(app.addr, "/healthz").await?;
    assert_eq!(status, 200);
    let next = ws.next().await?;
    assert!(
        !matches!(next, ServerEvent::RunFinished { .. }),
        "the health check came back before the blocked run ended"
    );
    events.push(next);
    events.extend(
        ws.until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await?,
    );

    let work_us = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::WorkerFinished {
                wall_us, result, ..
            } => {
                assert_eq!(*result, WorkResult::Primes { count: 348_513 });
                Some(*wall_us)
            }
            _ => None,
        })
        .expect("the work finished");
    let lags: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Heartbeat { lag_us, .. } => Some(*lag_us),
            _ => None,
        })
        .collect();
    assert!(
        lags.len() > 10,
        "the heartbeat ticks before and after the work"
    );
    let worst = *lags.iter().max().unwrap();
    // The tick that fell due while the loop was blocked waited for most of
    // the work; the typical tick did not.
    assert!(
        worst > work_us / 2,
        "worst lag {worst} µs for {work_us} µs of work"
    );
    let mut sorted = lags.clone();
    sorted.sort_unstable();
    assert!(sorted[sorted.len() / 2] < worst / 10, "{sorted:?}");

    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.main_loop_lag_us, Some(worst));
    Ok(())
}
