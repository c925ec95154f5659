//! The command line's subcommands, through the same engine the site uses.
//!
//! # Layout
//!
//! - [`args`]: `spawnlab run`'s flags and the request they describe; every
//!   value comes from the protocol's catalogue (clap's `ValueEnum`).
//! - [`run`]: `spawnlab run`, one lab in the terminal, with a progress bar.
//! - [`compare`]: `spawnlab compare`, the compare page's calibration pass.
//! - [`tables`]: what both print.

pub mod args;
pub mod compare;
pub mod run;
pub mod tables;

pub use args::RunArgs;
pub use compare::{compare, CompareArgs};
pub use run::run;

use crate::engine::{Engine, Limits, RunHandle, StopReason};
use std::path::PathBuf;
use std::sync::Arc;

/// The terminal's engine: one run at a time, with room for its workers (a
/// cluster's primary included), and no queue.
fn terminal_engine(limits: Limits, list_dir: PathBuf) -> Arc<Engine> {
    let workers = limits.max_workers + 1;
    Arc::new(Engine::new(limits, 1, workers, 0).with_list_dir(list_dir))
}

/// Ctrl-C stops the run as Cancel does on the page; abort the task when done.
fn cancel_on_ctrl_c(handle: RunHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.stop(StopReason::Cancelled);
        }
    })
}
