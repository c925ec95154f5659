//! The server's side of the child-process model: start every child of a
//! pass in one process group, drive each one's channel from a thread of its
//! own, relay what they report, stop them when asked, reap them all.

use super::programs::{drive_program, not_installed, program_command};
use super::{ChildJob, Paths, CHILD_COMMAND};
use crate::engine::catalogue::Compute;
use crate::engine::error::RunError;
use crate::engine::ipc::{self, FromChild, ToChild};
use crate::engine::pass::{measured, Pass, Which};
use crate::engine::report::{Tally, WorkerReport};
use crate::engine::spawn::{kill_group, reap, spawn};
use crate::engine::{EventSink, ModelRun, Stop};
use protocol::{RunId, Workload};
use std::io::{BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a run's children do, and how many there are.
#[derive(Debug, Clone)]
pub struct Job {
    pub job: ChildJob,
    pub workers: u32,
    /// Ping-pongs each child answers before it works.
    pub round_trips: u32,
    pub paths: Paths,
}

/// Run `job`, streaming events for run `id`; then, for a computation with
/// more than one worker, the same work in one child, so the speedup is
/// measured. Programs compute nothing to split: no baseline.
pub async fn run(
    id: RunId,
    job: Job,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, RunError> {
    let baseline = matches!(job.job, ChildJob::Compute(_));
    let what = "the process coordinator";
    measured(
        id,
        job.workers,
        baseline,
        events,
        stop,
        what,
        move |which, workers, stop, observe| {
            let round_trips = match which {
                Which::Run => job.round_trips,
                Which::Baseline => 0,
            };
            run_pass(&job, workers, round_trips, stop, observe)
        },
    )
    .await
}

/// What went wrong on one child's channel: the child is then lost.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("its channel closed")]
    Closed,
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: String, got: String },
    #[error("it was started without {0}")]
    NoPipe(&'static str),
}

/// Start every worker process, relay what their drivers report, stop them
/// if asked, and reap them all before returning.
fn run_pass(
    job: &Job,
    workers: u32,
    round_trips: u32,
    stop: &Stop,
    observe: &mut dyn FnMut(u32, WorkerReport),
) -> Result<Pass, RunError> {
    let (tx, rx) = mpsc::channel::<(u32, WorkerReport)>();
    let mut tally = Tally::new(workers);
    let mut group = None;
    let mut pids = Vec::new();
    let mut drivers = Vec::new();
    let command = || match job.job {
        ChildJob::Program(program) => program_command(program, &job.paths.list_dir),
        ChildJob::Compute(_) => {
            let mut c = Command::new(&job.paths.worker_binary);
            c.arg(CHILD_COMMAND);
            c
        }
    };
    for worker in 0..workers {
        let talk = Talk {
            work: job.job,
            worker,
            workers,
            round_trips,
        };
        let mut launched = launch(command(), group, talk, tx.clone());
        // A program's driver reaps it the moment it exits: when every
        // earlier one has already ended, their group is gone with them
        // (joining it fails with EPERM), and this worker leads a new one
        // that the later workers join. Nothing of the old group is left to
        // stop.
        if let (ChildJob::Program(_), Some(_), Err(e)) = (job.job, group, &launched) {
            if e.raw_os_error() == Some(nix::libc::EPERM) {
                group = None;
                launched = launch(command(), None, talk, tx.clone());
            }
        }
        match launched {
            Ok((pid, driver)) => {
                group.get_or_insert(pid);
                // An external program's driver reaps it itself, to read its
                // CPU time; the coordinator reaps the re-executed workers.
                if let ChildJob::Compute(_) = job.job {
                    pids.push(pid);
                }
                drivers.push(driver);
            }
            Err(e) => {
                // A program that is not installed is that worker's result,
                // not a failure of the run.
                if let (ChildJob::Program(program), std::io::ErrorKind::NotFound) =
                    (job.job, e.kind())
                {
                    let _ = tx.send((worker, not_installed(program)));
                    continue;
                }
                if let Some(g) = group {
                    kill_group(g);
                }
                drop(tx);
                reap(&pids);
                return Err(RunError::start(format!("worker process {worker}"), e));
            }
        }
    }
    drop(tx);

    let mut killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((worker, report)) => {
                tally.note(worker, &report);
                observe(worker, report);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if stop.is_requested() && !killed {
            if let Some(g) = group {
                kill_group(g);
            }
            killed = true;
        }
    }
    drivers.into_iter().for_each(|d| drop(d.join()));
    // Every worker has closed its stdout by now; make sure none lingers. The
    // unreaped workers keep the group id alive, so this cannot hit a stranger.
    if let (Some(g), ChildJob::Compute(_)) = (group, job.job) {
        kill_group(g);
    }
    reap(&pids);
    Ok(tally.finish())
}

/// What one child's driver says to it.
#[derive(Debug, Clone, Copy)]
struct Talk {
    work: ChildJob,
    worker: u32,
    workers: u32,
    round_trips: u32,
}

/// Start one worker process and the thread that drives its channel.
fn launch(
    mut command: Command,
    group: Option<u32>,
    talk: Talk,
    tx: mpsc::Sender<(u32, WorkerReport)>,
) -> std::io::Result<(u32, std::thread::JoinHandle<()>)> {
    let external = matches!(talk.work, ChildJob::Program(_));
    command
        .stdin(if external {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(if external {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let spawned_at = Instant::now();
    let mut child = spawn(command, group)?;
    let pid = child.id();
    let worker = talk.worker;
    let driver = std::thread::Builder::new()
        .name(format!("spawnlab-driver-{worker}"))
        .spawn(move || {
            let report = match talk.work {
                ChildJob::Program(_) => drive_program(&mut child, spawned_at, pid, &tx, worker),
                ChildJob::Compute(work) => {
                    drive_child(&mut child, spawned_at, pid, work, talk, &tx)
                }
            };
            if let Err(why) = report {
                let lost = WorkerReport::Lost {
                    wall: spawned_at.elapsed(),
                    why: why.to_string(),
                };
                let _ = tx.send((worker, lost));
            }
        })?;
    Ok((pid, driver))
}

/// Talk to one re-executed worker: wait for `ready`, time the round trips,
/// hand it its share, relay its progress and result.
fn drive_child(
    child: &mut Child,
    spawned_at: Instant,
    pid: u32,
    work: Compute,
    talk: Talk,
    tx: &mpsc::Sender<(u32, WorkerReport)>,
) -> Result<(), ChannelError> {
    let worker = talk.worker;
    let mut input = child.stdin.take().ok_or(ChannelError::NoPipe("stdin"))?;
    let mut output = BufReader::new(child.stdout.take().ok_or(ChannelError::NoPipe("stdout"))?);
    let mut buf = String::new();
    let mut next = |buf: &mut String| -> Result<FromChild, ChannelError> {
        ipc::receive(&mut output, buf)?.ok_or(ChannelError::Closed)
    };
    let unexpected = |expected: &str, got: FromChild| ChannelError::Unexpected {
        expected: expected.to_string(),
        got: serde_json::to_string(&got).unwrap_or_default(),
    };
    match next(&mut buf)? {
        FromChild::Ready => {}
        other => return Err(unexpected("ready", other)),
    }
    let ready = WorkerReport::Ready {
        latency: spawned_at.elapsed(),
        pid,
        tid: None,
    };
    let _ = tx.send((worker, ready));
    if talk.round_trips > 0 {
        let mut samples = Vec::with_capacity(talk.round_trips as usize);
        for seq in 0..talk.round_trips {
            let sent = Instant::now();
            ipc::send(&mut input, &ToChild::Ping { seq })?;
            match next(&mut buf)? {
                FromChild::Pong { seq: back } if back == seq => samples.push(sent.elapsed()),
                other => return Err(unexpected(&format!("pong {seq}"), other)),
            }
        }
        let _ = tx.send((worker, WorkerReport::RoundTrips(samples)));
    }
    let share = ToChild::Work {
        workload: Workload::from(work),
        worker,
        workers: talk.workers,
    };
    ipc::send(&mut input, &share)?;
    loop {
        match next(&mut buf)? {
            FromChild::Progress { done, total } => {
                let _ = tx.send((worker, WorkerReport::Progress { done, total }));
            }
            FromChild::Done {
                result,
                cpu_us,
                memory,
            } => {
                let done = WorkerReport::Done {
                    result,
                    cpu: Duration::from_micros(cpu_us),
                    memory: Some(memory),
                    wall: spawned_at.elapsed(),
                    messages: None,
                };
                let _ = tx.send((worker, done));
                let _ = input.flush();
                return Ok(());
            }
            other => return Err(unexpected("progress or done", other)),
        }
    }
}
