//! A headless Chromium behind its own chromedriver, driven over WebDriver.

use crate::procs::signal;
use crate::server::workspace_root;
use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A headless Chromium behind its own chromedriver, with a fresh profile.
pub struct Browser {
    driver: Child,
    profile: PathBuf,
}

/// The flags Chromium needs on this closed network: without them it floods
/// the network with update and sync requests.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

impl Browser {
    fn start() -> Result<(Self, u16)> {
        let port = free_port()?;
        let profile =
            std::env::temp_dir().join(format!("spawnlab-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Chromium and its helpers can all be
            // killed together whatever happens to the session.
            .process_group(0)
            .spawn()
            .context("starting chromedriver (install chromium-driver: `make browser`)")?;
        Ok((Browser { driver, profile }, port))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        signal(-(self.driver.id() as i32), Signal::SIGKILL);
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Run `test` against a fresh headless Chromium session, and always close
/// the session and the browser afterwards, whether the test passed or not.
pub async fn with_browser<F, Fut>(test: F) -> Result<()>
where
    F: FnOnce(fantoccini::Client) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let (browser, port) = Browser::start()?;
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", browser.profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium_binary(), "args": args }),
    );
    // Keep the page's console, for [`console_errors`].
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({ "browser": "ALL" }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut attempt = 0;
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match fantoccini::ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(e) if attempt < 50 => {
                attempt += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("opening a WebDriver session"),
        }
    };
    let outcome = test(client.clone()).await;
    if outcome.is_err() {
        // Leave evidence for whoever reads the failure.
        let dir = workspace_root().join("target/browser-failures");
        if std::fs::create_dir_all(&dir).is_ok() {
            let stamp = format!("{}-{port}", std::process::id());
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{stamp}.png")), png);
            }
            if let Ok(html) = client.source().await {
                let _ = std::fs::write(dir.join(format!("{stamp}.html")), html);
            }
            eprintln!("browser state saved in {}/{stamp}.*", dir.display());
        }
    }
    let _ = client.close().await;
    drop(browser);
    outcome
}

/// The page's console messages at level error (SEVERE) since the last call:
/// script errors, failed loads, panics of the wasm app.
pub async fn console_errors(c: &fantoccini::Client) -> Result<Vec<String>> {
    let log = c.issue_cmd(BrowserLog).await?;
    Ok(log
        .as_array()
        .context("the browser log is a list")?
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// ChromeDriver's browser-log command, which WebDriver itself lacks.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// axe-core's script, which `make browser` installs from npm (or the file
/// `SPAWNLAB_AXE` names).
pub fn axe_source() -> Result<String> {
    let path = match std::env::var_os("SPAWNLAB_AXE") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".local/share/spawnlab/axe-core/node_modules/axe-core/axe.min.js"),
    };
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading axe-core from {} (install it with `make browser`)",
            path.display()
        )
    })
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}
