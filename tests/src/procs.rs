//! Processes, as `/proc` describes them (through `procfs`): who is alive,
//! in which group, whose child. Tests find a run's processes by what the
//! run itself reported (pids, its process group), never by host-wide
//! counts that another test could change.

use crate::eventually;
use anyhow::{Context, Result};
use std::time::Duration;

/// One process, as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// R, S, D, Z (zombie), …
    pub state: char,
}

/// Every process on the host, from `/proc`.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| info(&p.ok()?)).collect()
}

fn info(process: &procfs::process::Process) -> Option<ProcInfo> {
    let stat = process.stat().ok()?;
    Some(ProcInfo {
        pid: stat.pid as u32,
        ppid: stat.ppid as u32,
        pgid: stat.pgrp as u32,
        state: stat.state,
    })
}

/// Process `pid`, if it exists (zombies included).
pub fn process(pid: u32) -> Option<ProcInfo> {
    info(&procfs::process::Process::new(pid as i32).ok()?)
}

/// The process group of `pid`, which must be alive: a test that cannot see
/// the process it is about to check fails here rather than checking
/// something else.
pub fn group_of(pid: u32) -> u32 {
    process(pid)
        .unwrap_or_else(|| panic!("process {pid} is gone before its group could be read"))
        .pgid
}

/// The run marker (`SPAWNLAB_RUN`) in `pid`'s environment: every process
/// of a Node.js run carries it, whatever became of its parents.
pub fn marker_of(pid: u32) -> Option<String> {
    env_of(pid, "SPAWNLAB_RUN")
}

/// The variable `name` in `pid`'s environment, as it was started.
pub fn env_of(pid: u32, name: &str) -> Option<String> {
    let env = procfs::process::Process::new(pid as i32)
        .ok()?
        .environ()
        .ok()?;
    env.get(std::ffi::OsStr::new(name))
        .map(|v| v.to_string_lossy().into_owned())
}

/// Every process (zombies included) whose environment carries `marker`.
pub fn with_marker(marker: &str) -> Vec<ProcInfo> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| {
        let p = p.ok()?;
        let env = p.environ().ok()?;
        (env.get(std::ffi::OsStr::new("SPAWNLAB_RUN"))? == marker)
            .then(|| info(&p))
            .flatten()
    })
    .collect()
}

/// Wait until no process carries `marker`; fail listing them otherwise.
pub async fn marker_is_gone(marker: &str) -> Result<()> {
    eventually(
        Duration::from_secs(5),
        "the run's processes to be gone",
        || async { Ok(with_marker(marker).is_empty().then_some(())) },
    )
    .await
    .with_context(|| format!("still alive with {marker}: {:?}", with_marker(marker)))
}

/// Processes still alive (zombies count: nobody has reaped them) in `pgid`.
pub fn group_members(pgid: u32) -> Vec<ProcInfo> {
    processes().into_iter().filter(|p| p.pgid == pgid).collect()
}

/// Children of `pid`, zombies included.
pub fn children_of(pid: u32) -> Vec<ProcInfo> {
    processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// True while `pid` exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    process(pid).is_some_and(|p| p.state != 'Z')
}

/// Wait until `pgid` has no members left; fail listing them otherwise. Two
/// seconds is long for a killed process and short for the tests' workloads,
/// which all run far longer if nobody stops them.
pub async fn group_is_gone(pgid: u32) -> Result<()> {
    eventually(
        Duration::from_secs(2),
        "the run's processes to be gone",
        || async { Ok(group_members(pgid).is_empty().then_some(())) },
    )
    .await
    .with_context(|| format!("still alive in group {pgid}: {:?}", group_members(pgid)))
}

/// Send `signal` to `pid` (a negative pid is a process group).
pub fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}
