//! A cluster worker: `spawnlab __cluster-worker`, started by the primary.
//!
//! It serves HTTP on the cluster's port in whichever way the policy says —
//! connections handed over by the primary, accepts on the shared listening
//! socket, or its own `SO_REUSEPORT` socket — with a single-threaded event
//! loop, like a Node.js process. Every answer carries `x-worker: <index>` so
//! the load generator can count who served it; the worker keeps its own
//! count too, and reports it (with its CPU time and memory) when asked.

use super::channel::Channel;
use super::{FromWorker, ToWorker};
use crate::engine::measure::{memory_of_self, micros, process_cpu_time};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use protocol::{Memory, SchedPolicy, Workload};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// What every request does, and who answers it.
struct Service {
    index: u32,
    workload: Workload,
    served: AtomicU64,
}

impl Service {
    async fn answer(&self, _req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        match self.workload {
            Workload::HttpCpu { ms } => burn(Duration::from_millis(ms)),
            Workload::HttpSleep { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            _ => {}
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        Response::builder()
            .header("x-worker", self.index)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(format!(
                "hello from worker {}\n",
                self.index
            ))))
            .expect("a static response is valid")
    }
}

/// Spin on the CPU for `d`, blocking this worker's loop as CPU-bound
/// JavaScript would.
/// Use `d` of this thread's CPU time. Counted on the thread's own clock,
/// not the wall clock, so a request costs the same CPU however many
/// processes share the cores (spinning for wall time would cost less CPU
/// the more often the worker is preempted).
fn burn(d: Duration) {
    let start = crate::engine::measure::thread_cpu_time();
    while crate::engine::measure::thread_cpu_time().saturating_sub(start) < d {
        std::hint::spin_loop();
    }
}

/// Serve one connection until the client closes it.
fn serve(service: Arc<Service>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(service.answer(req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
}

/// Accept connections on `listener` for as long as the worker lives.
async fn accept_loop(service: Arc<Service>, listener: TcpListener) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            serve(service.clone(), stream);
        }
    }
}

/// A listening socket of its own on `port`, sharing the port with the other
/// workers through `SO_REUSEPORT`.
fn reuse_port_listener(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseport(true)?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

fn std_to_tokio_listener(fd: OwnedFd) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// The worker's life: set up serving as told, say ready, then serve until
/// the primary closes the channel.
pub fn worker_main() -> ExitCode {
    // The primary started this process with the channel as its stdin.
    let Ok(stdin) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return ExitCode::FAILURE;
    };
    let channel = Arc::new(Channel::from_fd(stdin));
    let (index, policy, port, workload, listener_fd) = match channel.recv::<ToWorker>() {
        Ok(Some((
            ToWorker::Serve {
                index,
                policy,
                port,
                workload,
            },
            fd,
        ))) => (index, policy, port, workload, fd),
        _ => return ExitCode::FAILURE,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return ExitCode::FAILURE,
    };
    let service = Arc::new(Service {
        index,
        workload,
        served: AtomicU64::new(0),
    });
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel::<OwnedFd>();
    let ready = runtime.block_on(async {
        match policy {
            SchedPolicy::RoundRobin => Ok(()),
            SchedPolicy::SharedSocket => {
                let listener = std_to_tokio_listener(listener_fd.ok_or_else(|| {
                    std::io::Error::other("no listening socket came with serve")
                })?)?;
                tokio::spawn(accept_loop(service.clone(), listener));
                Ok(())
            }
            SchedPolicy::ReusePort => {
                let listener = reuse_port_listener(port)?;
                tokio::spawn(accept_loop(service.clone(), listener));
                Ok::<_, std::io::Error>(())
            }
        }
    });
    if let Err(e) = ready {
        eprintln!("spawnlab cluster worker {index}: {e}");
        return ExitCode::FAILURE;
    }
    if channel.send(&FromWorker::Ready, None).is_err() {
        return ExitCode::FAILURE;
    }

    // The primary's messages arrive on a plain thread; connections are
    // handed to the event loop, everything else is answered there.
    let control = {
        let (channel, service) = (channel.clone(), service.clone());
        std::thread::spawn(move || loop {
            match channel.recv::<ToWorker>() {
                Ok(Some((ToWorker::Connection, Some(fd)))) => {
                    if conn_tx.send(fd).is_err() {
                        return;
                    }
                }
                Ok(Some((ToWorker::Stats, _))) => {
                    let stats = FromWorker::Stats {
                        served: service.served.load(Ordering::Relaxed),
                        cpu_us: micros(process_cpu_time()),
                        memory: memory_of_self().unwrap_or(Memory {
                            rss_bytes: 0,
                            anon_bytes: 0,
                        }),
                    };
                    let _ = channel.send(&stats, None);
                }
                Ok(Some(_)) => {}
                // The primary is gone or done with us.
                Ok(None) | Err(_) => return,
            }
        })
    };
    runtime.block_on(async {
        let handed_over = async {
            while let Some(fd) = conn_rx.recv().await {
                let stream = std::net::TcpStream::from(fd);
                if stream.set_nonblocking(true).is_ok() {
                    if let Ok(stream) = TcpStream::from_std(stream) {
                        serve(service.clone(), stream);
                    }
                }
            }
        };
        handed_over.await;
    });
    let _ = control.join();
    ExitCode::SUCCESS
}
