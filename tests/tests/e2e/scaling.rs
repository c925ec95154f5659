//! The scaling lab end to end: real app instances (Node.js and Rust
//! clusters) behind a real nginx and a real HAProxy on loopback, loaded by
//! the engine and broken on purpose, over a real WebSocket. Every answer
//! is counted once, the balancer's own log agrees with the client, faults
//! do what the page says they do, and every process is gone afterwards.

use protocol::{
    Balance, BalancerKind, ClientMessage, ErrorCode, Fault, ModelSpec, Outcome, RunSpec, Runtime,
    ScalingStats, ServerEvent, TimedFault, Workload,
};
use spawnlab_tests::{group_is_gone, spawn_app, WsClient};

struct Scaling {
    runtime: Runtime,
    balancer: BalancerKind,
    balance: Balance,
    requests: u32,
    concurrency: u32,
    retries: bool,
    workload: Workload,
    faults: Vec<TimedFault>,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            runtime: Runtime::Rust,
            balancer: BalancerKind::Nginx,
            balance: Balance::RoundRobin,
            requests: 1_000,
            concurrency: 8,
            retries: true,
            workload: Workload::HttpHello,
            faults: Vec::new(),
        }
    }
}

impl Scaling {
    fn spec(self) -> RunSpec {
        RunSpec {
            runtime: self.runtime,
            model: ModelSpec::Scaling {
                instances: 2,
                balancer: self.balancer,
                balance: self.balance,
                requests: self.requests,
                concurrency: self.concurrency,
                keep_alive: true,
                retries: self.retries,
                faults: self.faults,
            },
            workload: self.workload,
            workers: 2,
        }
    }
}

/// Everything one run said, to its `run_finished`.
async fn run(ws: &mut WsClient, id: u64, spec: RunSpec) -> anyhow::Result<Vec<ServerEvent>> {
    ws.send(&ClientMessage::Start { id, spec }).await?;
    ws.until(|e| matches!(e, ServerEvent::RunFinished { run, .. } if *run == id))
        .await
}

fn stats(events: &[ServerEvent]) -> ScalingStats {
    events
        .iter()
        .find_map(|e| match e {
            ServerEvent::ScalingFinished { stats, .. } => Some(stats.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the load finished: {events:#?}"))
}

fn outcome(events: &[ServerEvent]) -> Outcome {
    match events.last() {
        Some(ServerEvent::RunFinished { summary, .. }) => summary.outcome,
        other => panic!("the run finished: {other:?}"),
    }
}

/// The process groups the run started: each instance's (its primary leads
/// it) and the balancer's.
fn groups(events: &[ServerEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::InstanceUp { pid, .. } | ServerEvent::BalancerUp { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect()
}

async fn all_gone(events: &[ServerEvent]) -> anyhow::Result<()> {
    let groups = groups(events);
    assert!(
        groups.len() >= 3,
        "two instances and a balancer: {groups:?}"
    );
    for group in groups {
        group_is_gone(group).await?;
    }
    Ok(())
}

#[tokio::test]
async fn both_balancers_spread_both_runtimes_and_their_logs_agree_with_the_client(
) -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let mut id = 0;
    for runtime in [Runtime::Node, Runtime::Rust] {
        for balancer in [BalancerKind::Nginx, BalancerKind::Haproxy] {
            id += 1;
            let events = run(
                &mut ws,
                id,
                Scaling {
                    runtime,
                    balancer,
                    ..Scaling::default()
                }
                .spec(),
            )
            .await?;
            let what = format!("{runtime:?} behind {balancer:?}");
            assert_eq!(outcome(&events), Outcome::Completed, "{what}: {events:#?}");
            let s = stats(&events);
            assert_eq!((s.completed, s.errors), (1_000, 0), "{what}");
            let per_instance: Vec<u64> = s.per_instance.iter().map(|r| r.iter().sum()).collect();
            assert_eq!(per_instance.iter().sum::<u64>(), 1_000, "{what}");
            // Round robin over two healthy instances: each gets its turn.
            for (i, n) in per_instance.iter().enumerate() {
                assert!(*n >= 300, "{what}: instance {i} got {n} of 1,000");
            }
            // The balancer logged every request once, on the instance the
            // client heard from.
            assert_eq!(s.balancer.requests, 1_000, "{what}");
            assert_eq!(s.balancer.attempts, per_instance, "{what}");
            assert_eq!(
                (s.balancer.failed_attempts, s.balancer.errors),
                (0, 0),
                "{what}"
            );
            assert!(events.iter().any(|e| matches!(
                e,
                ServerEvent::BalancerUp { balancer: b, .. } if *b == balancer
            )));
            assert!(events
                .iter()
                .any(|e| matches!(e, ServerEvent::ScalingTick { .. })));
            all_gone(&events).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn hashing_by_address_keeps_one_client_on_one_instance() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    for (id, balance) in [(1, Balance::Hash), (2, Balance::RoundRobin)] {
        // One request in flight: one client address.
        let events = run(
            &mut ws,
            id,
            Scaling {
                balance,
                requests: 300,
                concurrency: 1,
                ..Scaling::default()
            }
            .spec(),
        )
        .await?;
        let s = stats(&events);
        assert_eq!((s.completed, s.client_addresses), (300, 1));
        let served = s
            .per_instance
            .iter()
            .filter(|r| r.iter().sum::<u64>() > 0)
            .count();
        match balance {
            Balance::Hash => assert_eq!(served, 1, "sticky: {:?}", s.per_instance),
            _ => assert_eq!(served, 2, "round robin: {:?}", s.per_instance),
        }
        all_gone(&events).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_killed_instance_is_routed_around_and_brought_back() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    let faults = vec![
        TimedFault {
            after_requests: 200,
            fault: Fault::KillInstance { instance: 1 },
        },
        TimedFault {
            after_requests: 600,
            fault: Fault::RestartInstance { instance: 1 },
        },
    ];
    // With retries, nginx tries the other instance and the client never
    // knows; without, every attempt on the dead one is the client's 502.
    for (id, retries) in [(1, true), (2, false)] {
        let events = run(
            &mut ws,
            id,
            Scaling {
                retries,
                requests: 2_000,
                workload: Workload::HttpSleep { ms: 2 },
                faults: faults.clone(),
                ..Scaling::default()
            }
            .spec(),
        )
        .await?;
        let s = stats(&events);
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::InstanceDown { instance: 1, .. })));
        let starts = events
            .iter()
            .filter(|e| matches!(e, ServerEvent::InstanceUp { instance: 1, .. }))
            .count();
        assert_eq!(starts, 2, "instance 1 started, then came back");
        assert!(
            s.balancer.failed_attempts >= 1,
            "nginx learns of a dead instance by trying it: {:?}",
            s.balancer
        );
        if retries {
            assert_eq!((s.completed, s.errors), (2_000, 0), "{:?}", s.balancer);
            assert!(s.balancer.retried >= 1, "{:?}", s.balancer);
        } else {
            assert!(s.errors >= 1, "{:?}", s.balancer);
            // And bounded: the requests in flight on the instance as it
            // died, the one that found it dead, and one more each time
            // `fail_timeout` (2 s) let nginx try it again.
            let bound = 8 + 1 + 1 + s.duration_us / 2_000_000;
            assert!(
                s.errors <= bound,
                "{} failures, at most {bound}: {:?}",
                s.errors,
                s.balancer
            );
            assert_eq!(s.completed + s.errors, 2_000);
            assert_eq!(s.errors, s.balancer.errors, "each failure is nginx's 502");
        }
        all_gone(&events).await?;
    }
    Ok(())
}

#[tokio::test]
async fn killing_the_balancer_stops_everything_and_faults_are_checked() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let (mut ws, _) = WsClient::connect(&app.ws_url()).await?;
    // A live fault for a run that is not a scaling run, and one out of
    // range, are refused by name; the connection stays usable.
    ws.send(&ClientMessage::Fault {
        id: 9,
        fault: Fault::KillBalancer,
    })
    .await?;
    match ws.next().await? {
        ServerEvent::Error { code, field, .. } => {
            assert_eq!(
                (code, field.as_deref()),
                (ErrorCode::UnknownRun, Some("id"))
            )
        }
        other => panic!("{other:?}"),
    }
    ws.send(&ClientMessage::Start {
        id: 1,
        spec: Scaling {
            requests: 20_000,
            workload: Workload::HttpSleep { ms: 5 },
            ..Scaling::default()
        }
        .spec(),
    })
    .await?;
    let mut events = ws
        .until(|e| matches!(e, ServerEvent::BalancerUp { .. }))
        .await?;
    ws.send(&ClientMessage::Fault {
        id: 1,
        fault: Fault::KillInstance { instance: 2 },
    })
    .await?;
    events.extend(ws.until(|e| matches!(e, ServerEvent::Error { .. })).await?);
    match events.last() {
        Some(ServerEvent::Error { field, message, .. }) => {
            assert_eq!(field.as_deref(), Some("fault.instance"));
            assert!(message.contains("between 0 and 1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    ws.send(&ClientMessage::Fault {
        id: 1,
        fault: Fault::KillBalancer,
    })
    .await?;
    events.extend(
        ws.until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await?,
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::BalancerDown { .. })));
    let s = stats(&events);
    // Everything after the kill failed: nothing else stands in front.
    assert!(s.errors >= 1 && s.completed < 20_000, "{s:?}");
    assert_eq!(s.completed + s.errors, 20_000);
    all_gone(&events).await?;
    Ok(())
}
