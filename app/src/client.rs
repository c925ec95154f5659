//! The browser's end of the `/ws` WebSocket.
//!
//! In the browser, a [`Connection`] opens the socket, hands every
//! [`ServerEvent`] to a callback, and reconnects after a pause if the socket
//! drops. On the server (rendering HTML) there is no socket: the same type
//! exists but never connects, so components need no `cfg` of their own.

use protocol::{ClientMessage, ServerEvent};

/// Connection state, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Open,
    /// Closed; a new attempt follows shortly.
    Lost,
}

impl Link {
    /// The page's name for it (`data-link`), which tests wait on.
    pub fn name(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Open => "open",
            Link::Lost => "lost",
        }
    }
}

#[cfg(any(feature = "hydrate", feature = "csr"))]
mod browser {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{MessageEvent, WebSocket};

    /// Pause before reconnecting after the socket closes.
    const RETRY: Duration = Duration::from_secs(2);

    /// The handlers attached to the current socket. Kept here, not leaked:
    /// a reconnect detaches and drops the previous socket's handlers, so a
    /// server that is down for an hour costs nothing per attempt.
    struct Handlers {
        _open: Closure<dyn FnMut()>,
        _message: Closure<dyn FnMut(MessageEvent)>,
        _close: Closure<dyn FnMut()>,
    }

    struct Inner {
        url: String,
        socket: RefCell<Option<WebSocket>>,
        handlers: RefCell<Option<Handlers>>,
        on_event: Box<dyn Fn(ServerEvent)>,
        on_link: Box<dyn Fn(Link)>,
        /// Set by [`Connection::close`]: do not reconnect.
        closing: Cell<bool>,
    }

    /// A self-reconnecting WebSocket speaking the protocol.
    #[derive(Clone)]
    pub struct Connection(Rc<Inner>);

    impl Connection {
        /// Connect to the site's back end.
        pub fn open(
            on_event: impl Fn(ServerEvent) + 'static,
            on_link: impl Fn(Link) + 'static,
        ) -> Self {
            let conn = Connection(Rc::new(Inner {
                url: ws_url(),
                socket: RefCell::new(None),
                handlers: RefCell::new(None),
                on_event: Box::new(on_event),
                on_link: Box::new(on_link),
                closing: Cell::new(false),
            }));
            conn.connect();
            conn
        }

        fn connect(&self) {
            self.detach();
            (self.0.on_link)(Link::Connecting);
            let ws = match WebSocket::new(&self.0.url) {
                Ok(ws) => ws,
                Err(_) => {
                    self.retry();
                    return;
                }
            };
            let inner = Rc::downgrade(&self.0);
            let on_open = Closure::<dyn FnMut()>::new({
                let inner = inner.clone();
                move || {
                    if let Some(inner) = inner.upgrade() {
                        (inner.on_link)(Link::Open);
                    }
                }
            });
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
                let inner = inner.clone();
                move |e: MessageEvent| {
                    let (Some(inner), Some(text)) = (inner.upgrade(), e.data().as_string()) else {
                        return;
                    };
                    // Not serde's derive: `protocol::decode` reads the same
                    // JSON with a fraction of the wasm.
                    match protocol::decode::server_event(&text) {
                        Ok(ev) => (inner.on_event)(ev),
                        Err(err) => leptos::logging::warn!("unreadable event {text}: {err}"),
                    }
                }
            });
            let on_close = Closure::<dyn FnMut()>::new(move || {
                if let Some(inner) = inner.upgrade() {
                    (inner.on_link)(Link::Lost);
                    Connection(inner).retry();
                }
            });
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            *self.0.handlers.borrow_mut() = Some(Handlers {
                _open: on_open,
                _message: on_message,
                _close: on_close,
            });
            *self.0.socket.borrow_mut() = Some(ws);
        }

        /// Unhook the previous socket, if any, and drop its handlers: the
        /// browser must never call a handler that has been freed.
        fn detach(&self) -> Option<WebSocket> {
            let old = self.0.socket.borrow_mut().take();
            if let Some(ws) = &old {
                ws.set_onopen(None);
                ws.set_onmessage(None);
                ws.set_onclose(None);
            }
            self.0.handlers.borrow_mut().take();
            old
        }

        fn retry(&self) {
            if self.0.closing.get() {
                return;
            }
            let weak = Rc::downgrade(&self.0);
            leptos::prelude::set_timeout(
                move || {
                    if let Some(inner) = weak.upgrade() {
                        Connection(inner).connect();
                    }
                },
                RETRY,
            );
        }

        /// Send a request; false when the socket is not open.
        pub fn send(&self, msg: &ClientMessage) -> bool {
            let text = serde_json::to_string(msg).expect("requests always serialize");
            self.0
                .socket
                .borrow()
                .as_ref()
                .filter(|ws| ws.ready_state() == WebSocket::OPEN)
                .is_some_and(|ws| ws.send_with_str(&text).is_ok())
        }

        /// Close for good (the lab is leaving the page).
        pub fn close(&self) {
            self.0.closing.set(true);
            if let Some(ws) = self.detach() {
                let _ = ws.close();
            }
        }
    }

    /// `ws(s)://<this page's host>/ws`, unless the build was pointed at
    /// another back end with `SPAWNLAB_WS_URL` (the client-only build),
    /// with this browser's learner token.
    fn ws_url() -> String {
        let window = web_sys::window().expect("a browser window");
        let base = match option_env!("SPAWNLAB_WS_URL") {
            Some(url) => url.to_string(),
            None => {
                let location = window.location();
                let scheme = match location.protocol().ok().as_deref() {
                    Some("https:") => "wss",
                    _ => "ws",
                };
                format!(
                    "{scheme}://{}{}",
                    location.host().unwrap_or_default(),
                    protocol::WS_PATH
                )
            }
        };
        let join = if base.contains('?') { '&' } else { '?' };
        format!("{base}{join}learner={}", learner_token(&window))
    }

    /// Where the page keeps its learner token.
    const TOKEN_KEY: &str = "spawnlab-learner";

    /// This browser's learner token: the server's queue is fair between
    /// learners, and every tab of one browser is one learner. Kept in
    /// local storage; without storage, this page's own.
    fn learner_token(window: &web_sys::Window) -> String {
        let storage = window.local_storage().ok().flatten();
        if let Some(token) = storage
            .as_ref()
            .and_then(|s| s.get_item(TOKEN_KEY).ok().flatten())
        {
            if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return token;
            }
        }
        let mut bytes = [0u8; 16];
        if let Ok(crypto) = window.crypto() {
            let _ = crypto.get_random_values_with_u8_array(&mut bytes);
        }
        if bytes == [0; 16] {
            // No Web Crypto: the clock still tells two pages apart.
            let now = js_sys_now().to_bits().to_le_bytes();
            bytes[..8].copy_from_slice(&now);
        }
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(s) = storage {
            let _ = s.set_item(TOKEN_KEY, &token);
        }
        token
    }

    fn js_sys_now() -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map_or(0.0, |p| p.now() + p.time_origin())
    }
}

#[cfg(any(feature = "hydrate", feature = "csr"))]
pub use browser::Connection;

/// On the server there is nothing to connect to; pages render without it.
#[cfg(not(any(feature = "hydrate", feature = "csr")))]
#[derive(Clone)]
pub struct Connection;

#[cfg(not(any(feature = "hydrate", feature = "csr")))]
impl Connection {
    /// Never called while rendering on the server (effects run in the browser).
    pub fn open(
        _on_event: impl Fn(ServerEvent) + 'static,
        _on_link: impl Fn(Link) + 'static,
    ) -> Self {
        Connection
    }

    /// Nothing to send to.
    pub fn send(&self, _msg: &ClientMessage) -> bool {
        false
    }

    /// Nothing to close.
    pub fn close(&self) {}
}
