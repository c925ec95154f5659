//! `spawnlab run`: one lab in the terminal, printed as a table (or as the
//! protocol's JSON lines), with a progress bar on a terminal; with
//! `--runtime both`, on Node.js and then the Rust engine, and their ratio.

use super::args::RunArgs;
use super::tables::{pair_table, run_table};
use super::{cancel_on_ctrl_c, terminal_engine};
use crate::engine::{Engine, Learner, Limits};
use protocol::lab::{LabState, Pair};
use protocol::{Outcome, RunSpec};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Run the lab the flags describe and print what it measured.
pub async fn run(args: RunArgs, list_dir: PathBuf) -> ExitCode {
    let limits = Limits {
        run_deadline: Duration::from_secs(args.deadline_secs),
        ..Limits::default()
    };
    let engine = terminal_engine(limits, list_dir);
    let mut history = Vec::new();
    let mut all_completed = true;
    for (n, &runtime) in args.runtime.runtimes().iter().enumerate() {
        let spec = args.spec(runtime);
        let (state, outcome) = match run_one(&engine, n as u64 + 1, &spec, args.json).await {
            Ok(done) => done,
            Err(code) => return code,
        };
        all_completed &= outcome == Some(Outcome::Completed);
        if !args.json {
            print!("{}", run_table(&state, &spec));
            println!();
        }
        history.splice(0..0, state.history);
    }
    if let (Some(pair), false) = (Pair::newest(&history), args.json) {
        print!("{}", pair_table(&pair));
    }
    if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One run to its end: what the lab state made of it, and its outcome. A
/// refused request is reported and ends the command (exit code 2).
async fn run_one(
    engine: &Arc<Engine>,
    id: u64,
    spec: &RunSpec,
    json: bool,
) -> Result<(LabState, Option<Outcome>), ExitCode> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (handle, run) = match engine
        .prepare(&Learner::new("cli"), id, spec.clone(), tx)
        .await
    {
        Ok(prepared) => prepared,
        Err(refused) => {
            // Flags are named like the protocol's fields: spec.workers is --workers.
            eprintln!("error: {refused}");
            return Err(ExitCode::from(2));
        }
    };
    let run = tokio::spawn(run.execute());
    let interrupt = cancel_on_ctrl_c(handle);
    let mut state = LabState::default();
    state.begin(id);
    let bar = !json && std::io::stderr().is_terminal();
    while let Some(ev) = rx.recv().await {
        if json {
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
    let outcome = match run.await {
        Ok(Ok(summary)) => Some(summary.outcome),
        Ok(Err(_refused)) => None,
        Err(crashed) => {
            eprintln!("error: the run crashed: {crashed}");
            None
        }
    };
    Ok((state, outcome))
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
