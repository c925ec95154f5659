//! The site in a real headless Chromium: every page hydrates without console
//! errors, a bad request is explained on the page, a run started from each
//! lab streams its rows and a measured summary, and the compare page shows
//! figures measured on this host.

use fantoccini::{Client, Locator};
use spawnlab_tests::{console_errors, eventually, with_browser, ServerProcess};
use std::time::Duration;

/// The rendered text of the first element matching `css`, if there is one
/// ("" when it is not displayed, as WebDriver's own text is). Found and
/// read in one step in the page: a drawing or a table body redrawn as text
/// replaces its elements on every event, and an element found by one
/// WebDriver call may be gone by the next.
pub(crate) async fn text(c: &Client, css: &str) -> anyhow::Result<Option<String>> {
    let value = c
        .execute(
            "const e = document.querySelector(arguments[0]);
             return e === null ? null : (e.checkVisibility() ? (e.innerText ?? e.textContent).trim() : '');",
            vec![serde_json::json!(css)],
        )
        .await?;
    Ok(value.as_str().map(str::to_owned))
}

pub(crate) async fn exists(c: &Client, css: &str) -> anyhow::Result<Option<()>> {
    Ok(text(c, css).await?.map(|_| ()))
}

async fn fill(c: &Client, css: &str, value: &str) -> anyhow::Result<()> {
    let input = c.find(Locator::Css(css)).await?;
    input.clear().await?;
    input.send_keys(value).await?;
    Ok(())
}

#[tokio::test]
async fn a_lab_run_streams_per_thread_results_to_the_page() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let url = server.url("/threads");
    with_browser(|c| async move {
        open_lab(&c, &url).await?;
        let wait = Duration::from_secs(20);

        // A bad request: the page shows the server's explanation...
        fill(&c, "#workers", "99").await?;
        c.find(Locator::Css("#run")).await?.click().await?;
        let error = eventually(wait, "the error", || text(&c, ".error")).await?;
        assert_eq!(error, "spec.workers must be between 1 and 16, got 99");

        // ...and the next run from the same page works: primes below
        // 3,000,000 on 2 threads, the lab's default job.
        fill(&c, "#workers", "2").await?;
        eventually(wait, "the Run button", || async {
            Ok(c.find(Locator::Css("#run"))
                .await?
                .is_enabled()
                .await?
                .then_some(()))
        })
        .await?;
        c.find(Locator::Css("#run")).await?.click().await?;
        eventually(wait, "a second thread row", || {
            exists(&c, "tr[data-worker='1']")
        })
        .await?;
        let outcome = summary_outcome(&c).await?;
        assert_eq!(outcome, "completed");
        assert_eq!(
            text(&c, "#result").await?.as_deref(),
            Some("216,816 primes")
        );

        let rows = c.find_all(Locator::Css("tbody tr[data-worker]")).await?;
        assert_eq!(rows.len(), 2, "one row per thread");
        for row in rows {
            let cells = row.find_all(Locator::Css("td")).await?;
            // Start, progress, then wall time (the row's heading holds the
            // thread's number and kernel id).
            let wall = cells[2].text().await?;
            assert!(
                wall.ends_with('s'),
                "each thread reports its wall time: {wall:?}"
            );
        }
        let speedup = text(&c, "#speedup").await?.unwrap_or_default();
        let value: f64 = speedup.trim_end_matches('×').parse()?;
        assert!(value > 0.0, "{speedup}");
        println!("speedup shown on the page for primes below 3,000,000 on 2 threads: {speedup}");
        let narration = text(&c, ".narration").await?.unwrap_or_default();
        assert!(narration.contains("Worker 1 finished"), "{narration}");
        Ok(())
    })
    .await
}

/// Save the lab as it looks after a run, scrolled to its drawings, as
/// target/screenshots/lab-<name>.png.
async fn photograph_lab(c: &Client, name: &str) -> anyhow::Result<()> {
    let dir = spawnlab_tests::workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir)?;
    c.execute(
        "document.querySelector('.lab .link').scrollIntoView()",
        vec![],
    )
    .await?;
    std::fs::write(dir.join(format!("lab-{name}.png")), c.screenshot().await?)?;
    // At the browser's 1280 px, every lab table fits without scrolling
    // sideways (a narrow phone may scroll, and can reach it by keyboard).
    let wide = c
        .execute(
            "return [innerWidth, [...document.querySelectorAll('.lab .table-wrap')]
                .filter(e => e.scrollWidth > e.clientWidth + 1)
                .map(e => e.getAttribute('aria-label') || e.textContent.slice(0, 60))];",
            vec![],
        )
        .await?;
    assert!(
        wide[0].as_u64().is_some_and(|w| w >= 1280),
        "{name}: the lab is photographed at 1280 px or wider: {wide}"
    );
    assert_eq!(
        wide[1],
        serde_json::json!([]),
        "{name}: tables that scroll sideways at 1280 px"
    );
    Ok(())
}

/// The lab's timeline: one lane per worker, each with a working stretch
/// and, once the worker is done, its exit mark.
async fn assert_timeline(c: &Client, workers: usize) -> anyhow::Result<()> {
    let lanes = c.find_all(Locator::Css(".timeline g.lane")).await?;
    assert_eq!(lanes.len(), workers, "one lane per worker");
    for lane in lanes {
        assert!(!lane
            .find_all(Locator::Css("rect.seg.working"))
            .await?
            .is_empty());
        assert!(!lane
            .find_all(Locator::Css("line.mark.exit"))
            .await?
            .is_empty());
    }
    Ok(())
}

/// Open a lab page and wait until it is hydrated and connected.
pub(crate) async fn open_lab(c: &Client, url: &str) -> anyhow::Result<()> {
    c.goto(url).await?;
    let wait = Duration::from_secs(20);
    eventually(wait, "hydration", || {
        exists(c, ".lab[data-hydrated='true']")
    })
    .await?;
    eventually(wait, "the WebSocket", || {
        exists(c, ".link[data-link='open']")
    })
    .await?;
    Ok(())
}

/// Open a lab page, wait until it is live, set the fields, press Run and
/// wait for the summary; returns its outcome.
pub(crate) async fn run_lab(
    c: &Client,
    url: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<String> {
    open_lab(c, url).await?;
    for (css, value) in fields {
        fill(c, css, value).await?;
    }
    c.find(Locator::Css("#run")).await?.click().await?;
    summary_outcome(c).await
}

/// Wait for the run's summary and return its outcome.
async fn summary_outcome(c: &Client) -> anyhow::Result<String> {
    eventually(Duration::from_secs(60), "the summary", || async {
        match c.find(Locator::Css("#summary")).await {
            Ok(el) => Ok(el.attr("data-outcome").await?),
            Err(e) if e.is_no_such_element() => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

#[tokio::test]
async fn every_model_runs_from_its_page() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    with_browser(|c| async move {
        // The main loop: the heartbeat strip shows the freeze.
        let outcome = run_lab(&c, &format!("{base}/main-thread"), &[("#size", "3000000")]).await?;
        assert_eq!(outcome, "completed");
        assert_eq!(
            text(&c, "#result").await?.as_deref(),
            Some("216,816 primes")
        );
        assert_timeline(&c, 1).await?;
        photograph_lab(&c, "main-thread").await?;
        let beats = c.find_all(Locator::Css(".heartbeat rect.beat")).await?;
        assert!(beats.len() > 10, "{} heartbeat marks", beats.len());
        assert!(!c
            .find_all(Locator::Css(".heartbeat rect.late"))
            .await?
            .is_empty());

        // libuv's pool, on Node.js alone: choosing it picks Node.js and
        // turns "Run on both" off; the run draws one bar per hash.
        c.find(Locator::Css("#runtime"))
            .await?
            .select_by_value("rust")
            .await?;
        c.find(Locator::Css("#workload"))
            .await?
            .select_by_value("pool_hash")
            .await?;
        let runtime = c.find(Locator::Css("#runtime")).await?;
        assert_eq!(runtime.prop("value").await?.as_deref(), Some("node"));
        let both = c.find(Locator::Css("#run-both")).await?;
        assert!(
            !both.is_enabled().await?,
            "run on both is off for a Node-only workload"
        );
        fill(&c, "#size", "6").await?;
        fill(&c, "#pool_threads", "2").await?;
        c.find(Locator::Css("#run")).await?.click().await?;
        // The pool's figures belong to this run alone, so once they are all
        // in, the summary that follows is this run's too.
        eventually(Duration::from_secs(60), "six hashes", || async {
            Ok((text(&c, "#pool-done").await?.as_deref() == Some("6")).then_some(()))
        })
        .await?;
        assert_eq!(summary_outcome(&c).await?, "completed");
        assert_eq!(
            c.find_all(Locator::Css(".pool rect.pool-task"))
                .await?
                .len(),
            6
        );
        let command = text(&c, ".runtime-note code.command")
            .await?
            .unwrap_or_default();
        assert!(
            command.starts_with("UV_THREADPOOL_SIZE=2 node main_thread.js"),
            "{command}"
        );
        c.execute("document.querySelector('.pool').scrollIntoView()", vec![])
            .await?;
        std::fs::write(
            spawnlab_tests::workspace_root().join("target/screenshots/lab-main-thread-pool.png"),
            c.screenshot().await?,
        )?;

        // Child processes: one row per process, with its own memory.
        let outcome = run_lab(
            &c,
            &format!("{base}/child-process"),
            &[
                ("#size", "3000000"),
                ("#workers", "2"),
                ("#round_trips", "200"),
            ],
        )
        .await?;
        assert_eq!(outcome, "completed");
        assert_eq!(
            text(&c, "#result").await?.as_deref(),
            Some("216,816 primes")
        );
        assert_timeline(&c, 2).await?;
        photograph_lab(&c, "child-process").await?;
        assert_eq!(
            c.find_all(Locator::Css(".timeline rect.seg.messages"))
                .await?
                .len(),
            2,
            "each child's round trips are on its lane"
        );
        let rows = c.find_all(Locator::Css("tbody tr[data-worker]")).await?;
        assert_eq!(rows.len(), 2);
        for row in rows {
            let cells = row.find_all(Locator::Css("td")).await?;
            let memory = cells[4].text().await?;
            assert!(
                memory.ends_with("MiB"),
                "a process reports its memory: {memory:?}"
            );
        }

        // The cluster: the per-worker answers add up to the requests sent.
        let outcome = run_lab(
            &c,
            &format!("{base}/cluster"),
            &[
                ("#requests", "3000"),
                ("#concurrency", "8"),
                ("#workers", "2"),
            ],
        )
        .await?;
        assert_eq!(outcome, "completed");
        let mut sum = 0;
        for cell in c
            .find_all(Locator::Css("tr[data-cluster-worker] .answers"))
            .await?
        {
            sum += cell.text().await?.parse::<u64>()?;
        }
        assert_eq!(sum, 3000);
        assert_timeline(&c, 2).await?;
        // The latency histogram's buckets hold every request, with the
        // three percentiles marked; the throughput line is drawn.
        // The table sits in a closed <details>, so read its text content
        // rather than its rendered text.
        let mut bucketed = 0;
        for row in c.find_all(Locator::Css(".histogram tbody tr")).await? {
            let label = row
                .find(Locator::Css("th"))
                .await?
                .prop("textContent")
                .await?;
            if label.unwrap_or_default().starts_with("up to") {
                let cell = row
                    .find(Locator::Css("td"))
                    .await?
                    .prop("textContent")
                    .await?;
                let count = cell
                    .unwrap_or_default()
                    .replace(" requests", "")
                    .replace(',', "");
                bucketed += count.parse::<u64>()?;
            }
        }
        assert_eq!(bucketed, 3000);
        assert_eq!(
            c.find_all(Locator::Css(".histogram line.pct")).await?.len(),
            3
        );
        assert!(!c
            .find_all(Locator::Css(".throughput polyline.rate"))
            .await?
            .is_empty());
        photograph_lab(&c, "cluster").await?;

        // Threads: the lane per thread, drawn the same way.
        let outcome = run_lab(
            &c,
            &format!("{base}/threads"),
            &[("#size", "3000000"), ("#workers", "3")],
        )
        .await?;
        assert_eq!(outcome, "completed");
        assert_timeline(&c, 3).await?;
        let history = c.find_all(Locator::Css(".history tbody tr")).await?;
        assert_eq!(history.len(), 1, "the finished run is kept to compare");
        let cells = history[0].find_all(Locator::Css("td")).await?;
        assert_eq!(
            cells[0].text().await?,
            "Node.js",
            "the lab runs Node.js by default"
        );
        let settings = cells[1].text().await?;
        assert!(
            settings.starts_with("primes below 3,000,000 · 3 workers"),
            "{settings}"
        );
        photograph_lab(&c, "threads").await?;
        Ok(())
    })
    .await
}

/// The cluster lab's kill button: the worker dies mid-load, the primary
/// replaces it, and both show on its lane and in the narration.
#[tokio::test]
async fn a_cluster_worker_killed_from_the_page_dies_and_comes_back() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let url = server.url("/cluster");
    with_browser(|c| async move {
        open_lab(&c, &url).await?;
        let wait = Duration::from_secs(20);
        c.find(Locator::Css("#workload"))
            .await?
            .select_by_value("http_sleep")
            .await?;
        // 3,000 requests of 5 ms, 16 at a time on 2 workers: about a second.
        for (css, value) in [
            ("#size", "5"),
            ("#requests", "3000"),
            ("#concurrency", "16"),
            ("#workers", "2"),
        ] {
            fill(&c, css, value).await?;
        }
        c.find(Locator::Css("#run")).await?.click().await?;
        eventually(wait, "the kill button", || async {
            match c.find(Locator::Css("button[data-kill='0']")).await {
                Ok(button) => Ok(button.is_enabled().await?.then_some(())),
                Err(e) if e.is_no_such_element() => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        c.find(Locator::Css("button[data-kill='0']"))
            .await?
            .click()
            .await?;
        let outcome = summary_outcome(&c).await?;
        assert_eq!(outcome, "completed");
        let lane = c
            .find(Locator::Css(".timeline g.lane[data-lane='0']"))
            .await?;
        for mark in ["line.mark.died", "line.mark.respawned", "rect.seg.down"] {
            assert!(
                !lane.find_all(Locator::Css(mark)).await?.is_empty(),
                "{mark} on worker 0's lane"
            );
        }
        assert!(!c
            .find_all(Locator::Css(".throughput line.death"))
            .await?
            .is_empty());
        let incidents = text(&c, ".incidents").await?.unwrap_or_default();
        assert!(incidents.contains("worker 0"), "{incidents}");
        assert!(incidents.contains("replaced worker 0"), "{incidents}");
        // Every answer is counted once, on the worker that gave it.
        let total = text(&c, "#load-total").await?.unwrap_or_default();
        let answered: u64 = total
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .replace(',', "")
            .parse()?;
        let mut sum = 0;
        for cell in c
            .find_all(Locator::Css("tr[data-cluster-worker] .answers"))
            .await?
        {
            sum += cell.text().await?.parse::<u64>()?;
        }
        assert_eq!(sum, answered, "{total}");
        photograph_lab(&c, "cluster-killed").await?;
        Ok(())
    })
    .await
}

/// A lab driven from the keyboard alone: Tab from the top of the page
/// reaches the skip link first, then the lab's fields and its Run button;
/// typing and Enter start a run whose result appears.
#[tokio::test]
async fn a_lab_can_be_run_by_keyboard_alone() -> anyhow::Result<()> {
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    const BACKSPACE: &str = "\u{E003}";
    let server = ServerProcess::start(&[])?;
    let url = server.url("/threads");
    with_browser(|c| async move {
        c.goto(&url).await?;
        let wait = Duration::from_secs(20);
        eventually(wait, "the WebSocket", || {
            exists(&c, ".link[data-link='open']")
        })
        .await?;
        // Focus moves only by Tab from here on.
        let focused = |c: Client| async move {
            let el = c.active_element().await?;
            let id = el.attr("id").await?.unwrap_or_default();
            let class = el.attr("class").await?.unwrap_or_default();
            anyhow::Ok((el, id, class))
        };
        c.active_element().await?.send_keys(TAB).await?;
        let (_, _, class) = focused(c.clone()).await?;
        assert_eq!(class, "skip", "the skip link comes first");

        let reach = |target: &'static str| {
            let c = c.clone();
            async move {
                for _ in 0..60 {
                    let (el, id, _) = focused(c.clone()).await?;
                    if id == target {
                        return anyhow::Ok(el);
                    }
                    el.send_keys(TAB).await?;
                }
                anyhow::bail!("Tab never reached #{target}")
            }
        };
        let size = reach("size").await?;
        size.send_keys(&BACKSPACE.repeat(12)).await?;
        size.send_keys("3000000").await?;
        let workers = reach("workers").await?;
        workers.send_keys(&BACKSPACE.repeat(4)).await?;
        workers.send_keys("2").await?;
        let run = reach("run").await?;
        run.send_keys(ENTER).await?;

        let outcome = summary_outcome(&c).await?;
        assert_eq!(outcome, "completed");
        assert_eq!(
            text(&c, "#result").await?.as_deref(),
            Some("216,816 primes")
        );
        assert_eq!(c.find_all(Locator::Css(".timeline g.lane")).await?.len(), 2);
        Ok(())
    })
    .await
}

/// The scaling lab from its page: a real nginx in front of two Node.js
/// instances; the learner kills an instance while the load runs, sees it
/// down in the diagram, brings it back, and reads what the balancer and
/// the client each saw.
#[tokio::test]
async fn the_scaling_lab_breaks_and_mends_an_instance_from_its_page() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let url = server.url("/scaling");
    with_browser(|c| async move {
        open_lab(&c, &url).await?;
        // Long enough to press buttons: 5 ms of waiting per request.
        fill(&c, "#requests", "20000").await?;
        c.find(Locator::Css("#run")).await?.click().await?;
        let wait = Duration::from_secs(30);
        let instance = |i: u32, state: &'static str| {
            let c = c.clone();
            async move {
                exists(
                    &c,
                    &format!(".instance-box[data-instance='{i}'][data-state='{state}']"),
                )
                .await
            }
        };
        eventually(wait, "both instances up", || async {
            Ok(instance(0, "up").await?.and(instance(1, "up").await?))
        })
        .await?;
        let button = |fault: &'static str| {
            let c = c.clone();
            async move {
                c.find(Locator::Css(&format!(
                    ".fault-instance[data-instance='1'] button[data-fault='{fault}']"
                )))
                .await
            }
        };
        eventually(wait, "the kill button to be live", || async {
            Ok(button("kill_instance")
                .await?
                .is_enabled()
                .await?
                .then_some(()))
        })
        .await?;
        button("kill_instance").await?.click().await?;
        eventually(wait, "instance 1 drawn down", || instance(1, "down")).await?;
        eventually(wait, "the way back to be open", || async {
            Ok(button("restart_instance")
                .await?
                .is_enabled()
                .await?
                .then_some(()))
        })
        .await?;
        button("restart_instance").await?.click().await?;
        eventually(wait, "instance 1 up again", || instance(1, "up")).await?;
        assert_eq!(summary_outcome(&c).await?, "completed");
        let log = text(&c, ".fault-log").await?.unwrap_or_default();
        assert!(log.contains("Instance 1 was killed"), "{log}");
        assert!(log.contains("Instance 1 is back"), "{log}");
        assert!(exists(&c, "#attempts").await?.is_some());
        assert!(exists(&c, "#failures").await?.is_some());
        photograph_lab(&c, "scaling").await?;
        Ok(())
    })
    .await
}

/// Every page renders, hydrates with nothing on the console at error level,
/// and is saved as a picture at a desktop and a phone width under
/// target/screenshots, so the design can be looked at.
#[tokio::test]
async fn every_page_hydrates_cleanly_and_is_photographed() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    let dir = spawnlab_tests::workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir)?;
    with_browser(|c| async move {
        for (name, path, heading) in [
            ("home", "/", "How Node.js spreads work"),
            ("main-thread", "/main-thread", "The main thread, blocked"),
            ("child-process", "/child-process", "Child processes"),
            ("cluster", "/cluster", "Cluster"),
            ("threads", "/threads", "Worker threads"),
            ("compare", "/compare", "The models side by side"),
            ("scaling", "/scaling", "Beyond one machine"),
            ("not-found", "/no-such-page", "There is no page here"),
        ] {
            for width in [1280, 375, 360] {
                c.set_window_size(width, 900).await?;
                c.goto(&format!("{base}{path}")).await?;
                let h1 =
                    eventually(Duration::from_secs(60), "the heading", || text(&c, "h1")).await?;
                assert!(h1.starts_with(heading), "{path}: {h1}");
                eventually(Duration::from_secs(20), "hydration", || {
                    exists(&c, "main[data-hydrated='true']")
                })
                .await?;
                if path != "/" && path != "/compare" && name != "not-found" {
                    eventually(Duration::from_secs(20), "the lab's connection", || {
                        exists(&c, ".link[data-link='open']")
                    })
                    .await?;
                }
                let errors = console_errors(&c).await?;
                // The unknown page answers 404, which the console reports.
                let errors: Vec<_> = errors
                    .into_iter()
                    .filter(|e| !(name == "not-found" && e.contains("404")))
                    .collect();
                assert!(errors.is_empty(), "{path} at {width}px: {errors:#?}");
                // Usable from 360 px: nothing pushes the page sideways
                // (wide tables scroll inside their own box).
                let overflow = c
                    .execute(
                        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                        vec![],
                    )
                    .await?;
                assert_eq!(overflow.as_i64(), Some(0), "{path} at {width}px scrolls sideways");
                let inner = c.execute("return window.innerWidth", vec![]).await?;
                assert_eq!(inner.as_i64(), Some(width.into()), "the window is {width}px wide");
                if width != 360 {
                    std::fs::write(
                        dir.join(format!("{name}-{width}.png")),
                        c.screenshot().await?,
                    )?;
                }
            }
        }
        Ok(())
    })
    .await
}

/// The compare page's table is filled with figures measured on this host,
/// each with how it was measured, and its chart draws the shared job.
#[tokio::test]
async fn the_compare_page_shows_figures_from_this_host() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let url = server.url("/compare");
    with_browser(|c| async move {
        c.goto(&url).await?;
        let wait = Duration::from_secs(120);
        eventually(wait, "the measured table", || {
            exists(&c, ".compare-table[data-finished]")
        })
        .await?;
        let measured = measured_cells(&c).await?;
        // Start and memory for the three worker models, round trips for
        // threads and processes, the job on three, the speedup on three,
        // hello on two: on each runtime.
        for runtime in ["node", "rust"] {
            let n = measured.iter().filter(|(r, _)| r == runtime).count();
            assert!(n >= 16, "{n} measured {runtime} cells: {measured:?}");
        }
        let caption = text(&c, ".compare-table caption")
            .await?
            .unwrap_or_default();
        assert!(caption.starts_with("Measured on "), "{caption}");
        let bars = c.find_all(Locator::Css(".chart rect.job-bar")).await?;
        assert_eq!(
            bars.len(),
            6,
            "the job on the loop, threads and processes, on each runtime"
        );
        let sweep = c
            .find_all(Locator::Css(".break-even polyline.sweep"))
            .await?;
        assert_eq!(sweep.len(), 2, "the break-even sweep on each runtime");

        // "Measure again" within five minutes keeps the figures. It is a
        // plain form (nothing on this page runs in the wasm): the server
        // answers the post by sending the browser back to the page, a new
        // document, which shows the pass it kept and says why.
        let finished = c
            .find(Locator::Css(".compare-table"))
            .await?
            .attr("data-finished")
            .await?;
        c.execute("window.beforeRerun = true;", vec![]).await?;
        c.find(Locator::Css(".rerun button")).await?.click().await?;
        eventually(wait, "the page again after the form's post", || async {
            // While the browser is between documents a script may fail to
            // run: that is "not yet".
            let reloaded = c
                .execute("return window.beforeRerun === undefined", vec![])
                .await
                .ok();
            Ok(reloaded.and_then(|r| r.as_bool()).filter(|r| *r).map(drop))
        })
        .await?;
        eventually(wait, "the table after a re-run", || {
            exists(&c, ".compare-table[data-finished]")
        })
        .await?;
        let kept = text(&c, ".kept").await?.unwrap_or_default();
        assert!(
            kept.contains("Measure again") && kept.contains("old"),
            "{kept}"
        );
        assert_eq!(c.current_url().await?.path(), "/compare");
        let again = c
            .find(Locator::Css(".compare-table"))
            .await?
            .attr("data-finished")
            .await?;
        assert_eq!(again, finished);
        let errors = console_errors(&c).await?;
        assert!(errors.is_empty(), "{errors:#?}");
        Ok(())
    })
    .await
}

/// Every measured cell of the compare table: its runtime and its figure.
/// Each cell names its runtime and says how it was measured.
async fn measured_cells(c: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let rows = c.find_all(Locator::Css(".measured-rows tr")).await?;
    assert_eq!(rows.len(), 6, "six measured rows");
    let mut measured = Vec::new();
    for row in rows {
        for cell in row.find_all(Locator::Css("td")).await? {
            let how = cell.find_all(Locator::Css(".how")).await?;
            assert!(!how.is_empty(), "a cell without its method");
            for fig in cell.find_all(Locator::Css(".fig")).await? {
                let runtime = fig.attr("data-runtime").await?.unwrap_or_default();
                let value = fig.find(Locator::Css("strong")).await?.text().await?;
                let label = fig.text().await?;
                assert!(
                    label.contains(if runtime == "node" { "Node.js" } else { "Rust" }),
                    "a figure names its runtime: {label:?}"
                );
                if value != "not measured" {
                    measured.push((runtime, value));
                }
            }
        }
    }
    Ok(measured)
}

/// "Run on both": the same settings on Node.js and on the Rust engine,
/// side by side with their ratio; then the compare page shows both
/// runtimes' figures.
#[tokio::test]
async fn a_lab_runs_on_both_runtimes_and_the_compare_page_shows_both() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    with_browser(|c| async move {
        open_lab(&c, &format!("{base}/threads")).await?;
        fill(&c, "#size", "2000000").await?;
        fill(&c, "#workers", "2").await?;
        c.find(Locator::Css("#run-both")).await?.click().await?;
        let wait = Duration::from_secs(90);
        eventually(wait, "both runs in the history", || async {
            let rows = c.find_all(Locator::Css(".history tbody tr")).await?;
            Ok((rows.len() == 2).then_some(()))
        })
        .await?;
        let runtimes: Vec<String> = {
            let mut v = Vec::new();
            for row in c.find_all(Locator::Css(".history tbody tr")).await? {
                v.push(row.attr("data-runtime").await?.unwrap_or_default());
            }
            v
        };
        assert_eq!(
            runtimes,
            ["rust", "node"],
            "Node.js first, then Rust, newest on top"
        );
        let pair = eventually(wait, "the side-by-side table", || text(&c, "#pair caption")).await?;
        assert!(pair.contains("primes below 2,000,000"), "{pair}");
        let rows = c.find_all(Locator::Css("#pair tbody tr")).await?;
        assert!(rows.len() >= 5, "{} rows", rows.len());
        let first = rows[0].find_all(Locator::Css("td")).await?;
        assert!(first.len() >= 3, "{} cells in the first row", first.len());
        for cell in &first {
            assert_ne!(
                cell.text().await?,
                "—",
                "wall times and their ratio are shown"
            );
        }
        photograph_lab(&c, "threads-both").await?;

        c.goto(&format!("{base}/compare")).await?;
        eventually(wait, "the measured table", || {
            exists(&c, ".compare-table[data-finished]")
        })
        .await?;
        let measured = measured_cells(&c).await?;
        assert!(measured.iter().any(|(r, _)| r == "node"), "{measured:?}");
        assert!(measured.iter().any(|(r, _)| r == "rust"), "{measured:?}");
        let errors = console_errors(&c).await?;
        assert!(errors.is_empty(), "{errors:#?}");
        Ok(())
    })
    .await
}
