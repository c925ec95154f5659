//! Hosting spawnlab on several instances, as `deploy/` ships it: the
//! balancers' own checkers accept the shipped files, and real instances (the
//! built binary) behind a real nginx running `deploy/nginx/spawnlab.conf`
//! serve pages and labs, route around an instance killed outright, drain an
//! instance told to stop (behind HAProxy running `deploy/haproxy/spawnlab.cfg`
//! too), and keep an idle learner's socket open past the proxy's idle
//! timeout; `deploy/run-local.sh` starts and stops it all.
//!
//! Everything runs on loopback ports that were free, from a temporary folder;
//! every process is stopped on every path (drop guards), and each test checks
//! at its end that the pids it started are gone.
//!
//! Which instance serves a lab socket is read from the run itself: a Rust
//! threads run reports its workers with the server's own pid. Learners are
//! told apart by their `?learner=` token (what the shipped config hashes on)
//! and, where the per-address cap is checked, by their source address
//! (anything in 127.0.0.0/8), so no test depends on where a hash happens to
//! land.

use nix::sys::signal::Signal;
use protocol::{ClientMessage, ErrorCode, ModelSpec, Outcome, RunSpec, ServerEvent, WorkResult};
use protocol::{Runtime, Workload};
use spawnlab_tests::deploy::{
    deploy_dir, free_port, nginx_check, program, self_signed, upgrade_from, Haproxy, Nginx,
    NginxSite, TempDir,
};
use spawnlab_tests::procs::signal;
use spawnlab_tests::{eventually, http_get, http_get_with, is_running, ServerProcess, WsClient};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

fn threads(workload: Workload, workers: u32) -> RunSpec {
    RunSpec {
        runtime: Runtime::Rust,
        model: ModelSpec::Threads {
            strategy: Default::default(),
            sharing: Default::default(),
        },
        workload,
        workers,
    }
}

/// Start a threads run and wait for its first worker: the pid of the
/// instance that runs it.
async fn start_on(ws: &mut WsClient, id: u64, workload: Workload) -> anyhow::Result<u32> {
    ws.send(&ClientMessage::Start {
        id,
        spec: threads(workload, 2),
    })
    .await?;
    let events = ws
        .until(|e| {
            matches!(
                e,
                ServerEvent::WorkerSpawned { .. } | ServerEvent::RunFinished { .. }
            )
        })
        .await?;
    match events.last() {
        Some(ServerEvent::WorkerSpawned { pid, .. }) => Ok(*pid),
        other => anyhow::bail!("the run ended before a worker started: {other:?} after {events:?}"),
    }
}

/// The run's end: its outcome and result.
async fn finish(ws: &mut WsClient) -> anyhow::Result<(Outcome, WorkResult)> {
    let events = ws
        .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
        .await?;
    let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
        unreachable!()
    };
    Ok((summary.outcome, summary.result.clone()))
}

/// Primes below 100,000 on two threads, to the end: the instance that ran it.
async fn run_primes(ws: &mut WsClient, id: u64) -> anyhow::Result<u32> {
    let pid = start_on(ws, id, Workload::Primes { below: 100_000 }).await?;
    let (outcome, result) = finish(ws).await?;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(result, WorkResult::Primes { count: 9_592 });
    Ok(pid)
}

/// Wait up to `within` for `pid` to exit by itself (it stays a zombie,
/// unreaped, until its `ServerProcess` collects it).
async fn exited(pid: u32, within: Duration) -> anyhow::Result<()> {
    eventually(within, &format!("process {pid} to exit"), || async {
        Ok((!is_running(pid)).then_some(()))
    })
    .await
}

/// Every pid in `pids` gone (or a zombie its parent will reap).
fn all_gone(pids: &[u32]) {
    let left: Vec<u32> = pids.iter().copied().filter(|p| is_running(*p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

fn instance(extra: &[&str]) -> anyhow::Result<ServerProcess> {
    let mut args = vec!["--trusted-proxy", "127.0.0.1"];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}

/// `nginx -t` and `haproxy -c` accept the shipped files, with their TLS
/// parts pointed at a self-signed certificate made here by `openssl` (or
/// without TLS where `openssl` is missing: said on stderr);
/// `systemd-analyze verify` accepts the unit (where it is installed, with
/// ExecStart pointed at the built binary); `bash -n` the script.
#[test]
fn the_shipped_files_pass_their_own_checkers() -> anyhow::Result<()> {
    let dir = TempDir::new("deploy-check")?;
    let tls = self_signed(dir.path())?;
    if tls.is_none() {
        eprintln!("openssl is not installed: checking the configurations without their TLS parts");
    }

    let site = NginxSite {
        tls: tls.clone(),
        ..NginxSite::plain(&[free_port(), free_port(), free_port()])
    };
    let out = nginx_check(&site)?;
    assert!(out.contains("test is successful"), "{out}");

    let haproxy = program("haproxy")
        .ok_or_else(|| anyhow::anyhow!("HAProxy is not installed: `make balancers` installs it"))?;
    let shipped = std::fs::read_to_string(deploy_dir().join("haproxy/spawnlab.cfg"))?;
    let pem = "/etc/haproxy/certs/spawnlab.pem";
    assert!(shipped.contains(pem), "the placeholder certificate moved");
    let config = match &tls {
        Some((cert, key)) => {
            let both = dir.path().join("haproxy.pem");
            let text = std::fs::read_to_string(cert)? + &std::fs::read_to_string(key)?;
            std::fs::write(&both, text)?;
            shipped.replace(pem, &both.to_string_lossy())
        }
        None => shipped.replace(&format!(" ssl crt {pem} alpn h2,http/1.1"), ""),
    };
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, config)?;
    let out = Command::new(&haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "haproxy -c: {text}");
    assert!(text.contains("Configuration file is valid"), "{text}");
    assert!(!text.contains("WARNING"), "haproxy -c warns: {text}");

    match program("systemd-analyze") {
        Some(analyze) => {
            let unit = std::fs::read_to_string(deploy_dir().join("systemd/spawnlab@.service"))?;
            let exec = "ExecStart=/opt/spawnlab/spawnlab";
            assert!(unit.contains(exec), "the unit's ExecStart moved");
            let binary = spawnlab_tests::server_binary();
            let unit = unit.replace(exec, &format!("ExecStart={}", binary.display()));
            let path = dir.path().join("spawnlab@3001.service");
            std::fs::write(&path, unit)?;
            let out = Command::new(analyze).arg("verify").arg(&path).output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            // Only what it says of this unit: a distribution's own units
            // may draw remarks of their own.
            assert!(
                out.status.success() && !text.contains("spawnlab@"),
                "systemd-analyze verify: {text}"
            );
        }
        None => eprintln!("systemd-analyze is not installed: the unit is not checked"),
    }

    let out = Command::new("bash")
        .arg("-n")
        .arg(deploy_dir().join("run-local.sh"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn two_instances_behind_nginx_serve_and_survive_one_killed() -> anyhow::Result<()> {
    // A per-address cap of 3, to see the learner's own address reach it.
    let mut a = instance(&["--max-sockets-per-address", "3"])?;
    let mut b = instance(&["--max-sockets-per-address", "3"])?;
    let mut nginx = Nginx::start(NginxSite::plain(&[a.addr.port(), b.addr.port()]))?;
    let front = nginx.addr();
    let mut pids = vec![a.pid(), b.pid()];
    pids.extend(nginx.pids());

    // Pages through the proxy, the bundle from disk (no instance asked).
    // (/cluster: the threads page waits for the server's measuring pass,
    // half a minute on a fresh instance.)
    let (status, html) = http_get(front, "/cluster").await?;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Cluster</h1>"), "{html}");
    let cache = |headers: &[(String, String)]| {
        headers
            .iter()
            .find(|(n, _)| n == "cache-control")
            .map(|(_, v)| v.clone())
    };
    // The page names the stylesheet by its version: nginx keeps that URL
    // for a year, and revalidates the bare one.
    let at = html
        .find("/pkg/spawnlab.css?v=")
        .expect("a versioned stylesheet URL");
    let versioned = &html[at..at + "/pkg/spawnlab.css?v=".len() + 16];
    let (status, headers, css) = http_get_with(front, versioned, &[]).await?;
    assert_eq!(status, 200);
    assert!(!css.is_empty());
    assert_eq!(
        cache(&headers).as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let (status, headers, _) = http_get_with(front, "/pkg/spawnlab.css", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(cache(&headers).as_deref(), Some("no-cache"));
    let log = nginx.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("GET /pkg/spawnlab.css") && l.ends_with("upstream=-")),
        "nginx serves the bundle itself: {log}"
    );
    let (status, body) = http_get(front, "/readyz").await?;
    assert_eq!((status, body.trim()), (200, "ready"));
    // Plain HTTP redirects to HTTPS.
    let (status, headers, _) = http_get_with(nginx.redirect_addr(), "/cluster", &[]).await?;
    assert_eq!(status, 301);
    let location = headers.iter().find(|(n, _)| n == "location");
    assert!(
        location.is_some_and(|(_, v)| v.starts_with("https://") && v.ends_with("/cluster")),
        "{headers:?}"
    );

    // Requests without a learner token are spread (an empty hash key is
    // round-robin); with one, they all go to one instance.
    for path in ["/healthz", "/healthz?learner=sticky-0001"] {
        for _ in 0..4 {
            assert_eq!(http_get(front, path).await?.0, 200);
        }
        let log = nginx.access_log();
        let upstreams: std::collections::BTreeSet<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("GET {path} ")))
            .filter_map(|l| l.rsplit_once("upstream=").map(|(_, u)| u))
            .collect();
        let expected = if path.contains("learner") { 1 } else { 2 };
        assert_eq!(upstreams.len(), expected, "{path}: {upstreams:?}");
    }

    // A learner's socket through the proxy: hello, then a lab to the end.
    let learner = "learner-one-0001";
    let (mut ws, hello) = WsClient::connect(&nginx.ws_url(learner)).await?;
    assert!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
    let home = run_primes(&mut ws, 1).await?;
    assert!(
        [a.pid(), b.pid()].contains(&home),
        "the run's workers are an instance's threads"
    );

    // The Origin check sees the page's host through X-Forwarded-Host.
    let path = format!("/ws?learner={learner}");
    let here = Ipv4Addr::new(127, 0, 0, 3);
    let ours = format!("http://{front}");
    let (_, hello) = upgrade_from(here, front, &path, &[("origin", &ours)])
        .await?
        .open()?;
    assert!(matches!(hello, ServerEvent::Hello { .. }));
    let (status, body) = upgrade_from(here, front, &path, &[("origin", "http://evil.example")])
        .await?
        .refused()?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http://evil.example"), "{body}");

    // The per-address cap counts the learner's address (X-Forwarded-For,
    // believed from the trusted proxy), not nginx's.
    let crowd = Ipv4Addr::new(127, 0, 0, 7);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            upgrade_from(crowd, front, "/ws?learner=crowd-0007", &[])
                .await?
                .open()?,
        );
    }
    let (status, body) = upgrade_from(crowd, front, "/ws?learner=crowd-0007", &[])
        .await?
        .refused()?;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("127.0.0.7 already has 3"), "{body}");
    let other = Ipv4Addr::new(127, 0, 0, 8);
    let (_, hello) = upgrade_from(other, front, "/ws?learner=crowd-0007", &[])
        .await?
        .open()?;
    assert!(
        matches!(hello, ServerEvent::Hello { .. }),
        "another address"
    );
    drop(held);

    // The learner's instance is killed outright: their socket closes (the
    // server had no chance to say anything) ...
    let (dead, survivor) = if home == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let killed = Instant::now();
    dead.kill_hard()?;
    assert!(ws.closed().await, "the socket closes with its instance");
    eprintln!("socket closed {:?} after SIGKILL", killed.elapsed());

    // ... and the same learner reconnects. Their token still hashes to the
    // dead instance: nginx's connection is refused, and proxy_next_upstream
    // sends the upgrade to the survivor, which runs the next lab.
    let (mut ws, hello) = WsClient::connect(&nginx.ws_url(learner)).await?;
    assert!(matches!(hello, ServerEvent::Hello { .. }));
    assert_eq!(run_primes(&mut ws, 2).await?, survivor.pid());
    // Everybody else too, pages and labs.
    for n in 0..4 {
        let (status, _) = http_get(front, "/cluster").await?;
        assert_eq!(status, 200);
        let token = format!("learner-new-000{n}");
        let (mut ws, _) = WsClient::connect(&nginx.ws_url(&token)).await?;
        let pid = start_on(&mut ws, 1, Workload::Primes { below: 1_000 }).await?;
        assert_eq!(pid, survivor.pid());
        assert_eq!(finish(&mut ws).await?.0, Outcome::Completed);
    }
    drop(ws);

    // Everything stops, and nothing is left.
    nginx.stop()?;
    let status = survivor.terminate(Duration::from_secs(10))?;
    assert!(status.success());
    all_gone(&pids);
    Ok(())
}

#[tokio::test]
async fn sigterm_drains_an_instance_behind_nginx() -> anyhow::Result<()> {
    let drain = ["--drain-secs", "20"];
    let mut a = instance(&drain)?;
    let mut b = instance(&drain)?;
    let mut nginx = Nginx::start(NginxSite::plain(&[a.addr.port(), b.addr.port()]))?;
    let mut pids = vec![a.pid(), b.pid()];
    pids.extend(nginx.pids());

    // A learner with a lab of 3 s running, through the proxy.
    let learner = "learner-busy-0001";
    let (mut busy, _) = WsClient::connect(&nginx.ws_url(learner)).await?;
    let home = start_on(&mut busy, 1, Workload::Sleep { ms: 3_000 }).await?;
    let started = Instant::now();
    let (draining, other) = if home == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // A learner on the same instance with nothing running.
    let (mut idle, _) = WsClient::connect(&draining.ws_url()).await?;

    signal(draining.pid() as i32, Signal::SIGTERM);
    let signalled = Instant::now();

    // Readiness fails at once, while the lab still runs; the other
    // instance stays ready.
    let addr = draining.addr;
    let body = eventually(
        Duration::from_secs(2),
        "/readyz to say draining",
        || async move {
            let (status, body) = http_get(addr, "/readyz").await?;
            Ok((status == 503).then_some(body))
        },
    )
    .await?;
    assert_eq!(body.trim(), "draining");
    let seen = started.elapsed();
    assert!(
        seen < Duration::from_millis(2_500),
        "/readyz said draining {seen:?} into a 3 s lab: it was still running"
    );
    let (status, body) = http_get(other.addr, "/readyz").await?;
    assert_eq!((status, body.trim()), (200, "ready"));

    // The busy learner, still connected, may not start another lab there:
    // refused by name, while the first one goes on.
    busy.send(&ClientMessage::Start {
        id: 2,
        spec: threads(Workload::Primes { below: 1_000 }, 1),
    })
    .await?;
    let before_refusal = busy
        .until(|e| matches!(e, ServerEvent::Error { run: Some(2), .. }))
        .await?;
    let Some(ServerEvent::Error { code, message, .. }) = before_refusal.last() else {
        unreachable!()
    };
    assert_eq!(*code, ErrorCode::ShuttingDown);
    assert!(message.contains("takes no new"), "{message}");
    let first_done = before_refusal
        .iter()
        .any(|e| matches!(e, ServerEvent::RunFinished { run: 1, .. }));
    assert!(!first_done, "the 3 s lab was still running");

    // A new socket straight to it is refused with a sentence ...
    let direct = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let (status, body) = upgrade_from(Ipv4Addr::LOCALHOST, direct, "/ws", &[])
        .await?
        .refused()?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("shutting down") && body.contains("reconnect"),
        "{body}"
    );
    // ... and through the proxy goes to the other instance, even for the
    // learner whose token hashes to the draining one (a 503 is
    // proxy_next_upstream's cue).
    let (mut again, _) = WsClient::connect(&nginx.ws_url(learner)).await?;
    let pid = start_on(&mut again, 7, Workload::Primes { below: 1_000 }).await?;
    assert_eq!(pid, other.pid());
    assert_eq!(finish(&mut again).await?.0, Outcome::Completed);

    // The idle learner is told to reconnect, and their socket closes.
    let events = idle
        .until(|e| matches!(e, ServerEvent::Error { .. }))
        .await?;
    let Some(ServerEvent::Error { code, message, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(*code, ErrorCode::ShuttingDown);
    assert!(message.contains("reconnects"), "{message}");
    assert!(idle.closed().await);

    // The busy learner's lab runs to its end, not cancelled; then they are
    // told, and their socket closes.
    let (outcome, _) = finish(&mut busy).await?;
    let lab_ended = Instant::now();
    assert_eq!(outcome, Outcome::Completed, "the lab finished");
    let ServerEvent::Error { code, message, .. } = busy.next().await? else {
        panic!("a notice after the run");
    };
    assert_eq!(code, ErrorCode::ShuttingDown);
    assert!(message.contains("reconnects"), "{message}");
    assert!(busy.closed().await);

    // The instance exits once its last lab has ended, long before the bound.
    exited(draining.pid(), Duration::from_secs(15)).await?;
    let (took, after_lab) = (signalled.elapsed(), lab_ended.elapsed());
    eprintln!(
        "drained and exited {took:?} after SIGTERM, {after_lab:?} after its last lab ended \
         (bound 20 s)"
    );
    assert!(after_lab < Duration::from_secs(2), "{after_lab:?}");
    let status = draining.terminate(Duration::from_secs(1))?;
    assert!(status.success(), "{status}");

    nginx.stop()?;
    assert!(other.terminate(Duration::from_secs(10))?.success());
    all_gone(&pids);
    Ok(())
}

/// The same drain behind the shipped HAProxy configuration: its retry on a
/// 503 sends a new socket to the other instance, and the tunnel of the
/// learner whose lab is running stays open until the lab has ended (its
/// health check, failing on /readyz, takes the instance out of rotation
/// without cutting the learners already on it).
#[tokio::test]
async fn sigterm_drains_an_instance_behind_haproxy() -> anyhow::Result<()> {
    let drain = ["--drain-secs", "20"];
    let mut a = instance(&drain)?;
    let mut b = instance(&drain)?;
    let mut haproxy = Haproxy::start(&[a.addr.port(), b.addr.port()])?;
    let pids = vec![a.pid(), b.pid(), haproxy.pid()];

    let learner = "learner-busy-0002";
    let (mut busy, hello) = WsClient::connect(&haproxy.ws_url(learner)).await?;
    assert!(matches!(hello, ServerEvent::Hello { .. }));
    let home = start_on(&mut busy, 1, Workload::Sleep { ms: 3_000 }).await?;
    let (draining, other) = if home == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    signal(draining.pid() as i32, Signal::SIGTERM);
    let signalled = Instant::now();
    let addr = draining.addr;
    eventually(
        Duration::from_secs(2),
        "/readyz to say draining",
        || async move { Ok((http_get(addr, "/readyz").await?.0 == 503).then_some(())) },
    )
    .await?;

    // The learner's token hashes to the draining instance: HAProxy's
    // `retry-on 503` (or, after two failed checks, the instance being out)
    // sends the new socket to the other.
    let (mut again, _) = WsClient::connect(&haproxy.ws_url(learner)).await?;
    let pid = start_on(&mut again, 7, Workload::Primes { below: 1_000 }).await?;
    assert_eq!(pid, other.pid());
    assert_eq!(finish(&mut again).await?.0, Outcome::Completed);

    let (outcome, _) = finish(&mut busy).await?;
    assert_eq!(
        outcome,
        Outcome::Completed,
        "the lab finished through HAProxy"
    );
    let ServerEvent::Error { code, .. } = busy.next().await? else {
        panic!("a notice after the run");
    };
    assert_eq!(code, ErrorCode::ShuttingDown);
    assert!(busy.closed().await);
    exited(draining.pid(), Duration::from_secs(15)).await?;
    eprintln!(
        "behind HAProxy: drained and exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(draining.terminate(Duration::from_secs(1))?.success());

    haproxy.stop()?;
    assert!(other.terminate(Duration::from_secs(10))?.success());
    all_gone(&pids);
    Ok(())
}

#[tokio::test]
async fn a_drain_is_bounded_and_a_second_signal_cuts_it_short() -> anyhow::Result<()> {
    let mut bounded = instance(&["--drain-secs", "1"])?;
    let mut hurried = instance(&["--drain-secs", "60"])?;
    let pids = vec![bounded.pid(), hurried.pid()];
    let (mut one, _) = WsClient::connect(&bounded.ws_url()).await?;
    let (mut two, _) = WsClient::connect(&hurried.ws_url()).await?;
    start_on(&mut one, 1, Workload::Sleep { ms: 10_000 }).await?;
    start_on(&mut two, 1, Workload::Sleep { ms: 10_000 }).await?;

    let signalled = Instant::now();
    signal(bounded.pid() as i32, Signal::SIGTERM);
    signal(hurried.pid() as i32, Signal::SIGTERM);
    for server in [&bounded, &hurried] {
        let addr = server.addr;
        eventually(Duration::from_secs(2), "draining", || async move {
            Ok((http_get(addr, "/readyz").await?.0 == 503).then_some(()))
        })
        .await?;
    }
    signal(hurried.pid() as i32, Signal::SIGTERM);

    for (ws, what) in [
        (&mut one, "after its 1 s bound"),
        (&mut two, "on a second signal"),
    ] {
        let events = ws
            .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await?;
        assert!(
            events.iter().any(|e| matches!(
                e,
                ServerEvent::Error {
                    code: ErrorCode::ShuttingDown,
                    ..
                }
            )),
            "told, {what}: {events:?}"
        );
        let Some(ServerEvent::RunFinished { summary, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(summary.outcome, Outcome::Cancelled, "stopped {what}");
        assert!(ws.closed().await);
    }
    for server in [&mut bounded, &mut hurried] {
        exited(server.pid(), Duration::from_secs(10)).await?;
        assert!(server.terminate(Duration::from_secs(1))?.success());
    }
    let took = signalled.elapsed();
    eprintln!("both stopped {took:?} after the first SIGTERM (10 s labs)");
    assert!(took < Duration::from_secs(8), "{took:?}");
    all_gone(&pids);
    Ok(())
}

#[tokio::test]
async fn pings_keep_an_idle_socket_open_through_the_proxy() -> anyhow::Result<()> {
    // Both behind the shipped config with its socket timeout cut to 3 s:
    // one instance pings every second, the other at its default 20 s.
    let pinging = instance(&["--ws-ping-secs", "1"])?;
    let quiet = instance(&[])?;
    let short = |port| NginxSite {
        socket_timeout: Some("3s".into()),
        ..NginxSite::plain(&[port])
    };
    let mut to_pinging = Nginx::start(short(pinging.addr.port()))?;
    let mut to_quiet = Nginx::start(short(quiet.addr.port()))?;
    let mut pids = vec![pinging.pid(), quiet.pid()];
    pids.extend(to_pinging.pids());
    pids.extend(to_quiet.pids());

    let (mut kept, _) = WsClient::connect(&to_pinging.ws_url("learner-idle-0001")).await?;
    let (mut cut, _) = WsClient::connect(&to_quiet.ws_url("learner-idle-0002")).await?;
    let opened = Instant::now();
    // Reading all along, as a browser does (answering each ping with a pong).
    let idle = Duration::from_secs(7);
    let (kept_read, (cut_read, cut_after)) =
        tokio::join!(tokio::time::timeout(idle, kept.next()), async {
            let read = tokio::time::timeout(idle, cut.next()).await;
            (read, opened.elapsed())
        });
    assert!(
        kept_read.is_err(),
        "nothing but pings for 7 s, and the socket stays open: {kept_read:?}"
    );
    assert!(
        matches!(cut_read, Ok(Err(_))),
        "without pings nginx closes the socket at its 3 s: {cut_read:?}"
    );
    eprintln!("without pings the proxy closed the idle socket after {cut_after:?}");
    // The kept socket still runs a lab.
    run_primes(&mut kept, 1).await?;

    to_pinging.stop()?;
    to_quiet.stop()?;
    drop((pinging, quiet));
    std::thread::sleep(Duration::from_millis(100));
    all_gone(&pids);
    Ok(())
}

/// Every descendant of `pid`, from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = vec![];
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for child in spawnlab_tests::children_of(p) {
            found.push(child.pid);
            next.push(child.pid);
        }
    }
    found
}

/// The whole process group of `run-local.sh`, SIGKILLed on drop whatever
/// happened.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        signal(-self.0, Signal::SIGKILL);
    }
}

/// `run-local.sh`, running, and what it has said.
struct RunLocal {
    script: std::process::Child,
    _group: Group,
    lines: std::sync::mpsc::Receiver<String>,
    said: Vec<String>,
    port: u16,
    base: u16,
}

/// Start `run-local.sh` on free ports and wait until it is ready; what it
/// said if it stopped before.
fn run_local() -> anyhow::Result<Result<RunLocal, Vec<String>>> {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let port = free_port();
    // Three free ports in a row for the instances.
    let base = loop {
        let base = free_port();
        if base < 60_000
            && (1..=3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            break base;
        }
    };
    let mut script = Command::new("bash")
        .arg(deploy_dir().join("run-local.sh"))
        .arg(spawnlab_tests::server_binary())
        .arg(spawnlab_tests::site_dir())
        .env("SPAWNLAB_LOCAL_PORT", port.to_string())
        .env("SPAWNLAB_LOCAL_BASE", base.to_string())
        .env_remove("LEPTOS_SITE_ADDR")
        .env_remove("LEPTOS_SITE_ROOT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()?;
    let group = Group(script.id() as i32);
    let stderr = script.stderr.take().expect("piped");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let ready = line.contains("open http://");
                said.push(line);
                if ready {
                    return Ok(Ok(RunLocal {
                        script,
                        _group: group,
                        lines,
                        said,
                        port,
                        base,
                    }));
                }
            }
            // It stopped (its stderr closed), or said nothing for a minute.
            Err(_) => {
                drop(group);
                let _ = script.wait();
                return Ok(Err(said));
            }
        }
    }
}

/// `deploy/run-local.sh` as an operator runs it, stopped as Ctrl-C would.
#[tokio::test]
async fn run_local_starts_three_instances_behind_nginx_and_stops_them() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut attempt = 0;
    let RunLocal {
        mut script,
        _group,
        lines,
        mut said,
        port,
        base,
    } = loop {
        match run_local()? {
            Ok(running) => break running,
            // A port taken between choosing it and binding it (another
            // test's): again, on others.
            Err(said) if attempt < 3 && said.iter().any(|l| l.contains("in use")) => {
                attempt += 1;
            }
            Err(said) => anyhow::bail!("run-local.sh did not start: {said:?}"),
        }
    };
    let script_pid = script.id();
    eprintln!("run-local.sh ready after {:?}", started.elapsed());
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        said.iter().any(|l| l.contains(&format!(
            "3 instances on 127.0.0.1:{}-{}",
            base + 1,
            base + 3
        ))),
        "{said:?}"
    );

    let (status, html) = http_get(front, "/cluster").await?;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Cluster</h1>"));
    let url = format!("ws://{front}/ws?learner=learner-local-001");
    let (mut ws, hello) = WsClient::connect(&url).await?;
    assert!(matches!(hello, ServerEvent::Hello { .. }));
    let pid = run_primes(&mut ws, 1).await?;
    let everything = descendants(script_pid);
    assert!(
        everything.contains(&pid),
        "the lab ran on one of its instances"
    );
    // Three instances and nginx's master at least.
    assert!(everything.len() >= 4, "{everything:?}");

    // SIGTERM, as a service manager (or Ctrl-C's SIGINT) would stop it.
    signal(script_pid as i32, Signal::SIGTERM);
    assert!(ws.closed().await, "the lab socket closes");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = script.try_wait()? {
            break status;
        }
        anyhow::ensure!(Instant::now() < deadline, "run-local.sh did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(143), "exit status after SIGTERM");
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        said.push(line);
    }
    assert!(said.iter().any(|l| l.ends_with("stopped")), "{said:?}");
    all_gone(&everything);
    assert!(
        std::net::TcpStream::connect(front).is_err(),
        "nothing listens any more"
    );
    Ok(())
}
