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
