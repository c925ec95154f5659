//! Accessibility in a real Chromium: axe-core (WCAG 2.1 A and AA rules)
//! finds nothing on any page, in the light theme and the dark one, before
//! and after a lab has filled its tables; the theme picked in the header is
//! applied at once and remembered by the next page.

use crate::browser::{exists, open_lab, run_lab, text};
use fantoccini::{Client, Locator};
use spawnlab_tests::{axe_source, eventually, with_browser, ServerProcess};
use std::time::Duration;

/// Every page, the heading that says it has rendered, and whether it has a
/// lab (which is live once its WebSocket is open).
const PAGES: &[(&str, &str, bool)] = &[
    ("/", "How Node.js spreads work", false),
    ("/main-thread", "The main thread, blocked", true),
    ("/child-process", "Child processes", true),
    ("/cluster", "Cluster", true),
    ("/threads", "Worker threads", true),
    ("/compare", "The models side by side", false),
    ("/scaling", "Beyond one machine", true),
    ("/no-such-page", "There is no page here", false),
];

/// The page's background in each theme, as the stylesheet sets it.
const BACKGROUND: [(&str, &str); 2] =
    [("light", "rgb(251, 250, 247)"), ("dark", "rgb(20, 22, 26)")];

#[tokio::test]
async fn axe_finds_nothing_on_any_page_in_either_theme() -> anyhow::Result<()> {
    let axe = axe_source()?;
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    with_browser(|c| async move {
        let mut found = Vec::new();
        for (theme, background) in BACKGROUND {
            // Pick the theme once, on the first page; every later page
            // must open in it.
            open(&c, &format!("{base}/"), PAGES[0].1, false).await?;
            pick_theme(&c, theme).await?;
            for &(path, heading, lab) in PAGES {
                open(&c, &format!("{base}{path}"), heading, lab).await?;
                assert_theme(&c, theme, background, path).await?;
                found.extend(audit(&c, &axe, &format!("{path} ({theme})")).await?);
            }
            // A lab with its tables, timeline and charts filled in: a
            // cluster run, which has the most of them.
            let outcome = run_lab(&c, &format!("{base}/cluster"), &[]).await?;
            assert_eq!(outcome, "completed");
            found.extend(audit(&c, &axe, &format!("/cluster after a run ({theme})")).await?);
            // The scaling lab's diagram, fault buttons and balancer tables.
            let outcome = run_lab(&c, &format!("{base}/scaling"), &[]).await?;
            assert_eq!(outcome, "completed");
            found.extend(audit(&c, &axe, &format!("/scaling after a run ({theme})")).await?);
        }
        assert!(found.is_empty(), "axe-core found:\n{}", found.join("\n"));
        Ok(())
    })
    .await
}

/// The picker applies the choice at once, "System" clears it, and the
/// keyboard reaches every scrollable box (code listings, wide tables).
#[tokio::test]
async fn the_theme_is_picked_in_the_header_and_remembered() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    with_browser(|c| async move {
        // Headless Chromium's system theme is light.
        open(&c, &format!("{base}/threads"), "Worker threads", true).await?;
        assert_theme(&c, "system", BACKGROUND[0].1, "/threads").await?;
        pick_theme(&c, "dark").await?;
        assert_theme(&c, "dark", BACKGROUND[1].1, "/threads, just picked").await?;
        // Remembered by a page loaded afresh, before and after hydration.
        open(&c, &format!("{base}/cluster"), "Cluster", true).await?;
        assert_theme(&c, "dark", BACKGROUND[1].1, "/cluster").await?;
        pick_theme(&c, "system").await?;
        c.refresh().await?;
        open(&c, &format!("{base}/cluster"), "Cluster", true).await?;
        assert_theme(&c, "system", BACKGROUND[0].1, "/cluster after System").await?;

        // Every box that scrolls can take the keyboard's focus.
        let unreachable = c
            .execute(
                "return [...document.querySelectorAll('pre, .table-wrap, .narration')]
                    .filter(e => e.tabIndex < 0)
                    .map(e => e.outerHTML.slice(0, 80));",
                vec![],
            )
            .await?;
        assert_eq!(
            unreachable,
            serde_json::json!([]),
            "boxes the keyboard cannot reach"
        );
        Ok(())
    })
    .await
}

/// The home page's decision helper shows the answer to the need chosen, by
/// pointer or keyboard, and no other: plain HTML and CSS, no island.
#[tokio::test]
async fn the_decision_helper_answers_the_chosen_need_only() -> anyhow::Result<()> {
    let server = ServerProcess::start(&[])?;
    let base = server.url("");
    with_browser(|c| async move {
        open(&c, &format!("{base}/"), "How Node.js spreads work", false).await?;
        let shown = |c: Client| async move {
            let mut needs = Vec::new();
            for answer in c.find_all(Locator::Css(".helper .answer")).await? {
                if answer.is_displayed().await? {
                    needs.push(answer.attr("data-need").await?.unwrap_or_default());
                }
            }
            anyhow::Ok(needs)
        };
        assert_eq!(
            shown(c.clone()).await?,
            Vec::<String>::new(),
            "before a choice"
        );
        c.find(Locator::Css("label[for='need-http']"))
            .await?
            .click()
            .await?;
        assert_eq!(shown(c.clone()).await?, ["http"]);
        let link = c
            .find(Locator::Css(".helper .answer[data-need='http'] a"))
            .await?
            .attr("href")
            .await?;
        assert_eq!(link.as_deref(), Some("/cluster"));
        // The keyboard: the arrow moves the choice to the next need.
        c.find(Locator::Css("#need-http"))
            .await?
            .send_keys("\u{E015}")
            .await?;
        assert_eq!(shown(c.clone()).await?, ["crunch"]);
        Ok(())
    })
    .await
}

/// Open `url` and wait until its heading is there and the page is live.
async fn open(c: &Client, url: &str, heading: &str, lab: bool) -> anyhow::Result<()> {
    if lab {
        open_lab(c, url).await?;
    } else {
        c.goto(url).await?;
    }
    // The compare page answers once its measuring pass is done.
    let h1 = eventually(Duration::from_secs(180), "the heading", || text(c, "h1")).await?;
    assert!(h1.starts_with(heading), "{url}: {h1}");
    eventually(Duration::from_secs(20), "hydration", || {
        exists(c, "main[data-hydrated='true']")
    })
    .await?;
    Ok(())
}

/// Choose `theme` in the header's picker, as a reader would.
async fn pick_theme(c: &Client, theme: &str) -> anyhow::Result<()> {
    c.find(Locator::Css(&format!(
        ".theme-picker option[value='{theme}']"
    )))
    .await?
    .click()
    .await?;
    Ok(())
}

/// `<html>` carries `theme` (none for the system's), the picker shows it,
/// and the page's background is the theme's.
async fn assert_theme(c: &Client, theme: &str, background: &str, page: &str) -> anyhow::Result<()> {
    let seen = c
        .execute(
            "return [document.documentElement.getAttribute('data-theme'),
                     document.querySelector('.theme-picker select').value,
                     getComputedStyle(document.body).backgroundColor];",
            vec![],
        )
        .await?;
    let attribute = if theme == "system" {
        serde_json::Value::Null
    } else {
        theme.into()
    };
    assert_eq!(
        seen,
        serde_json::json!([attribute, theme, background]),
        "{page}: data-theme, the picker and the background"
    );
    Ok(())
}

/// Run axe-core on the page as it is now; one line per violation.
async fn audit(c: &Client, axe: &str, page: &str) -> anyhow::Result<Vec<String>> {
    c.execute(axe, vec![]).await?;
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done(r.violations.map(v =>
                   `${v.id} (${v.impact}): ${v.help}; on ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
               .catch(e => done(['axe-core failed: ' + e]));",
            vec![],
        )
        .await?;
    let lines: Vec<String> = serde_json::from_value(result)?;
    Ok(lines.into_iter().map(|l| format!("{page}: {l}")).collect())
}
