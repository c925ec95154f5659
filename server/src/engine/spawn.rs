//! Starting processes so that none can outlive its run or the server.
//!
//! Every process the engine starts:
//!
//! - joins its run's own process group, so one `killpg` stops all of them;
//! - is armed with `PR_SET_PDEATHSIG(SIGKILL)`, so it dies if the server dies
//!   (even by SIGKILL, when no cleanup code runs);
//! - runs at a lower CPU priority (`nice` [`WORKER_NICE`]) than the site, so
//!   pages stay fast while labs saturate the CPU.
//!
//! The kernel delivers the parent-death signal when the *thread* that forked
//! the child exits, not the process. Async runtimes retire idle threads, so
//! every spawn goes through one dedicated thread that lives as long as the
//! server: [`spawn`] hands it the command and waits for the child.

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Niceness of every worker process and thread: the site's own threads stay
/// at 0 and win the CPU whenever both want it.
pub const WORKER_NICE: i32 = 10;

struct Request {
    command: Command,
    group: Option<u32>,
    /// A descriptor the child gets as its fd 3 (the Node runtime's event
    /// pipe); the parent's copy closes once the child has it.
    fd3: Option<OwnedFd>,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The spawner thread's inbox; the thread itself never exits.
fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("spawnlab-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop runs until exit.
                for Request {
                    mut command,
                    group,
                    fd3,
                    reply,
                } in rx
                {
                    let _ = reply.send(start(&mut command, group, fd3.as_ref()));
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(tx)
    })
}

fn start(command: &mut Command, group: Option<u32>, fd3: Option<&OwnedFd>) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    let fd3 = fd3.map(|fd| fd.as_raw_fd());
    command.process_group(group.map_or(0, |g| g as i32));
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, setpriority, dup2, fcntl,
    // _exit); `pre_exec` has no safe counterpart. `fd3` is open in the parent
    // until `spawn` returns, so it is open in the child here.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The server may have died between fork and prctl; then the
            // signal will never come, so leave now.
            if nix::unistd::getppid() != parent {
                libc::_exit(1);
            }
            set_nice(0);
            if let Some(fd) = fd3 {
                // dup2 clears close-on-exec on the copy; a descriptor that
                // already is 3 keeps its flag, so clear it by hand.
                if fd == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) != 3 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

/// `setpriority(PRIO_PROCESS, who, WORKER_NICE)`: `who` 0 is the calling
/// process (before exec) or, on Linux, a thread id. Neither nix nor std
/// wraps it.
fn set_nice(who: libc::id_t) {
    // SAFETY: setpriority has no memory effects; a failure only leaves the
    // priority where it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, who, WORKER_NICE);
    }
}

/// Start `command` in process group `group` (or a new group led by the child
/// when `None`), from the long-lived spawner thread.
pub fn spawn(command: Command, group: Option<u32>) -> io::Result<Child> {
    spawn_with_fd3(command, group, None)
}

/// [`spawn`], handing the child `fd3` as its file descriptor 3.
pub fn spawn_with_fd3(
    command: Command,
    group: Option<u32>,
    fd3: Option<OwnedFd>,
) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(Request {
            command,
            group,
            fd3,
            reply,
        })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// SIGKILL every process in `group`. Harmless if they are all gone (a
/// stale group id fails with ESRCH).
pub fn kill_group(group: u32) {
    let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
}

/// SIGKILL process `pid`. Harmless if it is gone.
pub fn kill_process(pid: u32) {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

/// Wait for each child so none is left a zombie.
pub fn reap(pids: &[u32]) {
    for &pid in pids {
        let _ = waitpid(Pid::from_raw(pid as i32), None);
    }
}

/// Lower the calling thread's priority to [`WORKER_NICE`] (on Linux, nice is
/// per thread), for worker threads inside the server.
pub fn lower_this_thread() {
    set_nice(nix::unistd::gettid().as_raw() as libc::id_t);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32) -> procfs::process::Stat {
        procfs::process::Process::new(pid as i32)
            .and_then(|p| p.stat())
            .expect("a live child has a /proc entry")
    }

    #[test]
    fn children_share_a_group_run_nice_and_die_together() {
        let sleeper = || {
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        };
        let mut first = spawn(sleeper(), None).unwrap();
        let group = first.id();
        let mut second = spawn(sleeper(), Some(group)).unwrap();
        assert_eq!(stat(first.id()).pgrp, group as i32);
        assert_eq!(stat(second.id()).pgrp, group as i32);
        assert_eq!(stat(second.id()).nice, i64::from(WORKER_NICE));
        kill_group(group);
        for child in [&mut first, &mut second] {
            let status = child.wait().unwrap();
            assert!(!status.success());
        }
    }
}
