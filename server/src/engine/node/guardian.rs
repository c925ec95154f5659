//! The guardian: `spawnlab __guardian --parent <pid> -- node <script> <plan>`,
//! one small process per Node.js run, between the server and `node`.
//!
//! `PR_SET_PDEATHSIG` reaches only the process the server starts, and Node's
//! own children (`fork()`, `cluster.fork()`) are not armed with it. So the
//! server starts this guardian instead, which:
//!
//! - asks the kernel for SIGTERM when the server dies, even by SIGKILL;
//! - becomes a child subreaper, so Node's orphaned children become its
//!   children, and it can reap them;
//! - starts `node` as the leader of a new process group, which every process
//!   Node starts joins;
//! - on SIGTERM (from the server stopping the run, or from the kernel when
//!   the server died), or when `node` exits, kills that whole group and reaps
//!   every child before it exits itself.
//!
//! It is single-threaded apart from the spawner thread, waits for signals
//! synchronously (`sigwait`), and needs no async runtime.

use crate::engine::spawn::spawn;
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// The hidden subcommand that makes the binary a guardian.
pub const GUARDIAN_COMMAND: &str = "__guardian";

/// End a guardian's group: SIGTERM the guardian, which kills the group it
/// guards and reaps it; then reap the guardian off the async threads.
pub fn stop(mut guardian: std::process::Child) -> std::thread::JoinHandle<()> {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guardian.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    std::thread::spawn(move || {
        let _ = guardian.wait();
    })
}

/// `program args…` under a guardian (the spawnlab binary `guardian`) that
/// dies with this server and takes the program's whole process group with
/// it; every process carries the run marker `<server pid>-<tag>-<n>`. Its
/// stderr is the server's unless the caller says otherwise.
pub fn guarded_command(
    guardian: &std::path::Path,
    program: &std::path::Path,
    args: &[OsString],
    tag: &str,
) -> Command {
    let mut command = Command::new(guardian);
    command
        .arg(GUARDIAN_COMMAND)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(program)
        .args(args)
        .env(
            super::RUN_MARKER,
            format!("{}-{tag}-{}", std::process::id(), super::unique()),
        )
        .stderr(std::process::Stdio::inherit());
    command
}

/// Guard `argv` (a program and its arguments) for the server `parent`.
pub fn guardian_main(parent: u32, argv: Vec<OsString>) -> ExitCode {
    let signals = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ];
    let mut set = SigSet::empty();
    signals.iter().for_each(|&s| set.add(s));
    // Blocked here, taken by sigwait below; `std` gives every child an
    // empty signal mask again.
    if set.thread_block().is_err() {
        return ExitCode::FAILURE;
    }
    // The server spawned us with SIGKILL as the parent-death signal; a
    // guardian must outlive the server long enough to clean up, so it asks
    // for a signal it can catch. If the server died before this, leave.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err()
        || nix::unistd::getppid().as_raw() as u32 != parent
    {
        return ExitCode::FAILURE;
    }
    if nix::sys::prctl::set_child_subreaper(true).is_err() {
        return ExitCode::FAILURE;
    }
    let Some((program, args)) = argv.split_first() else {
        eprintln!("spawnlab guardian: nothing to run");
        return ExitCode::FAILURE;
    };
    let mut command = Command::new(program);
    command.args(args);
    // A new group led by node; it dies with us (PDEATHSIG) if we die first.
    let child = match spawn(command, None) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("spawnlab guardian: could not start {program:?}: {e}");
            return ExitCode::from(127);
        }
    };
    let node = Pid::from_raw(child.id() as i32);
    let mut node_status = None;
    while node_status.is_none() {
        match set.wait() {
            Ok(Signal::SIGCHLD) => node_status = reap_ready(node),
            Ok(_) => {
                // Stop: the whole group at once.
                let _ = killpg(node, Signal::SIGKILL);
            }
            Err(_) => {}
        }
    }
    // Whatever node left behind in its group goes too; as subreaper, every
    // orphan is our child, so waiting until there are none reaps them all.
    let _ = killpg(node, Signal::SIGKILL);
    while !matches!(waitpid(None, None), Err(nix::errno::Errno::ECHILD)) {}
    match node_status {
        Some(WaitStatus::Exited(_, 0)) => ExitCode::SUCCESS,
        Some(WaitStatus::Exited(_, code)) => ExitCode::from(code.clamp(1, 255) as u8),
        _ => ExitCode::FAILURE,
    }
}

/// Reap every child that has ended; node's status if node was one of them.
fn reap_ready(node: Pid) -> Option<WaitStatus> {
    let mut node_status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return node_status,
            Ok(status) if status.pid() == Some(node) => node_status = Some(status),
            Ok(_) => {}
        }
    }
}
