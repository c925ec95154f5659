//! A storm on the real binary with its shipped defaults: N learners, half
//! from 127.0.0.1 (a class behind one NAT) and half each from an address of
//! its own, press Run at the same instant on Node.js, the four models mixed,
//! while five readers keep loading pages. Every run must complete (none is
//! refused), no page may fail, nothing may be left running, and the server
//! must give back the files it opened.
//!
//! `make test` runs 10 learners; `make load` runs 100
//! (`SPAWNLAB_LOAD_LEARNERS`). Times are printed, never judged: the machine
//! is shared and noisy.

use anyhow::{bail, Context, Result};
use protocol::{ClientMessage, ErrorCode, ModelKind, Outcome, Runtime, ServerEvent};
use spawnlab_tests::http::PAGE_TIMEOUT;
use spawnlab_tests::{
    children_of, eventually, footprint, http_get, percentile, Footprint, Frame, RawClient,
    ServerProcess,
};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Learners in `make test`; `SPAWNLAB_LOAD_LEARNERS` overrides it.
const LEARNERS: usize = 10;

/// Page readers loading pages all through the storm.
const READERS: usize = 5;

/// The pages they read (the router's paths; `/compare` is left out: its
/// first load runs the calibration pass, a storm of its own).
const PAGES: [&str; 5] = [
    "/",
    "/cluster",
    "/child-process",
    "/threads",
    "/main-thread",
];

/// How long a reader pauses between two pages.
const READ_PAUSE: Duration = Duration::from_millis(100);

/// The longest any one frame or page may take before the test gives up: far
/// past anything seen, so only a stuck server trips it.
const PATIENCE: Duration = Duration::from_secs(120);

/// Files the server may hold after the storm beyond what it held before.
const FILE_SLACK: usize = 8;

/// Where learner `i` connects from: the even ones share 127.0.0.1, each odd
/// one has an address of its own.
fn source(i: usize) -> IpAddr {
    if i.is_multiple_of(2) {
        Ipv4Addr::LOCALHOST.into()
    } else {
        let k = i / 2 + 1;
        Ipv4Addr::new(127, 10, (k / 250) as u8, (k % 250 + 1) as u8).into()
    }
}

/// What one learner saw.
struct Seen {
    shared_address: bool,
    model: ModelKind,
    /// Run pressed → `accepted`, and `accepted` → `run_finished`.
    waited: Duration,
    ran: Duration,
    outcome: Result<Outcome, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_learners_all_get_their_runs_while_pages_keep_coming() -> Result<()> {
    let learners: usize = std::env::var("SPAWNLAB_LOAD_LEARNERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(LEARNERS);
    let server = ServerProcess::start(&[])?;
    let pid = server.pid();

    // Warm up what is built on first use, so that "before" is the idle
    // server and the readers see what every visitor after the first sees:
    // Node's detection, and the calibration pass whose break-even sweep
    // `/threads` streams (the first load of that page waits for it, about
    // 20 s here, once for everyone).
    for page in PAGES {
        let (status, _) = tokio::time::timeout(PAGE_TIMEOUT, http_get(server.addr, page))
            .await
            .with_context(|| format!("{page}: no answer within {PAGE_TIMEOUT:?}"))??;
        assert_eq!(status, 200, "{page}");
    }
    let (warm, _) = RawClient::connect(&server.ws_url(), server.addr, PATIENCE).await?;
    warm.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = footprint(pid)?;

    // Everyone opens the lab first, each with a token of their own ...
    let mut clients = Vec::new();
    for i in 0..learners {
        let url = format!("{}?learner=load-learner-{i:04}", server.ws_url());
        let (client, hello) = RawClient::connect_from(&url, server.addr, source(i), PATIENCE)
            .await
            .with_context(|| format!("learner {i} from {}", source(i)))?;
        assert!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        assert_eq!(client.local.ip(), source(i), "learner {i}'s source address");
        clients.push(client);
    }
    let connected = footprint(pid)?;

    // ... then all press Run at the same instant.
    let gate = Arc::new(tokio::sync::Barrier::new(learners + 1));
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let model = ModelKind::ALL[i % ModelKind::ALL.len()];
            let spec = model.lab_default(Runtime::Node);
            gate.wait().await;
            let pressed = Instant::now();
            client.send(&ClientMessage::Start { id: 1, spec }).await?;
            let mut accepted = None;
            let outcome = loop {
                let ev = match client.frame(PATIENCE).await? {
                    Some(Frame::Event(ev)) => ev,
                    other => bail!("learner {i}: the connection gave {other:?}"),
                };
                match ev {
                    ServerEvent::Accepted { .. } => accepted = Some(pressed.elapsed()),
                    ServerEvent::RunFinished { summary, .. } => break Ok(summary.outcome),
                    ServerEvent::Error { code, message, .. } if code != ErrorCode::RunFailed => {
                        break Err(format!("{code:?}: {message}"))
                    }
                    _ => {}
                }
            };
            let took = pressed.elapsed();
            let waited = accepted.unwrap_or(took);
            let seen = Seen {
                shared_address: i.is_multiple_of(2),
                model,
                waited,
                ran: took - waited,
                outcome,
            };
            anyhow::Ok((seen, client))
        }));
    }

    // Readers load pages all through the storm; a sampler watches the
    // server's memory and files.
    let storm_over = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..READERS {
        let storm_over = storm_over.clone();
        let addr = server.addr;
        readers.push(tokio::spawn(async move {
            let mut loads = Vec::new();
            let mut n = r;
            while !storm_over.load(Ordering::Relaxed) {
                let page = PAGES[n % PAGES.len()];
                n += 1;
                let t = Instant::now();
                let (status, body) = tokio::time::timeout(PATIENCE, http_get(addr, page))
                    .await
                    .with_context(|| format!("{page}: no answer within {PATIENCE:?}"))?
                    .with_context(|| format!("{page} during the storm"))?;
                if status != 200 || !body.contains("</html>") {
                    bail!(
                        "{page} during the storm: status {status}, {} bytes",
                        body.len()
                    );
                }
                loads.push(t.elapsed());
                tokio::time::sleep(READ_PAUSE).await;
            }
            anyhow::Ok(loads)
        }));
    }
    let peak = Arc::new(Mutex::new(connected));
    let sampler = {
        let (storm_over, peak) = (storm_over.clone(), peak.clone());
        tokio::spawn(async move {
            while !storm_over.load(Ordering::Relaxed) {
                if let Ok(now) = footprint(pid) {
                    let mut peak = peak.lock().unwrap();
                    peak.rss_kib = peak.rss_kib.max(now.rss_kib);
                    peak.open_files = peak.open_files.max(now.open_files);
                    peak.threads = peak.threads.max(now.threads);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    gate.wait().await;
    let began = Instant::now();
    let (mut seen, mut open) = (Vec::new(), Vec::new());
    for task in tasks {
        let (s, client) = task.await??;
        seen.push(s);
        open.push(client);
    }
    let drained = began.elapsed();
    storm_over.store(true, Ordering::Relaxed);
    let mut pages = Vec::new();
    for reader in readers {
        pages.extend(reader.await??);
    }
    sampler.await?;
    let peak = *peak.lock().unwrap();

    // Every learner leaves; nothing of theirs may stay.
    for client in open {
        client.close().await;
    }
    eventually(
        Duration::from_secs(10),
        "the runs' processes to go",
        || async { Ok(children_of(pid).is_empty().then_some(())) },
    )
    .await
    .with_context(|| format!("still the server's children: {:?}", children_of(pid)))?;
    let after = eventually(
        Duration::from_secs(10),
        "the server to close the storm's files",
        || async {
            let now = footprint(pid)?;
            Ok((now.open_files <= before.open_files + FILE_SLACK).then_some(now))
        },
    )
    .await
    .with_context(|| {
        format!(
            "open files before {before}, now {:?}",
            footprint(pid).map(|f| f.to_string())
        )
    })?;

    let completed = seen
        .iter()
        .filter(|s| s.outcome == Ok(Outcome::Completed))
        .count();
    let refused = seen.iter().filter(|s| s.outcome.is_err()).count();
    report(Report {
        learners,
        completed,
        refused,
        drained,
        seen: &seen,
        pages: &mut pages,
        before,
        connected,
        peak,
        after,
    });

    for (i, s) in seen.iter().enumerate() {
        assert_eq!(
            s.outcome,
            Ok(Outcome::Completed),
            "learner {i} ({}) on the shipped defaults",
            s.model.name()
        );
    }
    Ok(())
}

/// Everything the storm printed.
struct Report<'a> {
    learners: usize,
    completed: usize,
    refused: usize,
    drained: Duration,
    seen: &'a [Seen],
    pages: &'a mut Vec<Duration>,
    before: Footprint,
    connected: Footprint,
    peak: Footprint,
    after: Footprint,
}

fn report(r: Report) {
    let secs = |d: Duration| d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let sorted = |f: &dyn Fn(&Seen) -> Option<Duration>| {
        let mut v: Vec<Duration> = r.seen.iter().filter_map(f).collect();
        v.sort();
        v
    };
    let waits = sorted(&|s| Some(s.waited));
    let runs = sorted(&|s| Some(s.ran));
    let shared = sorted(&|s| s.shared_address.then_some(s.waited));
    let own = sorted(&|s| (!s.shared_address).then_some(s.waited));
    println!(
        "load: {} learners pressing Run at the same instant ({} from 127.0.0.1, {} from addresses of their own), \
         {READERS} page readers; the real binary, shipped defaults, Node.js, the four models mixed",
        r.learners,
        shared.len(),
        own.len()
    );
    println!(
        "  runs: {} completed, {} refused, {} otherwise; the last finished {:.1} s after the press",
        r.completed,
        r.refused,
        r.learners - r.completed - r.refused,
        secs(r.drained)
    );
    if !waits.is_empty() {
        let median = percentile(&waits, 50);
        println!(
            "  wait (Run -> accepted): p50 {:.2} s, p99 {:.2} s, max {:.2} s; longest/median {:.2}",
            secs(median),
            secs(percentile(&waits, 99)),
            secs(percentile(&waits, 100)),
            secs(percentile(&waits, 100)) / secs(median).max(1e-3)
        );
        for (who, v) in [("127.0.0.1 (shared)", &shared), ("own addresses", &own)] {
            if !v.is_empty() {
                println!(
                    "    from {who}: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
                    secs(percentile(v, 50)),
                    secs(percentile(v, 99)),
                    secs(percentile(v, 100))
                );
            }
        }
        println!(
            "  a run (accepted -> finished): p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            secs(percentile(&runs, 50)),
            secs(percentile(&runs, 99)),
            secs(percentile(&runs, 100))
        );
    }
    r.pages.sort();
    if !r.pages.is_empty() {
        println!(
            "  pages during the storm: {} loads, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, none failed",
            r.pages.len(),
            ms(percentile(r.pages, 50)),
            ms(percentile(r.pages, 99)),
            ms(percentile(r.pages, 100))
        );
    }
    println!("  server before:          {}", r.before);
    println!("  with every socket open: {}", r.connected);
    println!("  peak during the storm:  {}", r.peak);
    println!("  after, sockets closed:  {}", r.after);
}
