//! The child-process model: the server re-executes its own binary in a hidden
//! worker mode, one process per worker, and talks to each over its stdio.
//!
//! This is the counterpart of Node's `child_process.fork('child.js')`: a new
//! process, with its own memory, started from a program file and given a
//! message channel — not POSIX `fork()`, which would copy a threaded server
//! mid-flight. Each child says `ready` as soon as it runs (its start latency
//! is spawn → that line), answers a ping-pong of small messages (the
//! channel's round-trip time), does its share, and reports its own CPU time
//! and memory before it exits.
//!
//! The same module runs allow-listed external programs, Node's `spawn` and
//! `execFile`: from an argument vector, never through a shell.
//!
//! Every process of a run shares one process group; stopping the run kills
//! the group and reaps every child (see [`super::spawn`]).

use super::catalogue::Share;
use super::ipc::{self, FromChild, ToChild};
use super::measure::{memory_of, micros, process_cpu_time};
use super::report::{Reporter, Tally, WorkerReport};
use super::spawn::{kill_group, spawn};
use super::{EventSink, ModelRun, Pass, Stop};
use app::protocol::{Memory, Program, RunId, WorkResult, Workload};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The hidden subcommand that turns the binary into a worker.
pub const CHILD_COMMAND: &str = "__child";

/// Most bytes of an external program's output that are kept.
pub const OUTPUT_CAP: usize = 4096;

/// How often a child reports progress, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// Run `workload` in `workers` child processes, streaming events for run
/// `id`; then, for computing workloads with more than one worker, the same
/// work in one child, so the speedup is measured.
pub async fn run(
    id: RunId,
    workload: Workload,
    workers: u32,
    round_trips: u32,
    paths: Paths,
    events: &EventSink,
    stop: &Stop,
) -> Result<ModelRun, String> {
    let (events, stop) = (events.clone(), stop.clone());
    tokio::task::spawn_blocking(move || {
        let mut reporter = Reporter::new(id, workers, events.clone(), stop.clone());
        let observe = |worker, report| reporter.report(worker, report);
        let job = Job {
            workload: &workload,
            workers,
            round_trips,
            paths: &paths,
        };
        let pass = run_pass(&job, &stop, observe)?;
        if matches!(workload, Workload::Program { .. }) {
            // Programs compute nothing to split: there is no speedup to measure.
            return Ok(pass.alone());
        }
        pass.with_baseline(id, workers, &events, &stop, || {
            let one = Job {
                workers: 1,
                round_trips: 0,
                ..job
            };
            run_pass(&one, &stop, |_, _| {})
        })
    })
    .await
    .map_err(|e| format!("the process coordinator failed: {e}"))?
}

/// One pass: what to run and how many times.
#[derive(Clone, Copy)]
struct Job<'a> {
    workload: &'a Workload,
    workers: u32,
    round_trips: u32,
    paths: &'a Paths,
}

/// Files the child-process model needs.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The binary a worker re-executes: the server's own, normally.
    pub worker_binary: PathBuf,
    /// The directory the `list_public` program lists: the served site.
    pub list_dir: PathBuf,
}

/// Start every worker process, relay what their drivers report, stop them
/// if asked, and reap them all before returning.
fn run_pass(
    job: &Job,
    stop: &Stop,
    mut observe: impl FnMut(u32, WorkerReport),
) -> Result<Pass, String> {
    let (tx, rx) = mpsc::channel::<(u32, WorkerReport)>();
    let mut tally = Tally::new(job.workers);
    let mut group = None;
    let mut pids = Vec::new();
    let mut drivers = Vec::new();
    let external = matches!(job.workload, Workload::Program { .. });
    for worker in 0..job.workers {
        let command = match job.workload {
            Workload::Program { program } => program_command(*program, &job.paths.list_dir),
            _ => {
                let mut c = Command::new(&job.paths.worker_binary);
                c.arg(CHILD_COMMAND);
                c
            }
        };
        let launched = launch(command, group, worker, job, tx.clone());
        match launched {
            Ok((pid, driver)) => {
                group.get_or_insert(pid);
                // An external program's driver reaps it itself, to read its
                // CPU time; the coordinator reaps the re-executed workers.
                if !external {
                    pids.push(pid);
                }
                drivers.push(driver);
            }
            Err(e) => {
                // A program that is not installed is that worker's result,
                // not a failure of the run.
                if let (Workload::Program { program }, true) =
                    (job.workload, e.kind() == std::io::ErrorKind::NotFound)
                {
                    let _ = tx.send((worker, not_installed(*program)));
                    continue;
                }
                if let Some(g) = group {
                    kill_group(g);
                }
                drop(tx);
                reap(&pids);
                return Err(format!("could not start worker process {worker}: {e}"));
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
    if let (Some(g), false) = (group, external) {
        kill_group(g);
    }
    reap(&pids);
    Ok(tally.finish())
}

/// Wait for each child so none is left a zombie.
fn reap(pids: &[u32]) {
    for &pid in pids {
        let mut status = 0;
        // SAFETY: waiting on our own child; the status is written to a local.
        unsafe {
            libc::waitpid(pid as libc::pid_t, &mut status, 0);
        }
    }
}

/// The fixed argument vector of an allow-listed program.
fn program_command(program: Program, list_dir: &Path) -> Command {
    let (name, args): (&str, Vec<&std::ffi::OsStr>) = match program {
        Program::Uname => ("uname", vec!["-a".as_ref()]),
        Program::ListPublic => ("ls", vec!["-l".as_ref(), list_dir.as_os_str()]),
        Program::PythonVersion => ("python3", vec!["--version".as_ref()]),
        Program::NodeVersion => ("node", vec!["--version".as_ref()]),
    };
    let mut command = Command::new(name);
    command.args(args);
    command
}

fn not_installed(program: Program) -> WorkerReport {
    let name = match program {
        Program::Uname => "uname",
        Program::ListPublic => "ls",
        Program::PythonVersion => "python3",
        Program::NodeVersion => "node",
    };
    WorkerReport::Done {
        result: Some(WorkResult::Program {
            exit_code: None,
            output: format!("{name} is not installed on this server"),
            truncated: false,
        }),
        cpu: Duration::ZERO,
        memory: None,
        wall: Duration::ZERO,
        messages: None,
    }
}

/// Start one worker process and the thread that drives its channel.
fn launch(
    mut command: Command,
    group: Option<u32>,
    worker: u32,
    job: &Job,
    tx: mpsc::Sender<(u32, WorkerReport)>,
) -> std::io::Result<(u32, std::thread::JoinHandle<()>)> {
    let external = matches!(job.workload, Workload::Program { .. });
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
    let (workload, workers, round_trips) = (job.workload.clone(), job.workers, job.round_trips);
    let driver = std::thread::Builder::new()
        .name(format!("spawnlab-driver-{worker}"))
        .spawn(move || {
            let report = if external {
                drive_program(&mut child, spawned_at, pid, &tx, worker)
            } else {
                drive_child(
                    &mut child,
                    spawned_at,
                    pid,
                    &workload,
                    worker,
                    workers,
                    round_trips,
                    &tx,
                )
            };
            if let Err(why) = report {
                let _ = tx.send((
                    worker,
                    WorkerReport::Lost {
                        wall: spawned_at.elapsed(),
                        why,
                    },
                ));
            }
        })?;
    Ok((pid, driver))
}

/// Talk to one re-executed worker: wait for `ready`, time the round trips,
/// hand it its share, relay its progress and result.
#[allow(clippy::too_many_arguments)]
fn drive_child(
    child: &mut std::process::Child,
    spawned_at: Instant,
    pid: u32,
    workload: &Workload,
    worker: u32,
    workers: u32,
    round_trips: u32,
    tx: &mpsc::Sender<(u32, WorkerReport)>,
) -> Result<(), String> {
    let mut input = child.stdin.take().ok_or("no stdin")?;
    let mut output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut buf = String::new();
    let mut next = |buf: &mut String| -> Result<FromChild, String> {
        ipc::receive(&mut output, buf)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "its channel closed".to_string())
    };
    match next(&mut buf)? {
        FromChild::Ready => {}
        other => return Err(format!("expected ready, got {other:?}")),
    }
    let _ = tx.send((
        worker,
        WorkerReport::Ready {
            latency: spawned_at.elapsed(),
            pid,
            tid: None,
        },
    ));
    if round_trips > 0 {
        let mut samples = Vec::with_capacity(round_trips as usize);
        for seq in 0..round_trips {
            let sent = Instant::now();
            ipc::send(&mut input, &ToChild::Ping { seq }).map_err(|e| e.to_string())?;
            match next(&mut buf)? {
                FromChild::Pong { seq: back } if back == seq => samples.push(sent.elapsed()),
                other => return Err(format!("expected pong {seq}, got {other:?}")),
            }
        }
        let _ = tx.send((worker, WorkerReport::RoundTrips(samples)));
    }
    ipc::send(
        &mut input,
        &ToChild::Work {
            workload: workload.clone(),
            worker,
            workers,
        },
    )
    .map_err(|e| e.to_string())?;
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
                let _ = tx.send((
                    worker,
                    WorkerReport::Done {
                        result,
                        cpu: Duration::from_micros(cpu_us),
                        memory: Some(memory),
                        wall: spawned_at.elapsed(),
                        messages: None,
                    },
                ));
                return Ok(());
            }
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

/// Run an external program to its exit, keeping at most [`OUTPUT_CAP`] bytes
/// of what it prints (stdout, then stderr).
fn drive_program(
    child: &mut std::process::Child,
    spawned_at: Instant,
    pid: u32,
    tx: &mpsc::Sender<(u32, WorkerReport)>,
    worker: u32,
) -> Result<(), String> {
    let _ = tx.send((
        worker,
        WorkerReport::Ready {
            latency: spawned_at.elapsed(),
            pid,
            tid: None,
        },
    ));
    let mut kept = Vec::new();
    let mut truncated = false;
    let stderr = child.stderr.take();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        stderr.map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        truncated |= read_capped(stream, &mut kept).map_err(|e| e.to_string())?;
    }
    // Reap here (not in the coordinator) to read the program's own CPU time.
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child, writing into locals.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = spawned_at.elapsed();
    let exit_code = (rc > 0 && libc::WIFEXITED(status)).then(|| libc::WEXITSTATUS(status));
    let cpu = Duration::from_secs((usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) as u64)
        + Duration::from_micros((usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) as u64);
    let _ = tx.send((
        worker,
        WorkerReport::Done {
            result: Some(WorkResult::Program {
                exit_code,
                output: String::from_utf8_lossy(&kept).into_owned(),
                truncated,
            }),
            cpu,
            memory: None,
            wall,
            messages: None,
        },
    ));
    Ok(())
}

/// Append what `stream` yields to `kept` up to [`OUTPUT_CAP`] in all, then
/// keep reading and discarding so the program never blocks on a full pipe.
/// True if anything was discarded.
fn read_capped(mut stream: impl Read, kept: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    let mut truncated = false;
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(truncated);
        }
        let room = OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
        truncated |= n > room;
    }
}

/// The worker side: what `spawnlab __child` runs. Reads requests from stdin,
/// answers on stdout, exits after its work or when the server goes away.
pub fn child_main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = String::new();
    if ipc::send(&mut out, &FromChild::Ready).is_err() {
        return ExitCode::FAILURE;
    }
    loop {
        let msg = match ipc::receive::<_, ToChild>(&mut input, &mut buf) {
            Ok(Some(msg)) => msg,
            // The server closed the channel: nothing more to do.
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spawnlab child: {e}");
                return ExitCode::FAILURE;
            }
        };
        match msg {
            ToChild::Ping { seq } => {
                if ipc::send(&mut out, &FromChild::Pong { seq }).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ToChild::Work {
                workload,
                worker,
                workers,
            } => {
                let share = Share::new(workload, worker, workers);
                let mut last = None::<Instant>;
                let result = share.run(
                    || false,
                    |done, total| {
                        if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done == total {
                            last = Some(Instant::now());
                            let _ = ipc::send(&mut out, &FromChild::Progress { done, total });
                        }
                    },
                );
                let done = FromChild::Done {
                    result: result.ok(),
                    cpu_us: micros(process_cpu_time()),
                    memory: memory_of("self").unwrap_or(Memory {
                        rss_bytes: 0,
                        anon_bytes: 0,
                    }),
                };
                let _ = ipc::send(&mut out, &done);
                let _ = out.flush();
                return ExitCode::SUCCESS;
            }
        }
    }
}
