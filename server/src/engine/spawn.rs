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

use std::io;
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
                    reply,
                } in rx
                {
                    let _ = reply.send(start(&mut command, group));
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(tx)
    })
}

fn start(command: &mut Command, group: Option<u32>) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    command.process_group(group.map_or(0, |g| g as i32));
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, setpriority, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The server may have died between fork and prctl; then the
            // signal will never come, so leave now.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::setpriority(libc::PRIO_PROCESS, 0, WORKER_NICE);
            Ok(())
        });
    }
    command.spawn()
}

/// Start `command` in process group `group` (or a new group led by the child
/// when `None`), from the long-lived spawner thread.
pub fn spawn(command: Command, group: Option<u32>) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(Request {
            command,
            group,
            reply,
        })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// SIGKILL every process in `group`. Harmless if they are all gone.
pub fn kill_group(group: u32) {
    // SAFETY: killpg has no memory effects; a stale group id fails with ESRCH.
    unsafe {
        libc::killpg(group as libc::pid_t, libc::SIGKILL);
    }
}

/// Lower the calling thread's priority to [`WORKER_NICE`] (on Linux, nice is
/// per thread), for worker threads inside the server.
pub fn lower_this_thread() {
    // SAFETY: setpriority on our own thread id has no memory effects.
    unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            WORKER_NICE,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(pid: u32, index: usize) -> Option<i64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split_whitespace().nth(index - 3)?.parse().ok()
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
        // stat fields: 5 = process group, 19 = nice.
        assert_eq!(field(first.id(), 5), Some(group as i64));
        assert_eq!(field(second.id(), 5), Some(group as i64));
        assert_eq!(field(second.id(), 19), Some(WORKER_NICE as i64));
        kill_group(group);
        for child in [&mut first, &mut second] {
            let status = child.wait().unwrap();
            assert!(!status.success());
        }
    }
}
