//! `spawnlab run`: one lab in the terminal, printed as a table (or as the
//! protocol's JSON lines), with a progress bar on a terminal.

use super::args::RunArgs;
use super::tables::run_table;
use super::{cancel_on_ctrl_c, terminal_engine};
use crate::engine::Limits;
use protocol::lab::LabState;
use protocol::Outcome;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Run the lab the flags describe and print what it measured.
pub async fn run(args: RunArgs, list_dir: PathBuf) -> ExitCode {
    let spec = args.spec();
    let limits = Limits {
        run_deadline: Duration::from_secs(args.deadline_secs),
        ..Limits::default()
    };
    let engine = terminal_engine(limits, list_dir);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (handle, run) = match engine.prepare(1, spec.clone(), tx) {
        Ok(prepared) => prepared,
        Err(refused) => {
            // Flags are named like the protocol's fields: spec.workers is --workers.
            eprintln!("error: {refused}");
            return ExitCode::from(2);
        }
    };
    let run = tokio::spawn(run.execute());
    let interrupt = cancel_on_ctrl_c(handle);

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
    let outcome = match run.await {
        Ok(Ok(summary)) => Some(summary.outcome),
        Ok(Err(_refused)) => None,
        Err(crashed) => {
            eprintln!("error: the run crashed: {crashed}");
            None
        }
    };
    if !args.json {
        print!("{}", run_table(&state, &spec));
    }
    if outcome == Some(Outcome::Completed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
