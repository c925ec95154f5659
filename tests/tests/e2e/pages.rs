//! The teaching text as a reader without JavaScript gets it: no figure on a
//! page is written from memory. A number with a unit is either measured (a
//! lab over its WebSocket, or the calibration pass, whose every figure sits
//! in an element marked `data-measured`) or quoted through `app::quoted`,
//! which names its source and date beside it.

use spawnlab_tests::{
    http_get_until, http_get_with, site_dir, spawn_app, spawn_app_with, test_settings,
};

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
/// (`1×` is the break-even line: two workers exactly as fast as one.)
const PARAMETERS: [&str; 2] = ["1 MiB", "1 ×"];

/// Remove every element `<tag ...>…</tag>` whose opening tag contains
/// `marker` (every one, when there is no marker), with whatever is nested
/// in it, elements of the same name included.
fn strip(html: &str, tag: &str, marker: Option<&str>) -> String {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    // `<tag` followed by a space or `>`, so `<p` does not find `<pre>`.
    let find_open = |s: &str| {
        let mut from = 0;
        while let Some(i) = s[from..].find(&open) {
            let at = from + i;
            match s[at + open.len()..].chars().next() {
                Some(c) if c == '>' || c.is_whitespace() => return Some(at),
                _ => from = at + open.len(),
            }
        }
        None
    };
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = find_open(rest) {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j + 1);
        let opening = &rest[i..tag_end];
        if marker.is_some_and(|m| !opening.contains(m)) {
            out.push_str(&rest[..tag_end]);
            rest = &rest[tag_end..];
            continue;
        }
        out.push_str(&rest[..i]);
        // Skip to the matching close, counting nested elements of the name.
        let mut depth = 1;
        let mut at = tag_end;
        while depth > 0 {
            let next_close = rest[at..].find(&close).map(|j| at + j);
            let next_open = find_open(&rest[at..]).map(|j| at + j);
            match (next_open, next_close) {
                (Some(o), Some(c)) if o < c => {
                    depth += 1;
                    at = o + open.len();
                }
                (_, Some(c)) => {
                    depth -= 1;
                    at = c + close.len();
                }
                (_, None) => {
                    at = rest.len();
                    break;
                }
            }
        }
        rest = &rest[at..];
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
    // Each page, and how its figures are sourced: the model pages quote,
    // the compare page's figures come from the pass (on /compare the page
    // is sent whole once the pass is done, so they are all in it).
    for (page, marker) in [
        ("/", None),
        ("/main-thread", Some("class=\"quoted\"")),
        ("/child-process", Some("class=\"quoted\"")),
        ("/cluster", Some("class=\"quoted\"")),
        ("/threads", Some("class=\"quoted\"")),
        ("/compare", Some("data-measured")),
        ("/scaling", None),
    ] {
        // Up to the footer: the parts streamed later wait for the
        // calibration pass, whose figures are measured.
        let html = http_get_until(app.addr, page, "</footer>").await?;
        let body = html.split_once("<main").map_or(html.as_str(), |(_, b)| b);
        let mut left = strip(body, "span", Some("class=\"quoted\""));
        // What the server measured is marked so, wherever it is drawn.
        for tag in ["caption", "td", "tbody", "svg", "li", "p", "figure"] {
            left = strip(&left, tag, Some("data-measured"));
        }
        for tag in ["pre", "code", "script"] {
            left = strip(&left, tag, None);
        }
        let unsourced = figures(&text(&left));
        assert!(
            unsourced.is_empty(),
            "{page} writes figures with no measurement or quoted source: {unsourced:?}"
        );
        if let Some(marker) = marker {
            assert!(body.contains(marker), "{page} has no {marker} figure");
        }
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
            "span",
            Some("class=\"quoted\"")
        ),
        "ab"
    );
    assert_eq!(
        strip(
            "<p>a</p><p data-measured>b <p>1 ms</p> c</p><pre>d</pre>",
            "p",
            Some("data-measured")
        ),
        "<p>a</p><pre>d</pre>"
    );
}

/// A copy of the built bundle in a folder of its own, removed on drop.
struct SiteCopy(std::path::PathBuf);

impl Drop for SiteCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_bundle_is_served_precompressed_when_the_browser_takes_it() -> anyhow::Result<()> {
    // A release build with --precompress writes .br and .gz beside each
    // file; stand-ins here, so the test sees which file was served.
    let site = SiteCopy(
        std::env::temp_dir().join(format!("spawnlab-precompressed-{}", std::process::id())),
    );
    let pkg = site.0.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    for file in ["spawnlab.js", "spawnlab.wasm", "spawnlab.css"] {
        std::fs::copy(site_dir().join("pkg").join(file), pkg.join(file))?;
    }
    std::fs::write(pkg.join("spawnlab.wasm.br"), b"brotli stand-in")?;
    std::fs::write(pkg.join("spawnlab.wasm.gz"), b"gzip stand-in")?;
    let mut settings = test_settings();
    settings.site_dir = site.0.clone();
    let app = spawn_app_with(settings).await;

    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let path = "/pkg/spawnlab.wasm";
    let (status, headers, body) =
        http_get_with(app.addr, path, &[("Accept-Encoding", "gzip, deflate, br")]).await?;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding").as_deref(), Some("br"));
    assert_eq!(body, b"brotli stand-in");
    assert_eq!(
        header(&headers, "content-type").as_deref(),
        Some("application/wasm"),
        "the type of what it decompresses to"
    );
    assert_eq!(
        header(&headers, "cache-control").as_deref(),
        Some("no-cache")
    );

    let (_, headers, body) = http_get_with(app.addr, path, &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(
        header(&headers, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert_eq!(body, b"gzip stand-in");

    let (_, headers, body) = http_get_with(app.addr, path, &[]).await?;
    assert_eq!(header(&headers, "content-encoding"), None);
    assert_eq!(body, std::fs::read(pkg.join("spawnlab.wasm"))?);

    // Unchanged since the browser's copy: 304, nothing sent again.
    let modified = header(&headers, "last-modified").expect("a Last-Modified date");
    let (status, _, body) =
        http_get_with(app.addr, path, &[("If-Modified-Since", &modified)]).await?;
    assert_eq!((status, body.len()), (304, 0));

    // A later build replaced the file and left its compressed copies
    // behind: they are stale, and the bundle goes out as it is.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::copy(
        site_dir().join("pkg").join("spawnlab.wasm"),
        pkg.join("spawnlab.wasm"),
    )?;
    let mut settings = test_settings();
    settings.site_dir = site.0.clone();
    let rebuilt = spawn_app_with(settings).await;
    let (_, headers, body) =
        http_get_with(rebuilt.addr, path, &[("Accept-Encoding", "br")]).await?;
    assert_eq!(
        header(&headers, "content-encoding"),
        None,
        "a stale .br is not served"
    );
    assert_eq!(body, std::fs::read(pkg.join("spawnlab.wasm"))?);
    Ok(())
}

/// The version a page's HTML names for `file` (`/pkg/<file>?v=<16 hex>`).
fn named_version(html: &str, file: &str) -> Option<String> {
    let at = html.find(&format!("/pkg/{file}?v="))? + "/pkg/?v=".len() + file.len();
    let v = html.get(at..at + 16)?;
    v.chars()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| v.to_string())
}

#[tokio::test]
async fn the_bundle_is_named_by_its_version_and_cached_for_a_year() -> anyhow::Result<()> {
    let site =
        SiteCopy(std::env::temp_dir().join(format!("spawnlab-versioned-{}", std::process::id())));
    let pkg = site.0.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    for file in ["spawnlab.js", "spawnlab.wasm", "spawnlab.css"] {
        std::fs::copy(site_dir().join("pkg").join(file), pkg.join(file))?;
    }
    let serve = || {
        let mut settings = test_settings();
        settings.site_dir = site.0.clone();
        spawn_app_with(settings)
    };
    let cache = |headers: &[(String, String)]| {
        headers
            .iter()
            .find(|(n, _)| n == "cache-control")
            .map(|(_, v)| v.clone())
    };
    let app = serve().await;
    // Every page, the unknown one included, names the same version for
    // the stylesheet, the JavaScript and the wasm.
    let mut seen = Vec::new();
    for path in ["/", "/cluster", "/no-such-page"] {
        let (_, _, body) = http_get_with(app.addr, path, &[]).await?;
        let html = String::from_utf8_lossy(&body).to_string();
        for file in ["spawnlab.css", "spawnlab.js", "spawnlab.wasm"] {
            let v = named_version(&html, file)
                .unwrap_or_else(|| panic!("{path} names no version of {file}"));
            seen.push(v);
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "one version throughout: {seen:?}");
    let version = seen.remove(0);

    for file in ["spawnlab.css", "spawnlab.js", "spawnlab.wasm"] {
        let (status, headers, _) =
            http_get_with(app.addr, &format!("/pkg/{file}?v={version}"), &[]).await?;
        assert_eq!(status, 200, "{file}");
        assert_eq!(
            cache(&headers).as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{file} by its versioned URL"
        );
    }
    // Any other URL of the same file is revalidated on every use.
    for query in ["", "?v=0000000000000000", "?other=1"] {
        let (status, headers, _) =
            http_get_with(app.addr, &format!("/pkg/spawnlab.wasm{query}"), &[]).await?;
        assert_eq!(status, 200);
        assert_eq!(cache(&headers).as_deref(), Some("no-cache"), "{query:?}");
    }
    let (status, headers, _) =
        http_get_with(app.addr, &format!("/pkg/missing.js?v={version}"), &[]).await?;
    assert_eq!(status, 404);
    assert_eq!(
        cache(&headers).as_deref(),
        Some("no-cache"),
        "a 404 is not kept"
    );

    // A new build is a new version: pages name it, and the old URL is no
    // longer cached for long.
    let mut css = std::fs::read(pkg.join("spawnlab.css"))?;
    css.extend_from_slice(b"\n/* rebuilt */\n");
    std::fs::write(pkg.join("spawnlab.css"), css)?;
    let rebuilt = serve().await;
    let (_, _, body) = http_get_with(rebuilt.addr, "/cluster", &[]).await?;
    let again = named_version(&String::from_utf8_lossy(&body), "spawnlab.wasm")
        .expect("the rebuilt site names a version");
    assert_ne!(again, version, "a changed file changes the version");
    let (_, headers, _) = http_get_with(
        rebuilt.addr,
        &format!("/pkg/spawnlab.wasm?v={version}"),
        &[],
    )
    .await?;
    assert_eq!(
        cache(&headers).as_deref(),
        Some("no-cache"),
        "the old version's URL"
    );
    Ok(())
}

#[tokio::test]
async fn pages_are_gzipped_and_still_stream() -> anyhow::Result<()> {
    use std::io::Read;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;

    // A page: gzip when asked for, the same page when decompressed.
    let (_, headers, body) = http_get_with(app.addr, "/", &[("Accept-Encoding", "gzip")]).await?;
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-encoding" && v == "gzip"),
        "{headers:?}"
    );
    let plain = http_get_until(app.addr, "/", "</html>").await?;
    let mut html = String::new();
    flate2::read::GzDecoder::new(&dechunked(&body)[..]).read_to_string(&mut html)?;
    assert!(html.contains("<h1>") && html.len() > 1_000, "{html}");
    assert!(
        dechunked(&body).len() * 2 < html.len(),
        "the page shrinks: {} bytes for {}",
        body.len(),
        html.len()
    );
    // The same page: its title and heading, as sent without gzip.
    let part = |page: &str, open: &str, close: &str| {
        page.split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map(|(inside, _)| inside.to_string())
    };
    for (open, close) in [("<title>", "</title>"), ("<h1>", "</h1>")] {
        let unzipped = part(&html, open, close);
        assert!(unzipped.is_some(), "{open} in the gzipped page");
        assert_eq!(unzipped, part(&plain, open, close), "{open}");
    }

    // A page that waits for the server's measurements: its text arrives,
    // compressed, while the slow part is still being measured.
    let mut socket = tokio::net::TcpStream::connect(app.addr).await?;
    let request = format!(
        "GET /threads HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        app.addr
    );
    socket.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut chunk).await?;
        assert!(n > 0, "the page ended before its text could be read");
        raw.extend_from_slice(&chunk[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let text = gunzip_prefix(&dechunked(&raw[end + 4..]));
        if text.contains("Measuring both runtimes") {
            // Read while the rest of the page is still to come: a
            // compressor that held the page back would only let this be
            // read with its end.
            assert!(
                !raw.ends_with(b"\r\n0\r\n\r\n"),
                "the text was held back until the page ended"
            );
            break;
        }
    }
    Ok(())
}

/// The data of a chunked body (as much of it as has arrived).
fn dechunked(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size else { break };
        let start = eol + 2;
        if size == 0 || body.len() < start + size {
            out.extend_from_slice(&body[start..body.len().min(start + size)]);
            break;
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    out
}

/// What a gzip stream cut short decodes to so far.
fn gunzip_prefix(gz: &[u8]) -> String {
    use std::io::Read;
    let mut decoder = flate2::read::GzDecoder::new(gz);
    let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
