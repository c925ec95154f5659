//! The Node.js runtime: real `node` running our scripts (`server/node/`),
//! each model as a Node.js developer writes it.
//!
//! A run starts `spawnlab __guardian -- node <model>.js <plan>` ([`guardian`]):
//! the guardian is armed to hear of the server's death and kills `node`'s
//! whole process group then, or when the server stops the run. The script
//! reports through the protocol's own events, one JSON line each on its
//! fd 3; [`relay`] parses every line against the protocol (type, run, worker
//! range, size) before anything reaches a learner, and a malformed line, or
//! a script that dies, fails that run and nothing else.
//!
//! The engine still does what is not Node's to do: it probes the main
//! thread's `/ping` from outside ([`super::probe`]), and drives a Node
//! cluster with the same load generator as the Rust one, killing workers by
//! pid when asked ([`super::cluster`]).

pub mod guardian;
pub mod scripts;

use super::cluster::{self, Kill, Note};
use super::error::RunError;
use super::pass::ModelRun;
use super::probe;
use super::report::{Tally, WorkerReport};
use super::spawn::{kill_process, spawn_with_fd3};
use super::{EventSink, Faults, MainWork, Plan, Refused, Stop};
use protocol::{
    MissingFeature, ModelKind, ModelSpec, RunId, RunSpec, RunSummary, Runtime, RuntimeInfo,
    SchedPolicy, ServerEvent,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The oldest Node.js the scripts support: the one Debian ships.
pub const MIN_MAJOR: u32 = 18;

/// Longest line a script may write: events are small, and a runaway script
/// must not make the server buffer without end.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest `node` may take to boot and say `runtime_ready`.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest the cluster script may take to report its workers at the end.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15);

/// The environment variable every process of a Node run carries, naming the
/// run: how a test (or an operator) finds all of them, whatever their
/// parents did.
pub const RUN_MARKER: &str = "SPAWNLAB_RUN";

/// The variable libuv reads for its thread pool's size. Every run starts
/// without the server's own, so only a pool run chooses it.
const POOL_SIZE_VAR: &str = "UV_THREADPOOL_SIZE";

/// Heartbeat and calm times the main-thread script uses, as the Rust loop does.
const TICK_MS: u64 = 20;
const CALM_MS: u64 = 300;
const PROGRESS_EVERY_MS: u64 = 50;

/// What this server's Node.js is and can do: found once, at start-up.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    /// The `node` to run.
    pub binary: PathBuf,
    /// Where the scripts were written; `None` when they could not be.
    pub dir: Option<PathBuf>,
    /// Version, availability and missing features, as the page shows them.
    pub info: RuntimeInfo,
}

/// What `detect.js` says about this Node.
#[derive(Debug, Deserialize)]
struct Detected {
    version: String,
    reuse_port: bool,
}

impl NodeSetup {
    /// Find out what `binary` is: install the scripts under `scripts_base`,
    /// run `detect.js`, and judge the version. Blocks for up to ten seconds.
    pub fn detect(binary: PathBuf, scripts_base: &Path) -> Self {
        let dir = match scripts::install(scripts_base) {
            Ok(dir) => dir,
            Err(e) => {
                return NodeSetup::unavailable(
                    binary,
                    format!(
                        "the Node.js scripts could not be written to {}: {e}",
                        scripts_base.display()
                    ),
                )
            }
        };
        let detected = match run_detect(&binary, &dir.join("detect.js")) {
            Ok(d) => d,
            Err(why) => return NodeSetup::unavailable(binary, why),
        };
        let major = detected
            .version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0);
        if major < MIN_MAJOR {
            let why = format!(
                "this server has Node.js {}, and the labs need v{MIN_MAJOR} or newer; {}",
                detected.version, INSTALL_HINT
            );
            return NodeSetup {
                dir: Some(dir),
                info: RuntimeInfo {
                    runtime: Runtime::Node,
                    version: Some(detected.version),
                    available: false,
                    note: why,
                    missing: Vec::new(),
                },
                binary,
            };
        }
        let mut missing = Vec::new();
        if !detected.reuse_port {
            missing.push(MissingFeature {
                feature: SchedPolicy::ReusePort.name().into(),
                needs: "v22.12 (or v23.1 on the 23 line)".into(),
            });
        }
        NodeSetup {
            dir: Some(dir),
            info: RuntimeInfo {
                runtime: Runtime::Node,
                note: format!("Node.js {} runs the labs on this server.", detected.version),
                version: Some(detected.version),
                available: true,
                missing,
            },
            binary,
        }
    }

    /// A setup whose runs are all refused, saying `why`.
    pub fn unavailable(binary: PathBuf, why: String) -> Self {
        NodeSetup {
            binary,
            dir: None,
            info: RuntimeInfo {
                runtime: Runtime::Node,
                version: None,
                available: false,
                note: why,
                missing: Vec::new(),
            },
        }
    }

    /// Refuse a Node run this setup cannot run, naming the field.
    pub fn check(&self, spec: &RunSpec) -> Result<(), Refused> {
        if !self.info.available || self.dir.is_none() {
            return Err(Refused::invalid(
                "spec.runtime",
                format!(
                    "spec.runtime node is not available here: {} Choose runtime rust meanwhile.",
                    self.info.note
                ),
            ));
        }
        if let ModelSpec::Cluster { policy, .. } = spec.model {
            if let Some(missing) = self
                .info
                .missing
                .iter()
                .find(|m| m.feature == policy.name())
            {
                return Err(Refused::invalid(
                    "spec.model.policy",
                    format!(
                        "spec.model.policy {} needs Node.js {}; this server has {}. \
                         Older versions ignore the option silently, so the lab does not pretend.",
                        policy.name(),
                        missing.needs,
                        self.info.version.as_deref().unwrap_or("another version")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How to get Node.js, for the messages that say it is missing.
pub const INSTALL_HINT: &str = "install it with `apt-get install nodejs` (Debian 12 ships v18) or \
                                from nodejs.org, and restart the server.";

/// Run `detect.js` with a deadline; its one line of JSON.
fn run_detect(binary: &Path, script: &Path) -> Result<Detected, String> {
    let mut command = Command::new(binary);
    command
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Like every process the engine starts: dies with the server.
    let mut child = super::spawn::spawn(command, None).map_err(|e| {
        format!(
            "Node.js was not found ({} could not be started: {e}); {INSTALL_HINT}",
            binary.display()
        )
    })?;
    let stdout = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
        }
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    let text = text.map_err(|_| format!("{} did not answer within 10 s", binary.display()))?;
    serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "{} answered something unexpected ({e}): {text:?}",
            binary.display()
        )
    })
}

/// What `bench.js` measured: one figure's raw samples.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Measured {
    /// Which measurement (`worker_start`, `payload`, …).
    pub measure: String,
    /// `ns` or `bytes`.
    pub unit: String,
    /// Every sample, in the order taken.
    pub samples: Vec<f64>,
    /// `process.version`.
    pub version: String,
}

/// Longest one `bench.js` measurement may take.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(120);

/// `node script arg` under a guardian (see [`guardian::guarded_command`]).
fn guarded(guardian: &Path, node: &Path, script: &Path, arg: &str, tag: &str) -> Command {
    guardian::guarded_command(guardian, node, &[script.into(), arg.into()], tag)
}

/// Start a [`guarded`] command from the spawner thread, handing it `fd3`.
async fn start_guarded(
    command: Command,
    fd3: Option<std::os::fd::OwnedFd>,
) -> Result<std::process::Child, RunError> {
    tokio::task::spawn_blocking(move || spawn_with_fd3(command, None, fd3))
        .await
        .map_err(|e| RunError::joined("starting Node.js", e))?
        .map_err(|e| RunError::start("the Node.js runtime", e))
}

/// Run one plain-Node measurement (`bench.js`, see `server/node/bench.js`)
/// under a guardian, as every Node run is: its raw samples.
pub async fn measure(
    setup: &NodeSetup,
    guardian: &Path,
    request: &serde_json::Value,
) -> Result<Measured, RunError> {
    let dir = setup
        .dir
        .as_ref()
        .filter(|_| setup.info.available)
        .ok_or_else(|| RunError::Node(setup.info.note.clone()))?;
    let mut command = guarded(
        guardian,
        &setup.binary,
        &dir.join("bench.js"),
        &request.to_string(),
        "bench",
    );
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = start_guarded(command, None).await?;
    let stdout = child
        .stdout
        .take()
        .map(tokio::process::ChildStdout::from_std)
        .transpose()
        .map_err(|e| RunError::io("bench.js's output", e))?;
    let mut guard = NodeProcess {
        guardian: Some(child),
        commands: None,
        lines: None,
    };
    let read = async {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            out.read_to_string(&mut text).await?;
        }
        Ok::<_, std::io::Error>(text)
    };
    let text = tokio::time::timeout(MEASURE_TIMEOUT, read).await;
    guard.end().await;
    let text = text
        .map_err(|_| RunError::Timeout("a Node.js measurement"))?
        .map_err(|e| RunError::io("bench.js's output", e))?;
    serde_json::from_str(text.trim()).map_err(|e| {
        RunError::Node(format!(
            "bench.js answered {request} with something unexpected ({e}): {:?}",
            text.chars().take(200).collect::<String>()
        ))
    })
}

/// The program the `program` workload runs, resolved from the catalogue.
#[derive(Debug, Clone, Serialize)]
struct ProgramArgv {
    file: String,
    args: Vec<String>,
}

/// What the script reads from its argv[2].
#[derive(Debug, Serialize)]
struct ScriptPlan<'a> {
    run: RunId,
    spec: &'a RunSpec,
    program: Option<ProgramArgv>,
    tick_ms: u64,
    calm_ms: u64,
    progress_every_ms: u64,
    /// Cluster: the port to serve on (a scaling instance brought back on
    /// its old port); a free one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

/// Everything a Node run needs from the engine.
pub struct Context<'a> {
    pub setup: &'a NodeSetup,
    /// The spawnlab binary, which becomes the guardian.
    pub guardian: &'a Path,
    /// The folder the `list_public` program lists.
    pub site_dir: &'a Path,
}

/// Run `spec` (validated into `plan`) on Node.js, streaming events for run `id`.
pub async fn run(
    id: RunId,
    spec: &RunSpec,
    plan: &Plan,
    cx: Context<'_>,
    events: &EventSink,
    stop: &Stop,
    faults: Option<Faults>,
) -> Result<ModelRun, RunError> {
    let workers = plan.workers();
    let mut node = NodeProcess::start(id, spec, plan, &cx, None).await?;
    let mut notes = relay(
        node.lines.take().expect("fresh"),
        id,
        spec,
        workers,
        events.clone(),
    );
    let began = tokio::select! {
        ready = tokio::time::timeout(BOOT_TIMEOUT, notes.recv()) => match ready {
            Ok(Some(Note::Ready)) => Instant::now(),
            Ok(Some(Note::Failed(why))) => return Err(RunError::Node(why)),
            Ok(_) => return Err(RunError::Node("node ended before it said it was ready".into())),
            Err(_) => return Err(RunError::Timeout("Node.js's start-up")),
        },
        _ = stop.requested() => return Ok(node.stopped(workers).await),
    };
    let result = match plan {
        Plan::Cluster(cluster_plan) => {
            drive_cluster(
                id,
                cluster_plan,
                &mut node,
                &mut notes,
                began,
                events,
                stop,
                faults,
            )
            .await
        }
        Plan::MainThread { .. } => {
            let mut prober = None;
            let outcome = pump(&mut notes, stop, workers, |note| {
                if let Note::Listening(port) = note {
                    prober = Some(probe::start(id, *port, began, events.clone()));
                }
            })
            .await;
            if let Some(prober) = prober {
                prober.finish().await;
            }
            outcome
        }
        _ => pump(&mut notes, stop, workers, |_| {}).await,
    };
    node.end().await;
    result
}

/// Forward until the script's `run_finished`, folding worker results; `see`
/// is shown every note on the way. A stop ends the script at once.
async fn pump(
    notes: &mut mpsc::UnboundedReceiver<Note>,
    stop: &Stop,
    workers: u32,
    mut see: impl FnMut(&Note),
) -> Result<ModelRun, RunError> {
    let mut tally = Tally::new(workers);
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(note) = note else {
                    return Err(RunError::Node("node ended without finishing its run".into()));
                };
                see(&note);
                match note {
                    Note::Finished(summary) => return Ok(model_run(*summary, tally)),
                    Note::Failed(why) => return Err(RunError::Node(why)),
                    Note::WorkerDone { worker, report } => tally.note(worker, &report),
                    _ => {}
                }
            }
            _ = stop.requested() => {
                return Ok(super::Pass::stopped(workers).alone());
            }
        }
    }
}

/// The model's result from the script's own summary and the workers'
/// results as they arrived.
fn model_run(summary: RunSummary, tally: Tally) -> ModelRun {
    let pass = tally.finish();
    ModelRun {
        wall: Duration::from_micros(summary.wall_us),
        cpu: Duration::from_micros(summary.cpu_us),
        results: pass.results,
        baseline_wall: summary.baseline_wall_us.map(Duration::from_micros),
        max_lag: summary.main_loop_lag_us.map(Duration::from_micros),
    }
}

/// A Node cluster: wait for it to listen, load it with the engine's own
/// load generator (killing workers by pid), then ask it for its workers'
/// own figures.
#[allow(clippy::too_many_arguments)]
async fn drive_cluster(
    id: RunId,
    plan: &cluster::Plan,
    node: &mut NodeProcess,
    notes: &mut mpsc::UnboundedReceiver<Note>,
    began: Instant,
    events: &EventSink,
    stop: &Stop,
    faults: Option<Faults>,
) -> Result<ModelRun, RunError> {
    let mut killer = PidKiller {
        pids: vec![None; plan.workers as usize],
    };
    let port = loop {
        tokio::select! {
            note = notes.recv() => match note {
                Some(Note::Listening(port)) => break port,
                Some(Note::Spawned { worker, pid }) => killer.respawned(worker, pid),
                Some(Note::Failed(why)) => return Err(RunError::Node(why)),
                Some(_) => {}
                None => return Err(RunError::Node("the cluster primary ended during start-up".into())),
            },
            _ = stop.requested() => return Ok(super::Pass::stopped(plan.workers).alone()),
        }
    };
    let clock = cluster::Clock::from(began);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let load = cluster::drive(
        id,
        plan,
        addr,
        &mut killer,
        notes,
        clock,
        events,
        stop,
        faults,
    )
    .await?;
    if stop.is_requested() {
        return Ok(super::Pass::stopped(plan.workers).alone());
    }
    node.command(&serde_json::json!({"cmd": "finish"})).await?;
    let stats = tokio::time::timeout(FINISH_TIMEOUT, async {
        let mut stats = cluster::WorkerStats::empty(plan.workers);
        loop {
            match notes.recv().await {
                Some(Note::WorkerDone { worker, report }) => stats.take(worker, report),
                Some(Note::Finished(_)) => return Ok(stats),
                Some(Note::Failed(why)) => return Err(RunError::Node(why)),
                Some(_) => {}
                None => {
                    return Err(RunError::Node(
                        "the cluster primary ended before its report".into(),
                    ))
                }
            }
        }
    })
    .await
    .map_err(|_| RunError::Timeout("the Node cluster's final report"))??;
    Ok(cluster::report(id, plan, load, stats, clock, events))
}

/// One Node.js cluster serving as a scaling run's instance: its process
/// (dropping it ends the instance; the primary is `node` itself) and what
/// it serves.
pub struct Instance {
    process: NodeProcess,
    pub serving: cluster::Serving,
}

impl Instance {
    /// Start `cluster.js` for `spec` (a cluster spec) and wait until every
    /// worker serves, on `port` when given.
    pub async fn start(
        id: RunId,
        spec: &RunSpec,
        plan: &Plan,
        cx: &Context<'_>,
        port: Option<u16>,
    ) -> Result<Self, RunError> {
        let mut process = NodeProcess::start(id, spec, plan, cx, port).await?;
        // The script's events are for the engine here, not for the page:
        // the scaling run reports its instances itself.
        let (sink, mut seen) = mpsc::unbounded_channel();
        let mut notes = relay(
            process.lines.take().expect("fresh"),
            id,
            spec,
            plan.workers(),
            sink,
        );
        let mut workers = vec![None; plan.workers() as usize];
        let serving = async {
            loop {
                match notes.recv().await {
                    Some(Note::Listening(port)) => return Ok(port),
                    Some(Note::Spawned { worker, pid }) => {
                        if let Some(slot) = workers.get_mut(worker as usize) {
                            *slot = Some(pid);
                        }
                    }
                    Some(Note::Failed(why)) => return Err(RunError::Node(why)),
                    Some(_) => {}
                    None => {
                        return Err(RunError::Node(
                            "the instance's cluster ended during start-up".into(),
                        ))
                    }
                }
            }
        };
        let port = tokio::time::timeout(BOOT_TIMEOUT, serving)
            .await
            .map_err(|_| RunError::Timeout("a Node.js instance's start"))??;
        let mut pid = 0;
        while let Ok(ev) = seen.try_recv() {
            if let ServerEvent::RuntimeReady { pid: p, .. } = ev {
                pid = p;
            }
        }
        Ok(Instance {
            process,
            serving: cluster::Serving {
                notes,
                port,
                pid,
                workers,
            },
        })
    }

    /// Kill the instance whole (the guardian ends its group) and reap it.
    pub async fn kill(mut self) {
        self.process.end().await;
    }
}

/// Kills a Node cluster's workers by pid, as `kill -9` from outside would;
/// the primary's `'exit'` handler notices and forks a replacement.
struct PidKiller {
    pids: Vec<Option<u32>>,
}

impl Kill for PidKiller {
    async fn kill(&mut self, worker: u32) -> Result<(), RunError> {
        if let Some(Some(pid)) = self.pids.get(worker as usize) {
            kill_process(*pid);
        }
        Ok(())
    }

    fn respawned(&mut self, worker: u32, pid: u32) {
        if let Some(slot) = self.pids.get_mut(worker as usize) {
            *slot = Some(pid);
        }
    }
}

/// The guardian (and through it `node`), its command pipe, and its events.
struct NodeProcess {
    guardian: Option<std::process::Child>,
    commands: Option<tokio::process::ChildStdin>,
    lines: Option<tokio::net::unix::pipe::Receiver>,
}

impl NodeProcess {
    /// Start the guardian with `node <script> <plan>` under it.
    async fn start(
        id: RunId,
        spec: &RunSpec,
        plan: &Plan,
        cx: &Context<'_>,
        port: Option<u16>,
    ) -> Result<Self, RunError> {
        let dir = cx
            .setup
            .dir
            .as_ref()
            .ok_or_else(|| RunError::Node(cx.setup.info.note.clone()))?;
        let program = match plan {
            Plan::ChildProcess {
                job: super::process::ChildJob::Program(program),
                ..
            } => Some(ProgramArgv {
                file: program.binary().into(),
                args: super::process::programs::program_args(*program, cx.site_dir)
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            }),
            _ => None,
        };
        let script_plan = ScriptPlan {
            run: id,
            spec,
            program,
            tick_ms: TICK_MS,
            calm_ms: CALM_MS,
            progress_every_ms: PROGRESS_EVERY_MS,
            port,
        };
        let plan_json = serde_json::to_string(&script_plan).expect("plans serialize");
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RunError::start("the Node.js event pipe", e.into()))?;
        let mut command = guarded(
            cx.guardian,
            &cx.setup.binary,
            &dir.join(spec.model.kind().node_script()),
            &plan_json,
            &id.to_string(),
        );
        command
            .env_remove(POOL_SIZE_VAR)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        // libuv sizes its pool once, from the environment, the first time
        // anything uses it: the one way to choose it is before Node starts.
        if let Plan::MainThread {
            work: MainWork::PoolHash { pool_threads, .. },
        } = plan
        {
            command.env(POOL_SIZE_VAR, pool_threads.to_string());
        }
        let mut guardian = start_guarded(command, Some(write)).await?;
        let commands = guardian
            .stdin
            .take()
            .map(tokio::process::ChildStdin::from_std)
            .transpose()
            .map_err(|e| RunError::io("the Node.js command pipe", e))?;
        let lines = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .map_err(|e| RunError::io("the Node.js event pipe", e))?;
        Ok(NodeProcess {
            guardian: Some(guardian),
            commands,
            lines: Some(lines),
        })
    }

    /// Send the script one command line.
    async fn command(&mut self, cmd: &serde_json::Value) -> Result<(), RunError> {
        let mut line = serde_json::to_vec(cmd).expect("commands serialize");
        line.push(b'\n');
        let pipe = self
            .commands
            .as_mut()
            .ok_or_else(|| RunError::Node("its command pipe is closed".into()))?;
        pipe.write_all(&line)
            .await
            .map_err(|e| RunError::io("the Node.js command pipe", e))
    }

    /// End the run's processes (the guardian kills the group) and reap.
    async fn end(&mut self) {
        self.commands.take();
        if let Some(guardian) = self.guardian.take() {
            let reaped = guardian::stop(guardian);
            let _ = tokio::task::spawn_blocking(move || reaped.join()).await;
        }
    }

    /// End a run that was asked to stop: nothing complete.
    async fn stopped(&mut self, workers: u32) -> ModelRun {
        self.end().await;
        super::Pass::stopped(workers).alone()
    }
}

impl Drop for NodeProcess {
    /// However the run ends — a panic, an error, a dropped task — the
    /// guardian is told to end the group, and reaped off the async threads.
    fn drop(&mut self) {
        if let Some(guardian) = self.guardian.take() {
            guardian::stop(guardian);
        }
    }
}

/// A number no two runs of this server share.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Read the script's lines, check each against the protocol, forward what
/// a learner should see, and turn what the engine needs into [`Note`]s.
/// The first bad line ends the relay with a `Failed` note.
fn relay(
    lines: tokio::net::unix::pipe::Receiver,
    id: RunId,
    spec: &RunSpec,
    workers: u32,
    events: EventSink,
) -> mpsc::UnboundedReceiver<Note> {
    let (tx, rx) = mpsc::unbounded_channel();
    let model = spec.model.kind();
    tokio::spawn(async move {
        let mut reader = BufReader::new(lines);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await;
            let note = match read {
                Ok(0) => {
                    let _ = tx.send(Note::Closed);
                    return;
                }
                Ok(_) if buf.len() > MAX_LINE => Err(format!(
                    "the Node.js script wrote a line longer than {MAX_LINE} bytes"
                )),
                Ok(_) => check_line(&buf, id, model, workers),
                Err(e) => Err(format!("the Node.js event pipe failed: {e}")),
            };
            match note {
                Ok((forward, note)) => {
                    if let Some(ev) = forward {
                        let _ = events.send(ev);
                    }
                    if let Some(note) = note {
                        if tx.send(note).is_err() {
                            return;
                        }
                    }
                }
                Err(why) => {
                    let _ = tx.send(Note::Failed(why));
                    return;
                }
            }
        }
    });
    rx
}

/// One line from the script: the event to forward (if a learner should see
/// it as it is) and what the engine needs to know (if anything), or why
/// the line is not acceptable.
fn check_line(
    line: &[u8],
    id: RunId,
    model: ModelKind,
    workers: u32,
) -> Result<(Option<ServerEvent>, Option<Note>), String> {
    let text = std::str::from_utf8(line)
        .map_err(|_| "the Node.js script wrote a line that is not UTF-8".to_string())?
        .trim_end();
    let ev: ServerEvent = serde_json::from_str(text).map_err(|e| {
        let shown: String = text.chars().take(120).collect();
        format!("the Node.js script wrote a line that is not a protocol event ({e}): {shown}")
    })?;
    if ev.run() != Some(id) {
        return Err(format!(
            "the Node.js script wrote an event for run {:?}, not run {id}",
            ev.run()
        ));
    }
    let in_range = |worker: u32| {
        if worker < workers {
            Ok(())
        } else {
            Err(format!(
                "the Node.js script named worker {worker}; this run has {workers}"
            ))
        }
    };
    let cluster = model == ModelKind::Cluster;
    Ok(match ev {
        ServerEvent::RuntimeReady { .. } => (Some(ev), Some(Note::Ready)),
        ServerEvent::Listening { port, .. } => (Some(ev), Some(Note::Listening(port))),
        ServerEvent::WorkerSpawned { worker, pid, .. } => {
            in_range(worker)?;
            (Some(ev), Some(Note::Spawned { worker, pid }))
        }
        ServerEvent::Progress { worker, .. } | ServerEvent::RoundTrips { worker, .. } => {
            in_range(worker)?;
            (Some(ev), None)
        }
        ServerEvent::Heartbeat { .. }
        | ServerEvent::LoopDelay { .. }
        | ServerEvent::PoolTask { .. }
        | ServerEvent::BaselineStarted { .. }
        | ServerEvent::BaselineFinished { .. } => (Some(ev), None),
        ServerEvent::WorkerFinished {
            worker,
            wall_us,
            cpu_us,
            memory,
            messages,
            ref result,
            ..
        } => {
            in_range(worker)?;
            let report = WorkerReport::Done {
                result: (!matches!(result, protocol::WorkResult::Incomplete))
                    .then(|| result.clone()),
                cpu: Duration::from_micros(cpu_us),
                memory,
                wall: Duration::from_micros(wall_us),
                messages,
            };
            // A cluster's workers are reported by the engine, with the
            // requests the client saw; the script's own counts are stats.
            let forward = (!cluster).then_some(ev);
            (forward, Some(Note::WorkerDone { worker, report }))
        }
        ServerEvent::WorkerExited {
            worker,
            pid,
            signal,
            exit_code,
            ..
        } if cluster => {
            in_range(worker)?;
            (
                None,
                Some(Note::Exited {
                    worker,
                    pid,
                    signal,
                    exit_code,
                }),
            )
        }
        ServerEvent::WorkerRespawned {
            worker,
            pid,
            downtime_us,
            ..
        } if cluster => {
            in_range(worker)?;
            (
                None,
                Some(Note::Respawned {
                    worker,
                    pid,
                    downtime_us,
                }),
            )
        }
        ServerEvent::RunFinished { summary, .. } => (None, Some(Note::Finished(Box::new(summary)))),
        ServerEvent::Error { message, .. } => (None, Some(Note::Failed(message))),
        other => {
            return Err(format!(
                "the Node.js script sent an event it may not send: {}",
                serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                    .unwrap_or_default()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Result<(Option<ServerEvent>, Option<Note>), String> {
        check_line(line.as_bytes(), 3, ModelKind::Threads, 2)
    }

    #[test]
    fn a_good_line_is_forwarded() {
        let (forward, note) =
            check(r#"{"type":"progress","run":3,"worker":1,"done":1,"total":4}"#).unwrap();
        assert!(matches!(
            forward,
            Some(ServerEvent::Progress { worker: 1, .. })
        ));
        assert!(note.is_none());
    }

    #[test]
    fn garbage_another_run_and_a_stranger_worker_are_refused() {
        assert!(check("hello from console.log")
            .unwrap_err()
            .contains("not a protocol event"));
        assert!(
            check(r#"{"type":"progress","run":4,"worker":1,"done":1,"total":4}"#)
                .unwrap_err()
                .contains("not run 3")
        );
        assert!(
            check(r#"{"type":"progress","run":3,"worker":2,"done":1,"total":4}"#)
                .unwrap_err()
                .contains("worker 2; this run has 2")
        );
        assert!(check(r#"{"type":"hello","version":1,"limits":null}"#).is_err());
        assert!(check(r#"{"type":"accepted","run":3}"#)
            .unwrap_err()
            .contains("may not send: accepted"));
    }

    #[test]
    fn the_summary_and_errors_go_to_the_engine_only() {
        let (forward, note) =
            check(r#"{"type":"error","run":3,"code":"run_failed","field":null,"message":"boom"}"#)
                .unwrap();
        assert!(forward.is_none());
        assert!(matches!(note, Some(Note::Failed(m)) if m == "boom"));
    }
}
