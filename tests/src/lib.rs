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

use anyhow::{bail, Context, Result};
use app::protocol::{ClientMessage, ServerEvent};
use futures_util::{SinkExt, StreamExt};
use spawnlab::settings::Settings;
use spawnlab::startup::Application;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Where `cargo leptos build` puts the site.
pub fn site_dir() -> PathBuf {
    workspace_root().join("target/site")
}

/// A server running inside the test process, on a free loopback port.
pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for an in-process test server: port 0, the built site, workers
/// from the real binary. Adjust and pass to [`spawn_app_with`].
pub fn test_settings() -> Settings {
    Settings::for_tests(site_dir(), server_binary())
}

/// Start the application in this process, as `main` would, on port 0.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

/// [`spawn_app`] with adjusted settings.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("the server binds a loopback port");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// `ws://…/ws` on this server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, app::protocol::WS_PATH)
    }

    /// Shut down as SIGTERM would, and wait until the server has returned.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .expect("shut down once")
            .await
            .expect("the server task does not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A protocol client over a real WebSocket.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

/// How long any single event may take to arrive before a test gives up.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

impl WsClient {
    /// Connect and read the server's `hello`.
    pub async fn connect(url: &str) -> Result<(Self, ServerEvent)> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut client = WsClient { socket };
        let hello = client.next().await?;
        Ok((client, hello))
    }

    /// Send a raw text frame, well-formed or not.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Send a request.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<()> {
        self.send_text(&serde_json::to_string(msg)?).await
    }

    /// The next event; an error if the socket closes or nothing comes.
    pub async fn next(&mut self) -> Result<ServerEvent> {
        loop {
            let frame = tokio::time::timeout(EVENT_TIMEOUT, self.socket.next())
                .await
                .context("no event within the timeout")?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .with_context(|| format!("the server sent a non-protocol frame: {text}"))
                }
                Some(Ok(Message::Close(_))) | None => bail!("the server closed the socket"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Every event up to and including the first that satisfies `last`.
    pub async fn until(&mut self, last: impl Fn(&ServerEvent) -> bool) -> Result<Vec<ServerEvent>> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next().await?;
            let done = last(&ev);
            seen.push(ev);
            if done {
                return Ok(seen);
            }
        }
    }

    /// True once the server has closed the socket (or it has closed under us).
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(EVENT_TIMEOUT, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A plain HTTP/1.1 GET: status code and body. No client library, so the
/// test sees exactly what a browser with JavaScript off would receive.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    http_request(addr, "GET", path, None).await
}

/// A plain HTTP/1.1 POST of a form body, as a server function call is made.
pub async fn http_post_form(addr: SocketAddr, path: &str, form: &str) -> Result<(u16, String)> {
    http_request(addr, "POST", path, Some(form)).await
}

async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(form) = form {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(form.unwrap_or_default());
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The real `spawnlab` binary, started as a self-hosting operator would.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

/// The binary cargo built beside this test.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPAWNLAB_BIN") {
        return path.into();
    }
    // target/debug/deps/<test> -> target/debug/spawnlab
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .join("spawnlab")
}

impl ServerProcess {
    /// Start the binary on a free port with the built site; `extra` adds
    /// flags. Waits for the line announcing the address.
    pub fn start(extra: &[&str]) -> Result<Self> {
        let bin = server_binary();
        if !bin.exists() {
            bail!(
                "{} does not exist: run `make test`, or `cargo build --workspace` first",
                bin.display()
            );
        }
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0", "--site-dir"])
            .arg(site_dir())
            .args(extra)
            .env_remove("LEPTOS_SITE_ADDR")
            .env_remove("LEPTOS_SITE_ROOT")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .context("the server printed nothing")?
            .context("reading the server's output")?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in {line:?}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServerProcess { child, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, app::protocol::WS_PATH)
    }

    /// SIGKILL the server: no cleanup code of its own runs.
    pub fn kill_hard(&mut self) -> Result<std::process::ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// Send SIGTERM and wait up to `within` for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        signal(self.child.id() as i32, libc::SIGTERM);
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("the server did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One process, as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// R, S, D, Z (zombie), …
    pub state: char,
}

/// Every process on the host, from `/proc`.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may contain spaces.
        let mut rest = stat[stat.rfind(')')? + 2..].split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        let pgid = rest.next()?.parse().ok()?;
        Some(ProcInfo {
            pid,
            ppid,
            pgid,
            state,
        })
    })
    .collect()
}

/// Processes still alive (zombies count: nobody has reaped them) in `pgid`.
pub fn group_members(pgid: u32) -> Vec<ProcInfo> {
    processes().into_iter().filter(|p| p.pgid == pgid).collect()
}

/// Children of `pid`, zombies included.
pub fn children_of(pid: u32) -> Vec<ProcInfo> {
    processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// True while `pid` exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    processes().iter().any(|p| p.pid == pid && p.state != 'Z')
}

/// Wait until `pgid` has no members left; fail listing them otherwise. Two
/// seconds is long for a killed process and short for the tests' workloads,
/// which all run far longer if nobody stops them.
pub async fn group_is_gone(pgid: u32) -> Result<()> {
    eventually(
        Duration::from_secs(2),
        "the run's processes to be gone",
        || async { Ok(group_members(pgid).is_empty().then_some(())) },
    )
    .await
    .with_context(|| format!("still alive in group {pgid}: {:?}", group_members(pgid)))
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid we started; it has no memory-safety effects.
    unsafe {
        libc::kill(pid, sig);
    }
}

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
        signal(-(self.driver.id() as i32), libc::SIGKILL);
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

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

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
