//! The cluster model end to end: a real primary and real HTTP workers on one
//! loopback port, loaded by the engine, driven over a real WebSocket. Every
//! request must be counted exactly once, and every process must be gone
//! afterwards.

use protocol::{
    ClientMessage, KillWorker, LoadStats, ModelSpec, Outcome, RunSpec, SchedPolicy, ServerEvent,
    Workload,
};
use spawnlab_tests::{group_is_gone, group_of, spawn_app, WsClient};

fn cluster(policy: SchedPolicy, requests: u32, kill: Option<KillWorker>) -> RunSpec {
    RunSpec {
        runtime: protocol::Runtime::Rust,
        model: ModelSpec::Cluster {
            policy,
            requests,
            concurrency: 16,
            keep_alive: true,
            kill,
        },
        workload: Workload::HttpHello,
        workers: 2,
    }
}

fn finished(ev: &ServerEvent) -> bool {
    matches!(ev, ServerEvent::RunFinished { .. })
}

/// The primary's process group: the cluster's workers join it, and its
/// id is the primary's pid, the parent of every worker.
fn group_of_first_worker(events: &[ServerEvent]) -> u32 {
    let pid = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::WorkerSpawned { pid, .. } => Some(*pid),
            _ => None,
        })
        .expect("a worker started");
    let group = group_of(pid);
    assert_ne!(group, pid, "a cluster worker is not its own group's leader");
    group
}

fn load_stats(events: &[ServerEvent]) -> LoadStats {
    events
        .iter()
        .find_map(|e| match e {
            ServerEvent::LoadFinished { stats, .. } => Some(stats.clone()),
            _ => None,
        })
        .expect("the load finished")
}

#[tokio::test]
async fn every_request_is_counted_once_under_each_policy() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    for (id, policy) in [
        SchedPolicy::RoundRobin,
        SchedPolicy::SharedSocket,
        SchedPolicy::ReusePort,
    ]
    .into_iter()
    .enumerate()
    {
        ws.send(&ClientMessage::Start {
            id: id as u64,
            spec: cluster(policy, 3_000, None),
        })
        .await?;
        let mut events = ws
            .until(|e| matches!(e, ServerEvent::WorkerSpawned { worker: 1, .. }))
            .await?;
        let group = group_of_first_worker(&events);
        events.extend(ws.until(finished).await?);

        let stats = load_stats(&events);
        assert_eq!(stats.errors, 0, "{policy:?}");
        assert_eq!(stats.completed, 3_000, "{policy:?}");
        assert_eq!(stats.per_worker.iter().sum::<u64>(), 3_000, "{policy:?}");
        let own: Vec<u64> = stats
            .served_by_workers
            .iter()
            .map(|n| n.expect("every worker reported"))
            .collect();
        assert_eq!(
            own, stats.per_worker,
            "{policy:?}: workers agree with the client"
        );
        assert!(stats.latency.p50_us <= stats.latency.p99_us);
        assert_eq!(
            stats.latency.buckets.iter().map(|b| b.count).sum::<u64>(),
            3_000
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::ClusterTick { .. })));
        let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(summary.outcome, Outcome::Completed, "{policy:?}");
        group_is_gone(group).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_killed_worker_is_replaced_and_the_load_goes_on() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let kill = KillWorker {
        worker: 0,
        after_requests: 1_000,
    };
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: cluster(SchedPolicy::RoundRobin, 6_000, Some(kill)),
    })
    .await?;
    let mut events = ws
        .until(|e| matches!(e, ServerEvent::WorkerSpawned { worker: 1, .. }))
        .await?;
    let group = group_of_first_worker(&events);
    events.extend(ws.until(finished).await?);

    let (killed, signal) = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::WorkerExited { worker, signal, .. } => Some((*worker, *signal)),
            _ => None,
        })
        .expect("the worker's death was noticed");
    assert_eq!((killed, signal), (0, Some(9)));
    let replaced = events
        .iter()
        .any(|e| matches!(e, ServerEvent::WorkerRespawned { worker: 0, .. }));
    assert!(replaced, "the primary started a replacement");

    let stats = load_stats(&events);
    assert_eq!(stats.respawns, 1);
    assert_eq!(
        stats.completed + stats.errors,
        6_000,
        "every request accounted for"
    );
    assert_eq!(stats.per_worker.iter().sum::<u64>(), stats.completed);
    assert!(stats.completed > 1_000, "the load went on after the kill");
    group_is_gone(group).await?;
    Ok(())
}

#[tokio::test]
async fn cancelling_a_cluster_ends_every_process() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let mut spec = cluster(SchedPolicy::RoundRobin, 50_000, None);
    // Slow answers, so the load is still going when the cancel arrives.
    spec.workload = Workload::HttpSleep { ms: 20 };
    ws.send(&ClientMessage::Start { id: 1, spec }).await?;
    let events = ws
        .until(|e| matches!(e, ServerEvent::ClusterTick { .. }))
        .await?;
    let group = group_of_first_worker(&events);
    ws.send(&ClientMessage::Cancel { id: 1 }).await?;
    let events = ws.until(finished).await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Cancelled);
    group_is_gone(group).await?;
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_on_request_dies_and_is_replaced_mid_load() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    // 2,000 requests of 5 ms each, 16 at a time on 2 workers: well over
    // half a second of load, time enough to press the button.
    let mut spec = cluster(SchedPolicy::RoundRobin, 2_000, None);
    spec.workload = Workload::HttpSleep { ms: 5 };
    ws.send(&ClientMessage::Start { id: 1, spec }).await?;
    let mut events = ws
        .until(|e| matches!(e, ServerEvent::ClusterTick { .. }))
        .await?;
    let group = group_of_first_worker(&events);

    // Out of range: refused by name, and the run goes on.
    ws.send(&ClientMessage::Kill { id: 1, worker: 2 }).await?;
    let refusal = ws.until(|e| matches!(e, ServerEvent::Error { .. })).await?;
    let Some(ServerEvent::Error { field, message, .. }) = refusal.last() else {
        unreachable!()
    };
    assert_eq!(field.as_deref(), Some("worker"));
    assert_eq!(message, "worker must be between 0 and 1, got 2");
    events.extend(refusal);

    ws.send(&ClientMessage::Kill { id: 1, worker: 1 }).await?;
    events.extend(ws.until(finished).await?);
    let died = events.iter().find_map(|e| match e {
        ServerEvent::WorkerExited { worker, signal, .. } => Some((*worker, *signal)),
        _ => None,
    });
    assert_eq!(died, Some((1, Some(9))), "worker 1 was killed");
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::WorkerRespawned { worker: 1, .. })));
    let stats = load_stats(&events);
    assert_eq!(stats.respawns, 1);
    assert_eq!(stats.completed + stats.errors, 2_000);
    assert_eq!(stats.per_worker.iter().sum::<u64>(), stats.completed);
    group_is_gone(group).await?;

    // Only a cluster run has workers to kill; the connection stays usable.
    ws.send(&ClientMessage::Start {
        id: 2,
        spec: RunSpec {
            runtime: protocol::Runtime::Rust,
            model: ModelSpec::Threads {
                strategy: Default::default(),
                sharing: Default::default(),
            },
            workload: Workload::Sleep { ms: 300 },
            workers: 1,
        },
    })
    .await?;
    ws.send(&ClientMessage::Kill { id: 2, worker: 0 }).await?;
    let events = ws.until(finished).await?;
    let refused = events.iter().find_map(|e| match e {
        ServerEvent::Error { field, message, .. } => Some((field.clone(), message.clone())),
        _ => None,
    });
    assert_eq!(
        refused,
        Some((
            Some("id".into()),
            "run 2 is not a cluster run; only a cluster's workers can be killed".into()
        ))
    );
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Completed);
    Ok(())
}
