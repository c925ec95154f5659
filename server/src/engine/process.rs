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
//! The same model runs allow-listed external programs, Node's `spawn` and
//! `execFile`: from an argument vector, never through a shell.
//!
//! Every process of a run shares one process group; stopping the run kills
//! the group and reaps every child (see [`super::spawn`]).
//!
//! # Layout
//!
//! - [`coordinator`]: the server's side: start the children, drive each
//!   one's channel from a thread of its own, stop and reap them.
//! - [`child`]: the child's side, `spawnlab __child`.
//! - [`programs`]: allow-listed programs, run to their exit.

pub mod child;
pub mod coordinator;
pub mod programs;

pub use child::{child_main, CHILD_COMMAND};
pub use coordinator::{run, Job};

use super::catalogue::Compute;
use protocol::Program;
use std::path::PathBuf;

/// What each child of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildJob {
    /// Its share of a computation, in a re-executed spawnlab.
    Compute(Compute),
    /// An allow-listed program, run to its exit.
    Program(Program),
}

/// Files the child-process model needs.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The binary a worker re-executes: the server's own, normally.
    pub worker_binary: PathBuf,
    /// The directory the `list_public` program lists: the served site.
    pub list_dir: PathBuf,
}
