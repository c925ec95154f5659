//! The lab in a real headless Chromium: the page hydrates, a bad request is
//! explained on the page, and a run started from the page streams per-thread
//! rows and a measured summary.

use fantoccini::{Client, Locator};
use spawnlab_tests::{eventually, with_browser, ServerProcess};
use std::time::Duration;

async fn text(c: &Client, css: &str) -> anyhow::Result<Option<String>> {
    match c.find(Locator::Css(css)).await {
        Ok(el) => Ok(Some(el.text().await?)),
        Err(e) if e.is_no_such_element() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn exists(c: &Client, css: &str) -> anyhow::Result<Option<()>> {
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
        c.goto(&url).await?;
        let wait = Duration::from_secs(20);
        eventually(wait, "hydration", || {
            exists(&c, ".lab[data-hydrated='true']")
        })
        .await?;
        eventually(wait, "the WebSocket", || {
            exists(&c, ".link[data-link='open']")
        })
        .await?;

        // A bad request: the page shows the server's explanation...
        fill(&c, "#workers", "99").await?;
        c.find(Locator::Css("#run")).await?.click().await?;
        let error = eventually(wait, "the error", || text(&c, ".error")).await?;
        assert_eq!(error, "spec.workers must be between 1 and 16, got 99");

        // ...and the next run from the same page works: primes below
        // 20,000,000 on 2 threads, the lab's default job.
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
        let outcome = eventually(Duration::from_secs(60), "the summary", || async {
            match c.find(Locator::Css("#summary")).await {
                Ok(el) => Ok(el.attr("data-outcome").await?),
                Err(e) if e.is_no_such_element() => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        assert_eq!(outcome, "completed");
        assert_eq!(
            text(&c, "#result").await?.as_deref(),
            Some("1,270,607 primes")
        );

        let rows = c.find_all(Locator::Css("tbody tr")).await?;
        assert_eq!(rows.len(), 2, "one row per thread");
        for row in rows {
            let cells = row.find_all(Locator::Css("td")).await?;
            let wall = cells[3].text().await?;
            assert!(
                wall.ends_with('s'),
                "each thread reports its wall time: {wall:?}"
            );
        }
        let speedup = text(&c, "#speedup").await?.unwrap_or_default();
        let value: f64 = speedup.trim_end_matches('×').parse()?;
        assert!(value > 0.0, "{speedup}");
        println!("speedup shown on the page for primes below 20,000,000 on 2 threads: {speedup}");
        let narration = text(&c, ".narration").await?.unwrap_or_default();
        assert!(narration.contains("Worker 1 finished"), "{narration}");
        Ok(())
    })
    .await
}

/// Open a lab page, wait until it is live, set the fields, press Run and
/// wait for the summary; returns its outcome.
async fn run_lab(c: &Client, url: &str, fields: &[(&str, &str)]) -> anyhow::Result<String> {
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
    for (css, value) in fields {
        fill(c, css, value).await?;
    }
    c.find(Locator::Css("#run")).await?.click().await?;
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
        let beats = c.find_all(Locator::Css(".heartbeat rect.beat")).await?;
        assert!(beats.len() > 10, "{} heartbeat marks", beats.len());
        assert!(!c
            .find_all(Locator::Css(".heartbeat rect.late"))
            .await?
            .is_empty());

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
        let rows = c.find_all(Locator::Css("tbody tr[data-worker]")).await?;
        assert_eq!(rows.len(), 2);
        for row in rows {
            let cells = row.find_all(Locator::Css("td")).await?;
            let memory = cells[5].text().await?;
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
        Ok(())
    })
    .await
}

/// Every page renders, hydrates, and is saved as a picture at a desktop and
/// a phone width under target/screenshots, so the design can be looked at.
#[tokio::test]
async fn every_page_renders_and_is_photographed() -> anyhow::Result<()> {
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
        ] {
            for width in [1280, 375] {
                c.set_window_size(width, 900).await?;
                c.goto(&format!("{base}{path}")).await?;
                let h1 =
                    eventually(Duration::from_secs(10), "the heading", || text(&c, "h1")).await?;
                assert!(h1.starts_with(heading), "{path}: {h1}");
                if path != "/" {
                    eventually(Duration::from_secs(20), "hydration", || {
                        exists(&c, ".lab[data-hydrated='true']")
                    })
                    .await?;
                }
                std::fs::write(
                    dir.join(format!("{name}-{width}.png")),
                    c.screenshot().await?,
                )?;
            }
        }
        Ok(())
    })
    .await
}
