//! The compare page's figures end to end: the real binary measures every
//! model on first request, serves the same pass to everyone after, renders
//! it into the page's HTML, and leaves no process behind.

use anyhow::Result;
use protocol::{Calibration, Figure, ModelFigures, ModelKind, Runtime};
use spawnlab_tests::{children_of, eventually, http_get, http_post_form, ServerProcess};
use std::time::Duration;

fn model(c: &Calibration, kind: ModelKind, runtime: Runtime) -> &ModelFigures {
    c.models
        .iter()
        .find(|m| m.model == kind && m.runtime == runtime)
        .unwrap_or_else(|| panic!("no {kind:?} column on {runtime:?} in {c:?}"))
}

fn positive(f: &Figure) -> f64 {
    match f.value {
        Some(v) if v > 0.0 => v,
        _ => panic!("expected a measured, positive figure: {f:?}"),
    }
}

#[tokio::test]
async fn every_model_is_measured_once_and_the_page_shows_that_pass() -> Result<()> {
    let server = ServerProcess::start(&[])?;
    let (status, body) = http_post_form(server.addr, "/api/calibration", "rerun=false").await?;
    assert_eq!(status, 200, "{body}");
    let first: Calibration = serde_json::from_str(&body)?;

    // Every model on each runtime, Node.js first.
    let columns: Vec<(Runtime, ModelKind)> =
        first.models.iter().map(|m| (m.runtime, m.model)).collect();
    let expected: Vec<(Runtime, ModelKind)> = Runtime::ALL
        .into_iter()
        .flat_map(|r| ModelKind::ALL.into_iter().map(move |m| (r, m)))
        .collect();
    assert_eq!(columns, expected);
    assert!(first.host.logical_cores >= 1);
    for m in &first.models {
        for f in [
            &m.start,
            &m.round_trip,
            &m.memory,
            &m.job_wall,
            &m.speedup,
            &m.hello_rps,
        ] {
            assert!(
                !f.how.is_empty(),
                "{:?}: every cell says how: {f:?}",
                m.model
            );
            // Every measured figure names its runtime.
            if f.value.is_some() {
                let name = match m.runtime {
                    Runtime::Node => "Node.js v",
                    Runtime::Rust => "Rust engine",
                };
                assert!(f.how.starts_with(name), "{:?}: {}", m.runtime, f.how);
            }
        }
    }
    for runtime in Runtime::ALL {
        // Every model with workers measured what a worker costs.
        for kind in [
            ModelKind::Threads,
            ModelKind::ChildProcess,
            ModelKind::Cluster,
        ] {
            let m = model(&first, kind, runtime);
            positive(&m.start);
            // Clients reach a cluster over HTTP: no IPC round trip there.
            if kind == ModelKind::Cluster {
                assert_eq!(
                    m.round_trip.value, None,
                    "{runtime:?}: {}",
                    m.round_trip.how
                );
            } else {
                positive(&m.round_trip);
            }
            positive(&m.memory);
            // Two workers against one, measured in the same pass. How large it
            // is depends on what else the machine is doing (other tests, for
            // one): that is for the benchmarks, not for a test.
            positive(&m.speedup);
        }
        // The one job ran on the loop, on threads and in child processes.
        for kind in [
            ModelKind::MainThread,
            ModelKind::Threads,
            ModelKind::ChildProcess,
        ] {
            positive(&model(&first, kind, runtime).job_wall);
        }
        // The loop alone has nothing to start, message or add.
        let main = model(&first, ModelKind::MainThread, runtime);
        assert_eq!((main.start.value, main.memory.value), (None, None));
        // Hello over HTTP: one process alone, and the cluster.
        positive(&main.hello_rps);
        positive(&model(&first, ModelKind::Cluster, runtime).hello_rps);
        // The break-even sweep: every job size, two workers against one.
        let sweep: Vec<u64> = first
            .break_even
            .iter()
            .filter(|p| p.runtime == runtime)
            .map(|p| p.below)
            .collect();
        assert_eq!(sweep.len(), 5, "{runtime:?}: {sweep:?}");
        assert!(first
            .break_even
            .iter()
            .filter(|p| p.runtime == runtime)
            .all(|p| p.speedup().is_some_and(|s| s > 0.0)));
    }

    // Cached: a second visitor gets the same pass, and so does a re-run
    // asked for within the five minutes.
    for form in ["rerun=false", "", "rerun=true"] {
        let (status, body) = http_post_form(server.addr, "/api/calibration", form).await?;
        assert_eq!(status, 200, "{form}: {body}");
        let again: Calibration = serde_json::from_str(&body)?;
        assert_eq!(again, first, "{form}");
    }

    // With JavaScript off, the page's HTML carries that same pass.
    let (status, html) = http_get(server.addr, "/compare").await?;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("data-finished=\"{}\"", first.finished_unix_s)),
        "{html}"
    );
    for row in [
        "Start cost",
        "Small-message round trip",
        "Memory per worker",
    ] {
        assert!(html.contains(row), "{row} missing");
    }
    assert!(html.contains(&first.host.cpu_model));

    // Everything the pass started is gone.
    eventually(
        Duration::from_secs(5),
        "the calibration's processes to end",
        || async { Ok(children_of(server.pid()).is_empty().then_some(())) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_rerun_value_is_refused_by_name() -> Result<()> {
    let server = ServerProcess::start(&[])?;
    let (status, body) = http_post_form(server.addr, "/api/calibration", "rerun=maybe").await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("rerun must be true or false, got \"maybe\""),
        "{body}"
    );
    // Nothing was measured for a refused request, and the server still
    // answers.
    assert!(children_of(server.pid()).is_empty());
    let (status, _) = http_get(server.addr, "/healthz").await?;
    assert_eq!(status, 200);
    Ok(())
}
