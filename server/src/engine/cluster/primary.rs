//! The cluster's primary: `spawnlab __cluster-primary`, a child of the server.
//!
//! Like Node's cluster primary it owns the port and the workers: it opens the
//! listening socket, starts N workers, and — depending on the policy —
//! accepts every connection itself and passes it to the next worker in turn
//! (round robin), hands the listening socket to every worker (shared socket),
//! or lets each worker open its own on the same port (`SO_REUSEPORT`). When a
//! worker dies it notices (it reaps its children) and starts a replacement.
//!
//! Running the primary as a separate process means a crash here cannot take
//! the site down; it talks to the server over its stdin and stdout with the
//! same line-delimited JSON as every other child.

use super::channel::Channel;
use super::{FromPrimary, FromWorker, ToPrimary, ToWorker, WORKER_COMMAND};
use crate::engine::ipc;
use crate::engine::spawn::{kill_process, spawn};
use nix::sys::wait::{waitpid, WaitStatus};
use protocol::{Memory, SchedPolicy, Workload};
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One worker slot; a respawned worker takes over its slot's index.
struct Slot {
    pid: u32,
    channel: Arc<Channel>,
    alive: bool,
}

/// Everything the primary's threads share.
struct Cluster {
    policy: SchedPolicy,
    workload: Workload,
    port: u16,
    /// The listening socket (round robin and shared socket), or the socket
    /// that reserves the port until the workers have bound it (reuse port).
    listener: Mutex<Option<TcpListener>>,
    slots: Mutex<Vec<Slot>>,
    /// Set once the server asked to finish: deaths are then expected.
    finishing: AtomicBool,
    /// Where lines to the server go; one writer at a time.
    out: Mutex<std::io::Stdout>,
}

impl Cluster {
    fn tell(&self, msg: &FromPrimary) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ipc::send(&mut *out, msg);
    }

    /// Start worker `index` and wait until it says it is serving.
    fn start_worker(&self, index: u32) -> std::io::Result<(u32, Arc<Channel>, Duration)> {
        let (channel, child_end) = Channel::pair()?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg(WORKER_COMMAND)
            .stdin(Stdio::from(child_end))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        // Same process group as the primary, so one killpg ends the cluster.
        let child = spawn(command, Some(std::process::id()))?;
        let listener_fd = match self.policy {
            SchedPolicy::SharedSocket => self
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|l| l.as_fd().try_clone_to_owned())
                .transpose()?,
            _ => None,
        };
        channel.send(
            &ToWorker::Serve {
                index,
                policy: self.policy,
                port: self.port,
                workload: self.workload.clone(),
            },
            listener_fd.as_ref().map(|fd| fd.as_fd()),
        )?;
        match channel.recv::<FromWorker>()? {
            Some((FromWorker::Ready, _)) => Ok((child.id(), Arc::new(channel), started.elapsed())),
            _ => Err(std::io::Error::other(format!(
                "worker {index} did not become ready"
            ))),
        }
    }
}

/// The primary's life: read `start`, run the cluster, obey `kill` and
/// `finish`, exit when the server closes the channel.
pub fn primary_main() -> ExitCode {
    let stdin = std::io::stdin();
    let mut input = BufReader::new(stdin.lock());
    let mut buf = String::new();
    let (workers, policy, workload, port) = match ipc::receive::<_, ToPrimary>(&mut input, &mut buf)
    {
        Ok(Some(ToPrimary::Start {
            workers,
            policy,
            workload,
            port,
        })) => (workers, policy, workload, port),
        _ => return ExitCode::FAILURE,
    };
    let out = std::io::stdout();
    match build(workers, policy, workload, port, out) {
        Ok(cluster) => run(cluster, workers, input, buf),
        Err(e) => {
            let mut out = std::io::stdout();
            let _ = ipc::send(
                &mut out,
                &FromPrimary::Failed {
                    message: e.to_string(),
                },
            );
            ExitCode::FAILURE
        }
    }
}

/// Open the port the way the policy needs.
fn build(
    workers: u32,
    policy: SchedPolicy,
    workload: Workload,
    port: u16,
    out: std::io::Stdout,
) -> std::io::Result<Arc<Cluster>> {
    let listener = match policy {
        SchedPolicy::RoundRobin | SchedPolicy::SharedSocket => {
            TcpListener::bind(("127.0.0.1", port))?
        }
        SchedPolicy::ReusePort => reserve_reuse_port()?,
    };
    let port = listener.local_addr()?.port();
    Ok(Arc::new(Cluster {
        policy,
        workload,
        port,
        listener: Mutex::new(Some(listener)),
        slots: Mutex::new(Vec::with_capacity(workers as usize)),
        finishing: AtomicBool::new(false),
        out: Mutex::new(out),
    }))
}

/// A listening `SO_REUSEPORT` socket on a free port, held only until the
/// workers have joined the port.
fn reserve_reuse_port() -> std::io::Result<TcpListener> {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrIn,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )?;
    listen(&fd, Backlog::new(16).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

fn run(
    cluster: Arc<Cluster>,
    workers: u32,
    mut input: BufReader<std::io::StdinLock<'static>>,
    mut buf: String,
) -> ExitCode {
    cluster.tell(&FromPrimary::Listening { port: cluster.port });
    for index in 0..workers {
        match cluster.start_worker(index) {
            Ok((pid, channel, latency)) => {
                cluster
                    .slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Slot {
                        pid,
                        channel,
                        alive: true,
                    });
                cluster.tell(&FromPrimary::WorkerUp {
                    worker: index,
                    pid,
                    latency_us: latency.as_micros() as u64,
                });
            }
            Err(e) => {
                cluster.tell(&FromPrimary::Failed {
                    message: format!("could not start worker {index}: {e}"),
                });
                return ExitCode::FAILURE;
            }
        }
    }
    match cluster.policy {
        // Every worker has joined the port: stop holding it open, or the
        // kernel would keep hashing connections to a socket nobody accepts.
        SchedPolicy::ReusePort => drop(
            cluster
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        ),
        SchedPolicy::RoundRobin => {
            let cluster = cluster.clone();
            std::thread::spawn(move || round_robin(&cluster));
        }
        SchedPolicy::SharedSocket => {}
    }
    {
        let cluster = cluster.clone();
        std::thread::spawn(move || watch_workers(&cluster));
    }
    cluster.tell(&FromPrimary::Serving);

    loop {
        match ipc::receive::<_, ToPrimary>(&mut input, &mut buf) {
            Ok(Some(ToPrimary::Kill { worker })) => {
                let pid = cluster
                    .slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(worker as usize)
                    .filter(|s| s.alive)
                    .map(|s| s.pid);
                if let Some(pid) = pid {
                    kill_process(pid);
                }
            }
            Ok(Some(ToPrimary::Finish)) => {
                finish(&cluster);
                return ExitCode::SUCCESS;
            }
            Ok(Some(ToPrimary::Start { .. })) => {}
            Ok(None) | Err(_) => {
                // The server is gone: so is the cluster.
                cluster.finishing.store(true, Ordering::SeqCst);
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// Round robin: accept every connection here and pass it to the next live
/// worker, skipping dead ones. With none alive the connection is dropped,
/// which the client sees as a reset — exactly what Node does.
fn round_robin(cluster: &Cluster) {
    let Some(listener) = cluster
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|l| l.try_clone().ok())
    else {
        return;
    };
    let next = AtomicUsize::new(0);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let targets: Vec<Arc<Channel>> = {
            let slots = cluster.slots.lock().unwrap_or_else(|p| p.into_inner());
            let n = slots.len();
            let start = next.fetch_add(1, Ordering::Relaxed);
            (0..n)
                .map(|i| &slots[(start + i) % n])
                .filter(|s| s.alive)
                .map(|s| s.channel.clone())
                .collect()
        };
        for channel in targets {
            if channel
                .send(&ToWorker::Connection, Some(stream.as_fd()))
                .is_ok()
            {
                break;
            }
        }
        // Our copy closes here; the worker holds its own.
    }
}

/// Reap workers as they die; replace any that die before the end.
fn watch_workers(cluster: &Cluster) {
    loop {
        let (pid, signal, exit_code) = match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), None, Some(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid.as_raw(), Some(signal as i32), None),
            // Stops and continues are not deaths; no children yet (or any
            // more) is a pause.
            Ok(_) => continue,
            Err(_) => {
                if cluster.finishing.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let noticed = Instant::now();
        let index = {
            let mut slots = cluster.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.iter_mut().position(|s| s.pid == pid as u32).map(|i| {
                slots[i].alive = false;
                i as u32
            })
        };
        let Some(index) = index else { continue };
        if cluster.finishing.load(Ordering::SeqCst) {
            continue;
        }
        cluster.tell(&FromPrimary::WorkerExited {
            worker: index,
            pid: pid as u32,
            signal,
            exit_code,
        });
        match cluster.start_worker(index) {
            Ok((new_pid, channel, _)) => {
                if let Some(slot) = cluster
                    .slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(index as usize)
                {
                    *slot = Slot {
                        pid: new_pid,
                        channel,
                        alive: true,
                    };
                }
                cluster.tell(&FromPrimary::WorkerRespawned {
                    worker: index,
                    pid: new_pid,
                    downtime_us: noticed.elapsed().as_micros() as u64,
                });
            }
            Err(e) => cluster.tell(&FromPrimary::Failed {
                message: format!("could not restart worker {index}: {e}"),
            }),
        }
    }
}

/// Ask every live worker for its figures, then end them all.
fn finish(cluster: &Cluster) {
    cluster.finishing.store(true, Ordering::SeqCst);
    let slots: Vec<(u32, Arc<Channel>, bool)> = cluster
        .slots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|s| (s.pid, s.channel.clone(), s.alive))
        .collect();
    let mut served = Vec::new();
    let mut cpu_us = Vec::new();
    let mut memory = Vec::new();
    for (_, channel, alive) in &slots {
        let stats = alive
            .then(|| {
                channel.send(&ToWorker::Stats, None).ok()?;
                // Skip stray messages until the answer arrives.
                loop {
                    match channel.recv::<FromWorker>().ok()?? {
                        (
                            FromWorker::Stats {
                                served,
                                cpu_us,
                                memory,
                            },
                            _,
                        ) => return Some((served, cpu_us, memory)),
                        _ => continue,
                    }
                }
            })
            .flatten();
        served.push(stats.map(|s| s.0));
        cpu_us.push(stats.map(|s| s.1));
        memory.push(stats.map(|s: (u64, u64, Memory)| s.2));
    }
    for (pid, _, alive) in &slots {
        if *alive {
            kill_process(*pid);
        }
    }
    cluster.tell(&FromPrimary::Stats {
        served,
        cpu_us,
        memory,
    });
    let _ = cluster
        .out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .flush();
}
