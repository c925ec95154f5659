//! `spawnlab run`: any model from the terminal, through the same engine the
//! site uses, printed as a table (or as the protocol's JSON lines).
//! `spawnlab compare`: the compare page's calibration pass, as a table.

use crate::engine::limits::Limits;
use crate::engine::{Engine, Stop, StopReason};
use app::lab_state::{describe_result, format_count, format_us, Incident, LabState};
use app::protocol::{
    KillWorker, ModelSpec, Outcome, Program, RunSpec, RunSummary, SchedPolicy, Sharing,
    ThreadStrategy, WorkResult, Workload,
};
use clap::Args;
use serde::de::DeserializeOwned;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Run one lab from the command line.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// How the work is spread: main-thread, threads, child-process or cluster.
    #[arg(long, value_parser = kebab::<ModelKind>)]
    pub model: ModelKind,

    /// What to compute: primes, sha256-chain, sleep, program (child-process);
    /// http-hello, http-cpu, http-sleep (cluster). Defaults to primes, or
    /// http-hello for the cluster.
    #[arg(long)]
    pub workload: Option<String>,

    /// Threads, processes or cluster workers sharing the work (default 2;
    /// the main thread always has 1).
    #[arg(long)]
    pub workers: Option<u32>,

    /// primes: count the primes below this.
    #[arg(long, default_value_t = 20_000_000)]
    pub below: u64,

    /// sha256-chain: rounds of hashing, shared out.
    #[arg(long, default_value_t = 2_000_000)]
    pub rounds: u64,

    /// sleep, http-cpu, http-sleep: milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub ms: u64,

    /// program: uname, list-public, python-version or node-version.
    #[arg(long, value_parser = kebab::<Program>, default_value = "uname")]
    pub program: Program,

    /// child-process: ping-pong messages each child answers before working.
    #[arg(long, default_value_t = 0)]
    pub round_trips: u32,

    /// threads: spawn (fresh threads) or pool (reused).
    #[arg(long, value_parser = kebab::<ThreadStrategy>, default_value = "spawn")]
    pub strategy: ThreadStrategy,

    /// threads: messages (copied) or shared-memory (atomics).
    #[arg(long, value_parser = kebab::<Sharing>, default_value = "messages")]
    pub sharing: Sharing,

    /// cluster: round-robin, shared-socket or reuse-port.
    #[arg(long, value_parser = kebab::<SchedPolicy>, default_value = "round-robin")]
    pub policy: SchedPolicy,

    /// cluster: requests the load generator sends.
    #[arg(long, default_value_t = 2_000)]
    pub requests: u32,

    /// cluster: requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,

    /// cluster: open a new connection for every request.
    #[arg(long)]
    pub no_keep_alive: bool,

    /// cluster: kill this worker part-way through the load.
    #[arg(long)]
    pub kill_worker: Option<u32>,

    /// cluster: ... once this many requests have completed.
    #[arg(long, default_value_t = 500)]
    pub kill_after: u32,

    /// Wall-clock seconds before the run is stopped.
    #[arg(long, default_value_t = Limits::default().run_deadline.as_secs())]
    pub deadline_secs: u64,

    /// Print every event as a JSON line (the WebSocket protocol) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The models, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    MainThread,
    Threads,
    ChildProcess,
    Cluster,
}

/// Parse a kebab-case flag value into a protocol enum through its serde
/// names, so the command line and the wire can never disagree.
fn kebab<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.replace('-', "_")))
        .map_err(|e| e.to_string().replace('_', "-"))
}

impl RunArgs {
    /// The request these flags describe.
    pub fn spec(&self) -> Result<RunSpec, String> {
        let model = match self.model {
            ModelKind::MainThread => ModelSpec::MainThread,
            ModelKind::Threads => ModelSpec::Threads {
                strategy: self.strategy,
                sharing: self.sharing,
            },
            ModelKind::ChildProcess => ModelSpec::ChildProcess {
                round_trips: self.round_trips,
            },
            ModelKind::Cluster => ModelSpec::Cluster {
                policy: self.policy,
                requests: self.requests,
                concurrency: self.concurrency,
                keep_alive: !self.no_keep_alive,
                kill: self.kill_worker.map(|worker| KillWorker {
                    worker,
                    after_requests: self.kill_after,
                }),
            },
        };
        let default = if self.model == ModelKind::Cluster {
            "http-hello"
        } else {
            "primes"
        };
        let workload = match self.workload.as_deref().unwrap_or(default) {
            "primes" => Workload::Primes { below: self.below },
            "sha256-chain" => Workload::Sha256Chain {
                rounds: self.rounds,
            },
            "sleep" => Workload::Sleep { ms: self.ms },
            "program" => Workload::Program {
                program: self.program,
            },
            "http-hello" => Workload::HttpHello,
            "http-cpu" => Workload::HttpCpu { ms: self.ms },
            "http-sleep" => Workload::HttpSleep { ms: self.ms },
            other => {
                return Err(format!(
                    "--workload {other} is not in the catalogue; choose one of: primes, \
                     sha256-chain, sleep, program, http-hello, http-cpu, http-sleep"
                ))
            }
        };
        let workers = self.workers.unwrap_or(match self.model {
            ModelKind::MainThread => 1,
            _ => 2,
        });
        Ok(RunSpec {
            model,
            workload,
            workers,
        })
    }
}

/// The terminal's engine: one run at a time, with room for its workers (a
/// cluster's primary included), and no queue.
fn terminal_engine(limits: Limits, list_dir: PathBuf) -> Engine {
    let workers = limits.max_workers + 1;
    Engine::new(limits, 1, workers, 0).with_list_dir(list_dir)
}

/// Ctrl-C stops the work as Cancel does on the page; abort the task when done.
fn cancel_on_ctrl_c(stop: &Stop) -> tokio::task::JoinHandle<()> {
    let stop = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.request(StopReason::Cancelled);
        }
    })
}

/// Run the lab the flags describe and print what it measured.
pub async fn run(args: RunArgs, list_dir: PathBuf) -> ExitCode {
    let spec = match args.spec() {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        run_deadline: Duration::from_secs(args.deadline_secs),
        ..Limits::default()
    };
    let engine = terminal_engine(limits, list_dir);
    if let Err(invalid) = engine.validate(&spec) {
        // Flags are named like the protocol's fields: spec.workers is --workers.
        eprintln!("error: {}", invalid.message);
        return ExitCode::from(2);
    }

    let stop = Stop::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = tokio::spawn({
        let (stop, spec) = (stop.clone(), spec.clone());
        async move { engine.run(1, spec, tx, stop).await }
    });
    let interrupt = cancel_on_ctrl_c(&stop);

    let mut state = LabState::default();
    state.begin(1);
    let bar = !args.json && std::io::stderr().is_terminal();
    while let Some(ev) = rx.recv().await {
        if args.json {
            println!("{}", serde_json::to_string(&ev).expect("events serialize"));
        }
        state.apply(ev);
        if bar {
            draw_progress(&state);
        }
    }
    interrupt.abort();
    if bar {
        eprint!("\r{:60}\r", "");
    }
    let summary = run.await.ok().flatten();
    if !args.json {
        print!("{}", table(&state, &spec));
    }
    match summary {
        Some(RunSummary {
            outcome: Outcome::Completed,
            ..
        }) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Draw a one-line progress bar of all workers together on stderr.
fn draw_progress(state: &LabState) {
    let (done, total) = state
        .workers
        .iter()
        .fold((0, 0), |(d, t), r| (d + r.done, t + r.total));
    if total == 0 {
        return;
    }
    let filled = (done * 30 / total) as usize;
    eprint!(
        "\r[{}{}] {:>3}%  {} workers",
        "#".repeat(filled),
        "-".repeat(30 - filled),
        done * 100 / total,
        state.workers.len()
    );
    let _ = std::io::stderr().flush();
}

/// The run as a table: one line per worker, then the summary.
fn table(state: &LabState, spec: &RunSpec) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} · {} · workers: {}",
        spec.model.name(),
        spec.workload.name(),
        spec.workers
    ));
    if let Some(h) = &state.host {
        line(format!(
            "host: {}, {} logical CPUs{}, load {:.2}{}",
            h.cpu_model,
            h.logical_cores,
            h.physical_cores
                .map(|p| format!(" on {p} cores"))
                .unwrap_or_default(),
            h.load_average[0],
            if h.busy {
                " — busy when the run began"
            } else {
                ""
            }
        ));
    }
    line(format!(
        "{:>6} {:>8} {:>10} {:>19} {:>10} {:>10} {:>17} {:>8}  result",
        "worker", "pid", "start", "round trip p50/p99", "wall", "cpu", "rss / anon", "messages"
    ));
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for r in &state.workers {
        line(format!(
            "{:>6} {:>8} {:>10} {:>19} {:>10} {:>10} {:>17} {:>8}  {}",
            r.worker,
            r.tid.unwrap_or(r.pid),
            or_dash(r.start_latency_us.map(format_us)),
            or_dash(r.round_trip_ns.map(|(p50, p99)| format!(
                "{} / {}",
                format_us(p50 / 1000),
                format_us(p99 / 1000)
            ))),
            or_dash(r.wall_us.map(format_us)),
            or_dash(r.cpu_us.map(format_us)),
            or_dash(
                r.memory
                    .map(|m| format!("{} / {}", mib(m.rss_bytes), mib(m.anon_bytes)))
            ),
            or_dash(r.messages.map(format_count)),
            or_dash(r.result.as_ref().map(describe_result))
        ));
    }
    for r in &state.workers {
        if let Some(WorkResult::Program { output, .. }) = &r.result {
            if output.lines().count() > 1 {
                line(format!(
                    "--- worker {} output ---\n{}",
                    r.worker,
                    output.trim_end()
                ));
            }
        }
    }
    if let Some(load) = &state.load {
        let l = &load.latency;
        line(format!(
            "load: {} requests, {} answered, {} failed, {:.0} req/s over {}; latency p50 {} p90 {} p99 {} max {}",
            format_count(load.requests),
            format_count(load.completed),
            format_count(load.errors),
            load.rps,
            format_us(load.duration_us),
            format_us(l.p50_us),
            format_us(l.p90_us),
            format_us(l.p99_us),
            format_us(l.max_us)
        ));
        let counted = |v: &[u64]| {
            v.iter()
                .map(|n| format_count(*n))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        line(format!(
            "answers per worker (x-worker header): {} = {}",
            counted(&load.per_worker),
            format_count(load.per_worker.iter().sum())
        ));
        // After a respawn a slot's own count covers only its replacement.
        if load.respawns == 0 && load.served_by_workers.iter().all(Option::is_some) {
            let own: Vec<u64> = load.served_by_workers.iter().flatten().copied().collect();
            line(format!(
                "requests each worker counted itself:   {} = {}",
                counted(&own),
                format_count(own.iter().sum())
            ));
        }
    }
    for incident in &state.incidents {
        line(match incident {
            Incident::Exited {
                worker,
                pid,
                signal,
                at_ms,
            } => format!(
                "{at_ms:>6} ms  worker {worker} (pid {pid}) ended{}",
                signal
                    .map(|s| format!(" by signal {s}"))
                    .unwrap_or_default()
            ),
            Incident::Respawned {
                worker,
                pid,
                downtime_us,
                at_ms,
            } => format!(
                "{at_ms:>6} ms  worker {worker} replaced by pid {pid} after {}",
                format_us(*downtime_us)
            ),
        });
    }
    if let Some(lag) = state.summary.as_ref().and_then(|s| s.main_loop_lag_us) {
        line(format!(
            "main loop: {} heartbeats; the longest wait was {}",
            state.heartbeats.len(),
            format_us(lag)
        ));
    }
    if let Some(e) = &state.error {
        line(format!("error: {e}"));
    }
    if let Some(s) = &state.summary {
        line(format!(
            "{:?}: wall {}, cpu {}{}; {}",
            s.outcome,
            format_us(s.wall_us),
            format_us(s.cpu_us),
            match (s.baseline_wall_us, s.speedup) {
                (Some(b), Some(x)) => format!(", one worker {}, speedup {x:.2}x", format_us(b)),
                _ => String::new(),
            },
            describe_result(&s.result)
        ));
    }
    out
}

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", format_count(bytes / 1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn spec(args: &[&str]) -> Result<RunSpec, String> {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .run
            .spec()
    }

    #[test]
    fn flags_become_the_protocols_spec() {
        let s = spec(&[
            "--model",
            "cluster",
            "--workers",
            "2",
            "--policy",
            "reuse-port",
        ])
        .unwrap();
        assert_eq!(s.workload, Workload::HttpHello);
        let ModelSpec::Cluster {
            policy, keep_alive, ..
        } = s.model
        else {
            panic!("{s:?}")
        };
        assert_eq!(policy, SchedPolicy::ReusePort);
        assert!(keep_alive);

        let s = spec(&[
            "--model",
            "child-process",
            "--workload",
            "program",
            "--program",
            "node-version",
        ])
        .unwrap();
        assert_eq!(
            s.workload,
            Workload::Program {
                program: Program::NodeVersion
            }
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = spec(&["--model", "fork"]).unwrap_err();
        assert!(
            err.contains("main-thread") && err.contains("child-process"),
            "{err}"
        );
        let err = spec(&["--model", "threads", "--workload", "bitcoin"]).unwrap_err();
        assert!(err.contains("choose one of: primes"), "{err}");
    }
}

/// Measure every model once, as the compare page does.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Print the figures as one JSON object (the compare page's data).
    #[arg(long)]
    pub json: bool,
}

/// Run the calibration pass and print its figures.
pub async fn compare(args: CompareArgs, list_dir: PathBuf) -> ExitCode {
    let engine = terminal_engine(Limits::default(), list_dir);
    let stop = Stop::new();
    let interrupt = cancel_on_ctrl_c(&stop);
    if !args.json {
        eprintln!("measuring every model on this machine; this takes a few seconds…");
    }
    let figures = crate::engine::calibrate::calibrate(&engine, &stop).await;
    interrupt.abort();
    match figures {
        Ok(c) if args.json => {
            println!("{}", serde_json::to_string(&c).expect("figures serialize"));
            ExitCode::SUCCESS
        }
        Ok(c) => {
            print!("{}", compare_table(&c));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The measured rows against the models, then how each figure was taken.
fn compare_table(c: &app::protocol::Calibration) -> String {
    use app::compare::{shown, COLUMNS, MEASURED};
    let mut out = String::new();
    let host = &c.host;
    out.push_str(&format!(
        "host: {}, {} logical CPUs, load {:.2}{}\n",
        host.cpu_model,
        host.logical_cores,
        host.load_average[0],
        if host.busy {
            " (busy: figures may be slow)"
        } else {
            ""
        }
    ));
    out.push_str(&format!("job: {}\n\n", c.job));
    let column = |model: &str| c.models.iter().find(|m| m.model == model);
    out.push_str(&format!("{:<28}", ""));
    for (_, name) in COLUMNS {
        out.push_str(&format!("{name:>18}"));
    }
    out.push('\n');
    for (row, pick) in MEASURED {
        out.push_str(&format!("{row:<28}"));
        for (model, _) in COLUMNS {
            let cell = column(model).map_or("not measured".to_string(), |m| shown(pick(m)));
            out.push_str(&format!("{cell:>18}"));
        }
        out.push('\n');
    }
    out.push_str("\nhow each figure was measured:\n");
    for (model, name) in COLUMNS {
        let Some(m) = column(model) else { continue };
        for (row, pick) in MEASURED {
            let f = pick(m);
            if f.value.is_some() {
                out.push_str(&format!("  {name} · {row}: {}\n", f.how));
            }
        }
    }
    out.push_str(&format!(
        "\nthe pass took {}\n",
        format_us(c.took_ms * 1_000)
    ));
    out
}
