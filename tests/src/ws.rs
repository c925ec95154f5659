//! A protocol client over a real WebSocket.

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use protocol::{ClientMessage, ServerEvent};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

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

    /// Wrap a socket opened some other way (from a chosen source address,
    /// with extra headers: see [`crate::deploy::upgrade_from`]) whose
    /// `hello` has been read.
    pub fn from_socket(
        socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    ) -> Self {
        WsClient { socket }
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

    /// The close frame's code and reason, reading past any other frames.
    /// Fails if the connection ends without one (dropped, or reset).
    pub async fn close_frame(&mut self) -> Result<(u16, String)> {
        loop {
            let frame = tokio::time::timeout(EVENT_TIMEOUT, self.socket.next())
                .await
                .context("no close frame within the timeout")?;
            match frame {
                Some(Ok(Message::Close(Some(close)))) => {
                    return Ok((close.code.into(), close.reason.to_string()))
                }
                Some(Ok(Message::Close(None))) => bail!("a close frame with no code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("the connection ended without a close frame: {e}"),
                None => bail!("the connection ended without a close frame"),
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
