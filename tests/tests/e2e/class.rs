//! A class on the site at once: every learner opens a lab and presses Run
//! within the same second, on the shipped defaults and the site's default
//! runtime (Node.js), the four models mixed. Every learner gets a run that
//! completes; those who wait hear their place move up, with an estimate
//! once a run has finished; pages keep being served meanwhile.
//!
//! `make test` runs a class of 20; `make class` runs the full 100 and prints
//! the same table. Nothing here asserts on time: the machine is shared, so
//! the figures are printed, not judged.

use protocol::{ClientMessage, ModelKind, Outcome, Runtime, ServerEvent};
use spawnlab_tests::{children_of, eventually, http_get, ServerProcess, WsClient};
use std::time::{Duration, Instant};

/// Learners in `make test`'s class; `SPAWNLAB_CLASS_SIZE` overrides it.
const CLASS: usize = 20;

/// What one learner saw.
struct Seen {
    model: ModelKind,
    /// From pressing Run to `accepted`, and to `run_finished`.
    waited: Duration,
    took: Duration,
    events: Vec<ServerEvent>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_pressing_run_at_once_all_get_their_runs() -> anyhow::Result<()> {
    let class: usize = std::env::var("SPAWNLAB_CLASS_SIZE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CLASS);
    // The shipped defaults: no flags but where to listen and what to serve.
    let server = ServerProcess::start(&[])?;

    // Everyone opens the page first (one browser each, its own token) ...
    let mut sockets = Vec::new();
    for i in 0..class {
        let url = format!("{}?learner=class-learner-{i:04}", server.ws_url());
        let (ws, hello) = WsClient::connect(&url).await?;
        assert!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        sockets.push(ws);
    }
    // ... then presses Run, all within one second.
    let spread = Duration::from_millis(1_000 / class.max(1) as u64);
    let began = Instant::now();
    let mut learners = Vec::new();
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let model = ModelKind::ALL[i % ModelKind::ALL.len()];
        learners.push(tokio::spawn(async move {
            tokio::time::sleep(spread * i as u32).await;
            let pressed = Instant::now();
            let spec = model.lab_default(Runtime::Node);
            ws.send(&ClientMessage::Start { id: 1, spec }).await?;
            let mut accepted = None;
            let mut events = Vec::new();
            loop {
                let ev = ws.next().await?;
                if matches!(ev, ServerEvent::Accepted { .. }) {
                    accepted = Some(pressed.elapsed());
                }
                let last = matches!(
                    ev,
                    ServerEvent::RunFinished { .. } | ServerEvent::Error { .. }
                );
                events.push(ev);
                if last {
                    break;
                }
            }
            let waited = accepted.ok_or_else(|| {
                anyhow::anyhow!(
                    "learner {i} ({}) was never accepted: {events:?}",
                    model.name()
                )
            })?;
            anyhow::Ok(Seen {
                model,
                waited,
                took: pressed.elapsed(),
                events,
            })
        }));
    }

    // Pages are fetched all the while, as learners keep reading.
    let mut pages = Vec::new();
    while learners.iter().any(|l| !l.is_finished()) {
        let t = Instant::now();
        let page = ["/", "/cluster", "/child-process"][pages.len() % 3];
        let (status, _) = http_get(server.addr, page).await?;
        assert_eq!(status, 200, "a page while the class runs");
        pages.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drained = began.elapsed();

    let mut seen = Vec::new();
    for l in learners {
        seen.push(l.await??);
    }
    let mut shared = 0;
    for (i, s) in seen.iter().enumerate() {
        let last = s.events.last().expect("at least the last event");
        let ServerEvent::RunFinished { summary, .. } = last else {
            panic!("learner {i} ({}) got {last:?}", s.model.name());
        };
        assert_eq!(
            summary.outcome,
            Outcome::Completed,
            "learner {i} ({}): {:?}",
            s.model.name(),
            s.events
        );
        shared = shared.max(
            summary
                .shared_with
                .expect("a run that ran says who shared it"),
        );
        // Distinct learners are served in arrival order: a waiting place
        // only ever moves up.
        let places: Vec<u32> = s
            .events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Queued { position, .. } => Some(*position),
                _ => None,
            })
            .collect();
        assert!(
            places.windows(2).all(|w| w[1] < w[0]),
            "learner {i}'s place went back: {places:?}"
        );
    }
    let estimates = seen
        .iter()
        .flat_map(|s| &s.events)
        .filter(|e| {
            matches!(
                e,
                ServerEvent::Queued {
                    wait_ms: Some(_),
                    ..
                }
            )
        })
        .count();
    let queued = seen
        .iter()
        .filter(|s| {
            s.events
                .iter()
                .any(|e| matches!(e, ServerEvent::Queued { .. }))
        })
        .count();
    // The shipped default runs one lab per core at once: a class of more
    // than twice that must have queued.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if class > 2 * cores {
        assert!(
            queued > 0,
            "a class of {class} on this server waited in line"
        );
        assert!(estimates > 0, "waiting learners heard an estimate");
    }

    let mut waited: Vec<Duration> = seen.iter().map(|s| s.waited).collect();
    let mut took: Vec<Duration> = seen.iter().map(|s| s.took - s.waited).collect();
    waited.sort();
    took.sort();
    pages.sort();
    let pct = |v: &[Duration], p: usize| v[(v.len() - 1) * p / 100];
    println!("a class of {class} pressing Run within one second (Node.js, the four models in turn, shipped defaults):");
    println!(
        "  every run completed; the last finished {:.1} s after the first press",
        drained.as_secs_f64()
    );
    println!(
        "  {queued} waited in line; wait p50 {:.2} s, p90 {:.2} s, max {:.2} s; {estimates} estimates sent",
        pct(&waited, 50).as_secs_f64(),
        pct(&waited, 90).as_secs_f64(),
        pct(&waited, 100).as_secs_f64()
    );
    println!(
        "  a run, accepted to finished: p50 {:.2} s, max {:.2} s; at most {shared} other runs shared the CPU with one",
        pct(&took, 50).as_secs_f64(),
        pct(&took, 100).as_secs_f64()
    );
    if !pages.is_empty() {
        println!(
            "  {} page loads meanwhile: p50 {:.0} ms, max {:.0} ms",
            pages.len(),
            pct(&pages, 50).as_secs_f64() * 1e3,
            pct(&pages, 100).as_secs_f64() * 1e3
        );
    }

    // Nothing is left running once the class has gone.
    eventually(
        Duration::from_secs(10),
        "the runs' processes to go",
        || async { Ok(children_of(server.pid()).is_empty().then_some(())) },
    )
    .await?;
    Ok(())
}
