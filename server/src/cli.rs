//! The command line's subcommands, through the same engine the site uses.
//!
//! # Layout
//!
//! - [`args`]: `spawnlab run`'s flags and the request they describe; every
//!   value comes from the protocol's catalogue (clap's `ValueEnum`).
//! - [`run`]: `spawnlab run`, one lab in the terminal, with a progress bar.
//! - [`compare`]: `spawnlab compare`, the compare page's calibration pass.
//! - [`bench`]: `spawnlab bench`, Node.js and the Rust engine side by side.
//! - [`tables`]: what both print.

pub mod args;
pub mod bench;
pub mod compare;
pub mod run;
pub mod tables;

pub use args::RunArgs;
pub use bench::{bench, BenchArgs};
pub use compare::{compare, CompareArgs};
pub use run::run;

use crate::engine::{Budget, Engine, Limits, RunHandle, StopReason};
use std::path::PathBuf;
use std::sync::Arc;

/// The terminal's engine: one run at a time, with room for all its workers
/// (a cluster's primary and Node's own process included), and no queue.
fn terminal_engine(limits: Limits, list_dir: PathBuf) -> Arc<Engine> {
    let budget = Budget {
        max_runs: 1,
        max_live_workers: limits.max_workers + 2,
        max_memory_mib: u32::MAX / 2,
        max_queue: 0,
    };
    Arc::new(Engine::new(limits, budget).with_list_dir(list_dir))
}

/// Ctrl-C stops the run as Cancel does on the page; abort the task when done.
fn cancel_on_ctrl_c(handle: RunHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.stop(StopReason::Cancelled);
        }
    })
}
