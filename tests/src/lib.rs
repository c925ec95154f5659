//! Helpers for spawnlab's end-to-end tests: a server (in this process, or the
//! real `spawnlab` binary), a WebSocket client speaking the protocol, plain
//! HTTP requests, and a headless Chromium driven over WebDriver.
//!
//! Every helper cleans up after itself on drop — servers get SIGTERM, the
//! browser's whole process group is killed — so a failing assertion leaves
//! nothing running behind it.
//!
//! The browser and binary tests need what `make test` builds first: the site
//! in `target/site` (`cargo leptos build`) and the binary
//! (`cargo build --workspace`).
//!
//! # Layout
//!
//! - [`server`]: the server under test, in process or as the real binary.
//! - [`ws`]: a WebSocket client speaking the protocol.
//! - [`http`]: plain HTTP requests.
//! - [`procs`]: processes and process groups, from `/proc`.
//! - [`browser`]: headless Chromium over WebDriver.
//! - [`deploy`]: the shipped `deploy/` files (nginx) run for real on loopback.

use anyhow::{bail, Result};
use std::future::Future;
use std::time::Duration;

pub mod browser;
pub mod deploy;
pub mod http;
pub mod procs;
pub mod server;
pub mod stress;
pub mod ws;

pub use browser::{axe_source, console_errors, with_browser};
pub use http::{http_get, http_get_until, http_get_with, http_post_form};
pub use procs::{
    children_of, env_of, group_is_gone, group_members, group_of, is_running, marker_is_gone,
    marker_of, process, processes, with_marker,
};
pub use server::{
    server_binary, site_dir, spawn_app, spawn_app_with, test_settings, workspace_root,
    ServerProcess, TestApp,
};
pub use stress::{footprint, percentile, Footprint, Frame, RawClient};
pub use ws::{WsClient, EVENT_TIMEOUT};

/// Poll `check` every 50 ms until it returns `Some`, or fail after `within`.
pub async fn eventually<T, Fut>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
