//! Build the server from [`Settings`], bind it, run it until it is stopped.
//!
//! Tests call [`Application::build`] with port 0 and read [`Application::port`];
//! `main` does the same with the real settings.

use crate::calibrate::Calibrator;
use crate::engine::{Engine, Stop, StopReason};
use crate::session;
use crate::settings::Settings;
use app::compare::CalibrationSource;
use app::{shell, App};
use axum::extract::{FromRef, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

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
        let calibrator = Arc::new(Calibrator::new(engine.clone(), shutdown.clone()));
        let figures = CalibrationSource(Arc::new(move |rerun| {
            let calibrator = calibrator.clone();
            Box::pin(async move { calibrator.get(rerun).await.map_err(|e| e.to_string()) })
        }));
        let state = AppState {
            sessions: sessions.clone(),
            engine,
            allow_origins: Arc::new(settings.allow_origins),
            shutdown: shutdown.clone(),
            leptos_options: leptos_options.clone(),
        };
        let routes = generate_route_list(App);
        let router = Router::new()
            .route("/healthz", get(health))
            .route(protocol::WS_PATH, get(ws_route))
            .route("/node/{script}", get(node_script))
            .leptos_routes_with_context(&state, routes, move || provide_context(figures.clone()), {
                let options = leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
            .with_state(state);
        Ok(Application {
            listener,
            router,
            shutdown,
            sessions,
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

    /// Serve until `signal` completes; then stop accepting, stop every run,
    /// let sessions tell their learners, and return once they have closed
    /// (or after [`SHUTDOWN_GRACE`]).
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.await;
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
    State(state): State<AppState>,
) -> Response {
    if let Err(origin) = check_origin(&headers, &state.allow_origins) {
        tracing::warn!(%origin, "refused a WebSocket from a foreign origin");
        return (
            StatusCode::FORBIDDEN,
            format!("origin {origin} may not open this WebSocket"),
        )
            .into_response();
    }
    ws.max_message_size(WS_HARD_CAP)
        .max_frame_size(WS_HARD_CAP)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let stream = stream.map(|frame| frame.map_err(read_error));
            state
                .sessions
                .track_future(session::serve(state.engine, sink, stream, state.shutdown))
        })
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
    use axum::http::HeaderValue;

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
}
