//! Build the server from [`Settings`], bind it, run it until it is stopped.
//!
//! Tests call [`Application::build`] with port 0 and read [`Application::port`];
//! `main` does the same with the real settings.
//!
//! # Stopping, and draining first
//!
//! On the shutdown signal the server stops every run, tells each learner
//! (`shutting_down`), closes their sockets and exits within
//! [`SHUTDOWN_GRACE`]. With a drain bound ([`Settings::drain`], behind a load
//! balancer) it drains first: it goes on listening, but `/readyz` answers
//! 503 "draining" (a balancer's health check takes the instance out) and a
//! new WebSocket upgrade gets 503 with a sentence (nginx's
//! `proxy_next_upstream http_503` tries another instance); a learner with
//! nothing running is told at once that the server is restarting and their
//! socket is closed, so their page reconnects elsewhere; a learner with a
//! lab running keeps it until it ends, and is told then. When every session
//! has ended, or the bound has passed, or a second signal came, the labs
//! still running are stopped as above.

use crate::calibrate::Calibrator;
use crate::engine::Learner;
use crate::engine::{Engine, Stop, StopReason};
use crate::session;
use crate::settings::Settings;
use app::compare::CalibrationSource;
use app::{shell, App, BundleVersion};
use axum::extract::ws::Message;
use axum::extract::{ConnectInfo, FromRef, RawQuery, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;

/// Frames larger than this the WebSocket layer does not read: the session
/// answers with an error and closes the connection with code 1009. The
/// engine's own, smaller cap ([`crate::engine::limits::Limits::max_message_bytes`])
/// answers with an error and keeps the connection, so only abuse reaches this one.
const WS_HARD_CAP: usize = 64 * 1024;

/// How long shutdown waits for sessions to stop their runs and say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where the built site is and how Leptos names its files.
    pub leptos_options: LeptosOptions,
    /// Runs learners' workloads.
    pub engine: Arc<Engine>,
    /// Origins besides the site's own that may open the WebSocket.
    pub allow_origins: Arc<Vec<String>>,
    /// Requested once, on SIGINT/SIGTERM; every session watches it.
    pub shutdown: Stop,
    /// Open WebSocket sessions. Upgraded connections leave hyper's own
    /// bookkeeping, so shutdown waits for them here.
    pub sessions: TaskTracker,
    /// Open WebSockets per client address, and the cap.
    pub sockets: Arc<Sockets>,
    /// Connections without a learner token each count as a learner.
    pub connections: Arc<AtomicU64>,
    /// Set when a drain begins: `/readyz` fails, new sessions are refused.
    pub draining: Draining,
    /// How often each WebSocket is pinged.
    pub ws_ping: Duration,
}

/// Whether the server is draining (see the module's documentation). Cheap
/// to clone; set once, never cleared.
#[derive(Debug, Clone)]
pub struct Draining(Arc<watch::Sender<bool>>);

impl Default for Draining {
    fn default() -> Self {
        Draining(Arc::new(watch::channel(false).0))
    }
}

impl Draining {
    /// Start draining.
    pub fn begin(&self) {
        self.0.send_if_modified(|d| !std::mem::replace(d, true));
    }

    /// True once draining has begun.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Wait until draining begins.
    pub async fn begun(&self) {
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = self.0.subscribe().wait_for(|d| *d).await;
    }
}

/// Open WebSockets per client address: one address may hold at most
/// `max` at once.
#[derive(Debug)]
pub struct Sockets {
    max: u32,
    trusted_proxies: Vec<IpAddr>,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One open WebSocket, counted against its address until dropped.
#[derive(Debug)]
pub struct SocketSlot {
    sockets: Arc<Sockets>,
    address: IpAddr,
}

impl Sockets {
    pub fn new(max: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        Sockets {
            max,
            trusted_proxies,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The client's address: the peer's own, or, when the peer is a
    /// trusted proxy, the last address it added to `X-Forwarded-For`.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(','))
            // Only the proxy's own entry: anything before it the client wrote.
            .next_back()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or(peer)
    }

    /// Count one more socket for `address`, or say how many it holds.
    fn take(self: &Arc<Self>, address: IpAddr) -> Result<SocketSlot, u32> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(address).or_insert(0);
        if *n >= self.max {
            return Err(*n);
        }
        *n += 1;
        Ok(SocketSlot {
            sockets: self.clone(),
            address,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.address);
            }
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown: Stop,
    sessions: TaskTracker,
    draining: Draining,
    /// How long running labs may go on after the signal.
    drain: Duration,
    /// Told to take no new runs when the drain begins.
    engine: Arc<Engine>,
}

impl Application {
    /// Bind the address and assemble the routes.
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.addr).await?;
        let mut leptos_options = leptos::config::get_configuration(None)
            .map_err(std::io::Error::other)?
            .leptos_options;
        leptos_options.site_root = settings.site_dir.to_string_lossy().into();
        leptos_options.site_addr = listener.local_addr()?;

        let shutdown = Stop::new();
        let draining = Draining::default();
        let sessions = TaskTracker::new();
        let engine = Arc::new({
            let engine = Engine::new(settings.limits, settings.budget)
                .with_list_dir(settings.site_dir.clone())
                .with_node(settings.node.clone());
            let engine = match settings.worker_binary {
                Some(binary) => engine.with_worker_binary(binary),
                None => engine,
            };
            #[cfg(feature = "fault-injection")]
            let engine = match settings.panic_at {
                Some(at) => engine.with_injected_panic(at),
                None => engine,
            };
            engine
        });
        // Look for Node.js before listening, not in the first learner's
        // `hello`: writing the scripts and asking `node` what it can do
        // takes a moment, and once the server listens it has no process of
        // its own running.
        engine.node().await;
        let calibrator = Arc::new(Calibrator::new(engine.clone(), shutdown.clone()));
        let figures = CalibrationSource(Arc::new(move |rerun| {
            let calibrator = calibrator.clone();
            Box::pin(async move { calibrator.get(rerun).await.map_err(|e| e.to_string()) })
        }));
        let state = AppState {
            sockets: Arc::new(Sockets::new(
                settings.max_sockets_per_address,
                settings.trusted_proxies,
            )),
            connections: Arc::new(AtomicU64::new(0)),
            sessions: sessions.clone(),
            engine: engine.clone(),
            allow_origins: Arc::new(settings.allow_origins),
            shutdown: shutdown.clone(),
            draining: draining.clone(),
            ws_ping: settings.ws_ping,
            leptos_options: leptos_options.clone(),
        };
        let routes = generate_route_list(App);
        // The bundle, from the files `cargo leptos build --release
        // --precompress` wrote beside it (`.br`, `.gz`) when the browser
        // takes them. Pages ask for it by URLs that carry its version (a
        // digest of the files): those are cached for a year, since a new
        // build is a new URL; any other request for it is revalidated
        // (a 304 when nothing changed).
        let pkg_dir = settings.site_dir.join(&*leptos_options.site_pkg_dir);
        let version = bundle_version(&pkg_dir, &leptos_options.output_name);
        let files = ServeDir::new(&pkg_dir);
        let files = match stale_precompressed(&pkg_dir) {
            None => files.precompressed_br().precompressed_gzip(),
            Some(stale) => {
                tracing::warn!(
                    "{} is older than the file it compresses (a debug build after a release \
                     one?): serving the bundle uncompressed",
                    stale.display()
                );
                files
            }
        };
        let bundle = Router::new()
            .nest_service(&format!("/{}", leptos_options.site_pkg_dir), files)
            .layer(axum::middleware::from_fn({
                let version = version.clone();
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let current = version
                        .as_deref()
                        .is_some_and(|v| request.uri().query() == Some(&format!("v={v}")));
                    async move {
                        let mut response = next.run(request).await;
                        let policy = if current && response.status().is_success() {
                            "public, max-age=31536000, immutable"
                        } else {
                            "no-cache"
                        };
                        response
                            .headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
                        response
                    }
                }
            }));
        let page_context = move || {
            provide_context(figures.clone());
            if let Some(v) = &version {
                provide_context(BundleVersion(v.clone()));
            }
        };
        let router = Router::new()
            .route("/healthz", get(health))
            .route("/readyz", get(ready))
            .route(protocol::WS_PATH, get(ws_route))
            .route("/node/{script}", get(node_script))
            .merge(bundle)
            .leptos_routes_with_context(&state, routes, page_context.clone(), {
                let options = leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler_with_context::<
                AppState,
                _,
            >(page_context, shell))
            .layer(axum::middleware::from_fn(crate::compress::html))
            .with_state(state);
        Ok(Application {
            listener,
            router,
            shutdown,
            sessions,
            draining,
            drain: settings.drain,
            engine,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serve until `signal` completes; then drain if a drain bound is set
    /// (see the module's documentation), stop accepting, stop every run,
    /// let sessions tell their learners, and return once they have closed
    /// (or after [`SHUTDOWN_GRACE`]).
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_until_stopped_or_hurried(signal, std::future::pending())
            .await
    }

    /// [`Application::run_until_stopped`], where `hurry` (a second signal)
    /// ends a drain at once.
    pub async fn run_until_stopped_or_hurried(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
        hurry: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        let (draining, drain, sessions, engine) = (
            self.draining.clone(),
            self.drain,
            self.sessions.clone(),
            self.engine.clone(),
        );
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.await;
            if !drain.is_zero() {
                tracing::info!(
                    "draining: /readyz answers 503, new lab connections are refused, and \
                     running labs have up to {drain:?} to finish (signal again to stop them now)"
                );
                draining.begin();
                // A learner still connected may not start another lab.
                engine.stop_accepting();
                // Sessions still end by themselves; `wait` resolves once
                // the last one has.
                sessions.close();
                tokio::select! {
                    () = sessions.wait() => tracing::info!("drained: every lab connection has ended"),
                    () = tokio::time::sleep(drain) => tracing::warn!(
                        "{} lab connections still open after {drain:?}: stopping their runs",
                        sessions.len()
                    ),
                    () = hurry => tracing::warn!("signalled again: stopping the runs left"),
                }
            }
            tracing::info!("shutting down: stopping runs and closing connections");
            shutdown.request(StopReason::Shutdown);
        })
        .await?;
        self.sessions.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} sessions still open after {SHUTDOWN_GRACE:?}; exiting anyway",
                self.sessions.len()
            );
        }
        Ok(())
    }
}

/// Readiness, for a load balancer's health check: 200 "ready", or 503
/// "draining" from the shutdown signal on, while running labs finish.
/// (`/healthz` stays 200 while the process serves at all.)
async fn ready(State(state): State<AppState>) -> Response {
    let (status, body) = if state.draining.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "protocol": protocol::PROTOCOL_VERSION,
        "max_workers": state.engine.limits().max_workers,
    }))
}

/// The Node.js scripts the labs run, as plain text, for learners to read
/// and to run at home.
async fn node_script(axum::extract::Path(script): axum::extract::Path<String>) -> Response {
    match crate::engine::node::scripts::source(&script) {
        Some(text) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("there is no script {script:?}; the labs run main_thread.js, worker_threads.js, child_process.js and cluster.js"),
        )
            .into_response(),
    }
}

async fn ws_route(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    State(state): State<AppState>,
) -> Response {
    if state.draining.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            "this spawnlab server is shutting down and takes no new lab connections: \
             reconnect in a moment (behind a load balancer, to another instance)",
        )
            .into_response();
    }
    if let Err(origin) = check_origin(&headers, &state.allow_origins) {
        tracing::warn!(%origin, "refused a WebSocket from a foreign origin");
        return (
            StatusCode::FORBIDDEN,
            format!("origin {origin} may not open this WebSocket"),
        )
            .into_response();
    }
    let learner = match learner(query.as_deref()) {
        Ok(Some(token)) => Learner::new(format!("token:{token}")),
        Ok(None) => {
            let n = state.connections.fetch_add(1, Ordering::Relaxed);
            Learner::new(format!("connection:{n}"))
        }
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let address = state.sockets.client(peer.ip(), &headers);
    let slot = match state.sockets.take(address) {
        Ok(slot) => slot,
        Err(open) => {
            tracing::warn!(%address, open, "refused a WebSocket: too many from one address");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{address} already has {open} lab connections open, the most one address \
                     may have (--max-sockets-per-address); close a tab and reload"
                ),
            )
                .into_response();
        }
    };
    ws.max_message_size(WS_HARD_CAP)
        .max_frame_size(WS_HARD_CAP)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let stream = stream.map(|frame| frame.map_err(read_error));
            let activity = Arc::new(Activity::default());
            let sink = Observed {
                inner: sink,
                activity: activity.clone(),
            };
            // The session's own stop: the server's shutdown, or the drain
            // once this learner has nothing running.
            let stop = Stop::new();
            let session = session::serve(
                state.engine,
                learner,
                sink,
                stream,
                stop.clone(),
                state.ws_ping,
            );
            let closer = async move {
                tokio::select! {
                    _ = state.shutdown.requested() => {}
                    () = async {
                        state.draining.begun().await;
                        activity.idle().await;
                    } => activity.drained.store(true, Ordering::Relaxed),
                }
                stop.request(StopReason::Shutdown);
                std::future::pending::<()>().await
            };
            state.sessions.track_future(async move {
                tokio::select! {
                    () = session => {}
                    () = closer => {}
                }
                // The address's place is held until the session has ended.
                drop(slot);
            })
        })
}

/// What a session has running, as its outgoing events tell: a run is open
/// from its first event until its `run_finished` (or the `busy` error of a
/// run the queue turned away). The drain closes a session once nothing is
/// open. Read from the wire rather than asked of the session, so the
/// session needs no part in the drain; a run missed here only keeps its
/// session open until the drain bound.
#[derive(Debug)]
struct Activity {
    open: Mutex<HashSet<protocol::RunId>>,
    /// True while nothing is open.
    idle: watch::Sender<bool>,
    /// Set when the drain closes this session.
    drained: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            open: Mutex::new(HashSet::new()),
            idle: watch::channel(true).0,
            drained: AtomicBool::new(false),
        }
    }
}

/// The parts of an outgoing event [`Activity`] reads.
#[derive(serde::Deserialize)]
struct Seen {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    run: Option<protocol::RunId>,
    #[serde(default)]
    code: Option<String>,
}

/// What a learner closed by the drain reads. The session's own notice says
/// that running labs are stopped, which is not so here: there were none.
const DRAINED_NOTICE: &str = "this server is restarting: nothing of yours was left running \
                              here, and the page reconnects in a moment (to another server, \
                              where there are several)";

impl Activity {
    /// Note an outgoing text frame; `Some` replaces it.
    fn note(&self, text: &str) -> Option<String> {
        let seen: Seen = serde_json::from_str(text).ok()?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut reword = false;
        match (seen.kind.as_str(), seen.run, seen.code.as_deref()) {
            ("run_finished", Some(run), _) | ("error", Some(run), Some("busy")) => {
                open.remove(&run);
            }
            ("error", None, Some("shutting_down")) => {
                reword = self.drained.load(Ordering::Relaxed) && open.is_empty();
            }
            ("error", ..) => {}
            (_, Some(run), _) => {
                open.insert(run);
            }
            _ => {}
        }
        let idle = open.is_empty();
        self.idle
            .send_if_modified(|i| std::mem::replace(i, idle) != idle);
        reword.then(|| {
            serde_json::to_string(&protocol::ServerEvent::Error {
                run: None,
                code: protocol::ErrorCode::ShuttingDown,
                field: None,
                message: DRAINED_NOTICE.into(),
            })
            .expect("events always serialize")
        })
    }

    /// Wait until nothing is open.
    async fn idle(&self) {
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = self.idle.subscribe().wait_for(|i| *i).await;
    }
}

/// A session's sink, with its outgoing events noted by [`Activity`].
struct Observed<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: futures_util::Sink<Message> + Unpin> futures_util::Sink<Message> for Observed<S> {
    type Error = S::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), S::Error> {
        let item = match &item {
            Message::Text(text) => match self.activity.note(text.as_str()) {
                Some(replaced) => Message::Text(replaced.into()),
                None => item,
            },
            _ => item,
        };
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A `.br` or `.gz` in `dir` older than the file it compresses: a later
/// build replaced the file and left the compressed copy stale, and serving
/// it would hand browsers an old bundle.
/// The bundle's version: the first 16 hex digits of a SHA-256 over its
/// JavaScript, wasm and CSS, or `None` when one of them is missing.
fn bundle_version(pkg_dir: &std::path::Path, name: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for ext in ["js", "wasm", "css"] {
        digest.update(std::fs::read(pkg_dir.join(format!("{name}.{ext}"))).ok()?);
    }
    Some(
        digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn stale_precompressed(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("br" | "gz")))
        .find(|p| match (modified(p), modified(&p.with_extension(""))) {
            (Some(packed), Some(original)) => packed < original,
            _ => false,
        })
}

/// The learner token in `?learner=...`, if any: the page keeps one per
/// browser, so the queue can be fair between learners however many tabs
/// each opens.
fn learner(query: Option<&str>) -> Result<Option<&str>, String> {
    let Some(token) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("learner="))
    else {
        return Ok(None);
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if (8..=64).contains(&token.len()) && token.chars().all(allowed) {
        Ok(Some(token))
    } else {
        Err("learner must be 8 to 64 characters: letters, digits, '-' or '_'".into())
    }
}

/// What went wrong reading a frame: too large (tungstenite refused it by
/// its header, and the rest of it is still on the wire), or anything else.
fn read_error(error: axum::Error) -> session::ReadError {
    use tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast::<Error>().map(|e| *e) {
        Ok(Error::Capacity(CapacityError::MessageTooLong { size, .. })) => {
            session::ReadError::TooLarge { size }
        }
        _ => session::ReadError::Broken,
    }
}

/// Browsers always send `Origin` on a WebSocket upgrade; another site's page
/// must not be able to run work here with a visitor's browser. Clients that
/// are not browsers (the CLI, tests, curl) send none and are let in.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    // Behind a proxy (Trunk's dev server, nginx) `Host` names the back end and
    // the page's own host travels in `X-Forwarded-Host`. A page cannot set
    // that header on a WebSocket, so trusting it does not let a foreign page in.
    let hosts = [header::HOST.as_str(), "x-forwarded-host"].map(|name| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .unwrap_or_default()
    });
    let same_site = origin.split_once("://").is_some_and(|(_, authority)| {
        hosts
            .iter()
            .any(|host| !host.is_empty() && authority == *host)
    });
    if same_site || allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(origin.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn the_sites_own_origin_may_connect() {
        assert!(check_origin(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            &[]
        )
        .is_ok());
        assert!(check_origin(&headers(None, "127.0.0.1:3000"), &[]).is_ok());
    }

    #[test]
    fn a_proxied_page_is_recognised_by_its_forwarded_host() {
        let mut h = headers(Some("http://127.0.0.1:8080"), "127.0.0.1");
        assert!(check_origin(&h, &[]).is_err());
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("127.0.0.1:8080"),
        );
        assert!(check_origin(&h, &[]).is_ok());
    }

    #[test]
    fn other_origins_need_to_be_allowed() {
        let h = headers(Some("http://evil.example"), "127.0.0.1:3000");
        assert_eq!(check_origin(&h, &[]), Err("http://evil.example".into()));
        assert!(check_origin(&h, &["http://evil.example".into()]).is_ok());
    }

    #[test]
    fn a_learner_token_is_read_from_the_query_and_checked() {
        assert_eq!(learner(None), Ok(None));
        assert_eq!(learner(Some("x=1")), Ok(None));
        assert_eq!(
            learner(Some("x=1&learner=0123abcd-EF_9")),
            Ok(Some("0123abcd-EF_9"))
        );
        for bad in [
            "learner=short",
            "learner=has%20space1",
            &format!("learner={}", "a".repeat(65)),
        ] {
            let error = learner(Some(bad)).unwrap_err();
            assert!(
                error.starts_with("learner must be 8 to 64"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn an_address_holds_at_most_its_share_of_sockets() {
        let sockets = Arc::new(Sockets::new(2, Vec::new()));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = sockets.take(a).unwrap();
        let _second = sockets.take(a).unwrap();
        assert_eq!(
            sockets.take(a).map(drop),
            Err(2),
            "a third from one address"
        );
        let _other = sockets.take(b).expect("another address is not affected");
        drop(first);
        let _again = sockets.take(a).expect("a closed socket frees its place");
    }

    fn event(ev: protocol::ServerEvent) -> String {
        serde_json::to_string(&ev).unwrap()
    }

    fn notice() -> String {
        event(protocol::ServerEvent::Error {
            run: None,
            code: protocol::ErrorCode::ShuttingDown,
            field: None,
            message: "the server is shutting down".into(),
        })
    }

    #[test]
    fn a_run_is_open_from_its_first_event_to_its_end() {
        use protocol::ServerEvent;
        let activity = Activity::default();
        let idle = || *activity.idle.borrow();
        assert!(idle());
        assert_eq!(
            activity.note(&event(ServerEvent::Accepted { run: 3 })),
            None
        );
        assert!(!idle(), "an accepted run is open");
        // A refusal of another request names a run but opens nothing.
        activity.note(&event(ServerEvent::Error {
            run: Some(4),
            code: protocol::ErrorCode::InvalidField,
            field: Some("spec.workers".into()),
            message: "spec.workers: at most 16".into(),
        }));
        activity.note(&event(ServerEvent::Queued {
            run: 5,
            position: 1,
            wait_ms: None,
        }));
        activity.note(&event(ServerEvent::Error {
            run: Some(5),
            code: protocol::ErrorCode::Busy,
            field: None,
            message: "the queue is full".into(),
        }));
        assert!(!idle(), "run 3 is still open");
        activity.note(&event(ServerEvent::RunFinished {
            run: 3,
            summary: protocol::RunSummary::empty(protocol::Outcome::Completed),
        }));
        assert!(idle(), "every run has ended: {:?}", activity.open);
        activity.note("not json at all");
        assert!(idle());
    }

    #[test]
    fn only_a_session_closed_by_the_drain_gets_the_drained_notice() {
        let activity = Activity::default();
        assert_eq!(activity.note(&notice()), None, "a plain shutdown");
        activity.drained.store(true, Ordering::Relaxed);
        let reworded = activity.note(&notice()).expect("reworded");
        let ev: protocol::ServerEvent = serde_json::from_str(&reworded).unwrap();
        let protocol::ServerEvent::Error { code, message, .. } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(code, protocol::ErrorCode::ShuttingDown);
        assert!(message.contains("reconnects"), "{message}");
        // A run caught by the stop after all: the stop's own words stand.
        activity.note(&event(protocol::ServerEvent::Accepted { run: 1 }));
        assert_eq!(activity.note(&notice()), None);
    }

    #[test]
    fn draining_is_set_once() {
        let draining = Draining::default();
        let other = draining.clone();
        assert!(!other.is_draining());
        draining.begin();
        draining.begin();
        assert!(other.is_draining());
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let sockets = Sockets::new(2, vec![proxy]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9"),
        );
        assert_eq!(
            sockets.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "the address the proxy itself added"
        );
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            sockets.client(stranger, &h),
            stranger,
            "a header anyone can send"
        );
    }
}
