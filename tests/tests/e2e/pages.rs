//! The teaching text as a reader without JavaScript gets it: no figure on a
//! page is written from memory. A number with a unit is either measured (a
//! lab, the comparison) or quoted through `app::quoted`, which names its
//! source and date beside it.

use spawnlab_tests::{http_get_until, spawn_app};

/// Units that make a number a figure someone measured.
const UNITS: [&str; 14] = [
    "ms",
    "µs",
    "ns",
    "s",
    "MiB",
    "KiB",
    "GiB",
    "MB",
    "KB",
    "%",
    "×",
    "k",
    "req/s",
    "requests/s",
];

/// Sizes the text uses as parameters of an experiment, not as results.
const PARAMETERS: [&str; 1] = ["1 MiB"];

/// Remove every element `<tag ...>…</tag>` whose opening tag contains
/// `marker` (and, for `<pre>`/`<code>`/`<script>`, every such element).
fn strip(html: &str, open: &str, close: &str, marker: Option<&str>) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find(open) {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j + 1);
        let tag = &rest[i..tag_end];
        if marker.is_some_and(|m| !tag.contains(m)) {
            out.push_str(&rest[..tag_end]);
            rest = &rest[tag_end..];
            continue;
        }
        out.push_str(&rest[..i]);
        rest = rest[tag_end..]
            .find(close)
            .map_or("", |j| &rest[tag_end + j + close.len()..]);
    }
    out.push_str(rest);
    out
}

/// The text between the tags.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => {
                inside = false;
                out.push(' ');
            }
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
}

/// Every "number unit" in `text`.
fn figures(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches(|c: char| "(),;:.\"“”'".contains(c));
        let digits_end = w
            .find(|c: char| !(c.is_ascii_digit() || ",.–".contains(c)))
            .unwrap_or(w.len());
        if digits_end == 0 || !w.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let (number, glued) = w.split_at(digits_end);
        let next = words
            .get(i + 1)
            .map(|n| n.trim_end_matches(|c: char| ",.;:)".contains(c)));
        let unit = if !glued.is_empty() { Some(glued) } else { next };
        if let Some(unit) = unit.filter(|u| UNITS.contains(u)) {
            let figure = format!("{number} {unit}");
            if !PARAMETERS.contains(&figure.as_str()) {
                found.push(figure);
            }
        }
    }
    found
}

#[tokio::test]
async fn every_figure_on_a_page_is_measured_or_quoted_with_its_source() -> anyhow::Result<()> {
    let app = spawn_app().await;
    for page in [
        "/",
        "/main-thread",
        "/child-process",
        "/cluster",
        "/threads",
    ] {
        // Up to the footer: the parts streamed later wait for the
        // calibration pass, whose figures are measured.
        let html = http_get_until(app.addr, page, "</footer>").await?;
        let body = html.split_once("<main").map_or(html.as_str(), |(_, b)| b);
        let mut left = strip(body, "<span", "</span>", Some("class=\"quoted\""));
        for (open, close) in [
            ("<pre", "</pre>"),
            ("<code", "</code>"),
            ("<script", "</script>"),
        ] {
            left = strip(&left, open, close, None);
        }
        let unsourced = figures(&text(&left));
        assert!(
            unsourced.is_empty(),
            "{page} writes figures with no measurement or quoted source: {unsourced:?}"
        );
        assert!(
            body.contains("class=\"quoted\"") || page == "/",
            "{page} quotes its figures through app::quoted"
        );
    }
    Ok(())
}

#[test]
fn the_scanner_finds_figures_and_ignores_counts() {
    assert_eq!(
        figures("took 49 ms, against 14.9ms; 2 workers; 84.5k requests/s; 70% of; 1.95× faster"),
        ["49 ms", "14.9 ms", "84.5 k", "70 %", "1.95 ×"]
    );
    assert!(figures("primes below 20,000,000 on 2 workers, a 1 MiB payload").is_empty());
    assert_eq!(
        strip(
            "a<span class=\"quoted\" title=\"x\">49 ms</span>b",
            "<span class=\"quoted\"",
            "</span>",
            None
        ),
        "ab"
    );
}
