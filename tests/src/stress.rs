//! Helpers for the load and soak tests: a protocol client that may connect
//! from any loopback address and may send what no browser would (binary
//! frames, garbage, oversize frames), and a process's footprint (resident
//! memory, open files) from `/proc`.

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use protocol::{ClientMessage, ServerEvent};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A protocol client over a real WebSocket, opened from a chosen source
/// address, that can also send frames a browser never would.
pub struct RawClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The address the server sees this connection come from.
    pub local: SocketAddr,
}

/// What one read from the socket gave.
#[derive(Debug)]
pub enum Frame {
    /// A protocol event.
    Event(ServerEvent),
    /// A close frame, with its code (0 when it had none) and reason.
    Close(u16, String),
    /// The connection ended without a close frame.
    Ended(String),
}

impl RawClient {
    /// Connect to `url` (`ws://host:port/ws?...`) from `source` (any
    /// address on this host; on Linux loopback answers every 127/8
    /// address) and read the server's `hello`.
    pub async fn connect_from(
        url: &str,
        server: SocketAddr,
        source: IpAddr,
        within: Duration,
    ) -> Result<(Self, ServerEvent)> {
        let socket = match source {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding a socket to {source}"))?;
        let stream = tokio::time::timeout(within, socket.connect(server))
            .await
            .with_context(|| format!("connecting to {server} from {source}: timed out"))?
            .with_context(|| format!("connecting to {server} from {source}"))?;
        let local = stream.local_addr()?;
        let (socket, _) = tokio::time::timeout(
            within,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .with_context(|| format!("the upgrade of {url} from {local}: timed out"))?
        .with_context(|| format!("the upgrade of {url} from {local}"))?;
        let mut client = RawClient { socket, local };
        let hello = client.event(within).await?;
        Ok((client, hello))
    }

    /// Connect from 127.0.0.1.
    pub async fn connect(
        url: &str,
        server: SocketAddr,
        within: Duration,
    ) -> Result<(Self, ServerEvent)> {
        Self::connect_from(url, server, [127, 0, 0, 1].into(), within).await
    }

    /// Send a request.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<()> {
        self.send_text(&serde_json::to_string(msg)?).await
    }

    /// Send a text frame, well-formed or not.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Send a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.socket.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// The next protocol event, close or end, waiting at most `within`
    /// (`None` if nothing came). Pings and pongs are skipped; a frame that
    /// is not a protocol event is an error.
    pub async fn frame(&mut self, within: Duration) -> Result<Option<Frame>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.socket.next()).await else {
                return Ok(None);
            };
            return Ok(Some(match frame {
                Some(Ok(Message::Text(text))) => Frame::Event(
                    serde_json::from_str(text.as_str())
                        .with_context(|| format!("the server sent a non-protocol frame: {text}"))?,
                ),
                Some(Ok(Message::Close(Some(close)))) => {
                    Frame::Close(close.code.into(), close.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => Frame::Close(0, String::new()),
                Some(Ok(Message::Binary(bytes))) => {
                    bail!("the server sent a binary frame of {} bytes", bytes.len())
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => Frame::Ended(e.to_string()),
                None => Frame::Ended("end of stream".into()),
            }));
        }
    }

    /// The next protocol event; an error if the socket closes or nothing
    /// comes within `within`.
    pub async fn event(&mut self, within: Duration) -> Result<ServerEvent> {
        match self.frame(within).await? {
            Some(Frame::Event(ev)) => Ok(ev),
            Some(other) => bail!("expected an event, the connection gave {other:?}"),
            None => bail!("no event within {within:?}"),
        }
    }

    /// Close the connection as a browser closing its tab would, without
    /// waiting for the server's answer.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

/// What a process holds, from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Resident memory (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Open file descriptors (`/proc/<pid>/fd`).
    pub open_files: usize,
    /// Threads.
    pub threads: u64,
}

impl Footprint {
    /// Resident memory in MiB, for printing.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, {} open files, {} threads",
            self.rss_mib(),
            self.open_files,
            self.threads
        )
    }
}

/// `pid`'s resident memory, open files and threads.
pub fn footprint(pid: u32) -> Result<Footprint> {
    let process = procfs::process::Process::new(pid as i32)
        .with_context(|| format!("process {pid} is gone"))?;
    let status = process.status()?;
    Ok(Footprint {
        rss_kib: status.vmrss.context("no VmRSS")?,
        open_files: process.fd_count()?,
        threads: status.threads,
    })
}

/// The `p`th percentile (0–100) of `sorted`, nearest rank below.
pub fn percentile<T: Copy>(sorted: &[T], p: usize) -> T {
    sorted[(sorted.len() - 1) * p / 100]
}
