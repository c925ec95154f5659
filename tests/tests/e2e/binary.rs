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

/// Start the binary with `args` (and `env`), expecting it to refuse: it
/// must exit by itself, before listening, with status 2 and one line on
/// stderr. Returns that line.
fn refused(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(spawnlab_tests::server_binary())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("LEPTOS_SITE_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("spawnlab {args:?} did not exit: it started with a bad setting");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        !stdout.contains("listening"),
        "{args:?} listened before refusing: {stdout}"
    );
    Ok(stderr)
}

#[test]
fn settings_that_cannot_work_stop_it_before_it_listens() -> anyhow::Result<()> {
    let site = spawnlab_tests::site_dir();
    let site = site.to_str().expect("a UTF-8 path");
    let free = ["--addr", "127.0.0.1:0", "--site-dir", site];
    for (flag, value, range) in [
        ("--max-runs", "0", "1..=1024"),
        ("--max-workers", "0", "1..=256"),
        ("--max-workers", "100000", "1..=256"),
        ("--run-deadline-secs", "0", "1..=3600"),
        ("--max-memory-mib", "1", "64..=1048576"),
    ] {
        let mut args = free.to_vec();
        args.extend([flag, value]);
        let err = refused(&args, &[])?;
        assert!(err.contains(flag) && err.contains(range), "{err}");
    }
    // The same bound, from the environment.
    let err = refused(&free, &[("SPAWNLAB_MAX_LIVE_WORKERS", "0")])?;
    assert!(err.contains("--max-live-workers"), "{err}");

    let err = refused(
        &["--addr", "127.0.0.1:0", "--site-dir", "/nonexistent/site"],
        &[],
    )?;
    assert!(
        err.contains("/nonexistent/site")
            && err.contains("--site-dir")
            && err.contains("cargo leptos build"),
        "{err}"
    );

    // An address another process holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let err = refused(&["--addr", &addr, "--site-dir", site], &[])?;
    assert!(
        err.contains(&addr) && err.contains("--addr") && err.contains("in use"),
        "{err}"
    );
    Ok(())
}

/// The status and body of a WebSocket upgrade the server refused.
async fn refused_upgrade(url: &str) -> anyhow::Result<(u16, String)> {
    use tokio_tungstenite::tungstenite::Error;
    match tokio_tungstenite::connect_async(url).await {
        Err(Error::Http(response)) => Ok((
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(other) => anyhow::bail!("the upgrade failed otherwise: {other}"),
        Ok(_) => anyhow::bail!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_sockets() -> anyhow::Result<()> {
    let server = ServerProcess::start(&["--max-sockets-per-address", "2"])?;
    let url = server.ws_url();
    let (first, _) = WsClient::connect(&url).await?;
    let (mut second, _) = WsClient::connect(&url).await?;

    // The third is refused before the upgrade, with a sentence saying why.
    let (status, body) = refused_upgrade(&url).await?;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("127.0.0.1") && body.contains("--max-sockets-per-address"),
        "{body}"
    );

    // The sockets already open are not affected ...
    second
        .send_text(r#"{"type":"start","id":1,"spec":{"runtime":"rust","model":{"kind":"main_thread"},"workload":{"kind":"primes","below":1000},"workers":1}}"#)
        .await?;
    let events = second
        .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
        .await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Completed);

    // ... and a closed one frees its place.
    drop(first);
    spawnlab_tests::eventually(Duration::from_secs(5), "a freed place", || {
        let url = url.clone();
        async move { Ok(WsClient::connect(&url).await.ok().map(drop)) }
    })
    .await?;

    // A learner token that is not one is refused by name.
    let (status, body) = refused_upgrade(&format!("{url}?learner=short")).await?;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with("learner must be 8 to 64"), "{body}");
    Ok(())
}
