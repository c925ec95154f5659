//! `spawnlab compare`: the compare page's calibration pass, in the terminal.

use super::tables::compare_table;
use super::terminal_engine;
use crate::calibrate::calibrate;
use crate::engine::{Limits, Stop, StopReason};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

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
    // Ctrl-C stops the pass as a shutdown stops the server's.
    let stop = Stop::new();
    let interrupt = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.request(StopReason::Cancelled);
            }
        }
    });
    if !args.json {
        let on: Vec<String> = engine
            .runtimes()
            .await
            .iter()
            .filter(|r| r.available)
            .map(|r| r.name())
            .collect();
        eprintln!(
            "measuring every model on this machine, on {}; this takes about half a minute…",
            on.join(" and on ")
        );
    }
    let figures = calibrate(&engine, &stop).await;
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
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
