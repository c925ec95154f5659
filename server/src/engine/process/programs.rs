//! Allow-listed programs — Node's `spawn` and `execFile`: the catalogue's
//! fixed argument vector, never a shell, run to their exit with their
//! output capped.

use super::coordinator::ChannelError;
use crate::engine::measure::cpu_time_of_exited;
use crate::engine::report::WorkerReport;
use protocol::catalogue::Arg;
use protocol::{Program, WorkResult};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most bytes of an external program's output that are kept.
pub const OUTPUT_CAP: usize = 4096;

/// The command for an allow-listed program, from the catalogue's argument
/// vector; `site_dir` is the one path a program may be given.
pub fn program_command(program: Program, site_dir: &Path) -> Command {
    let mut command = Command::new(program.binary());
    command.args(program_args(program, site_dir));
    command
}

/// An allow-listed program's arguments, from the catalogue's vector.
pub fn program_args(program: Program, site_dir: &Path) -> Vec<&std::ffi::OsStr> {
    program
        .args()
        .iter()
        .map(|arg| match arg {
            Arg::Text(text) => std::ffi::OsStr::new(*text),
            Arg::SiteDir => site_dir.as_os_str(),
        })
        .collect()
}

/// The result of a program that is not installed here.
pub fn not_installed(program: Program) -> WorkerReport {
    WorkerReport::Done {
        result: Some(WorkResult::Program {
            exit_code: None,
            output: format!("{} is not installed on this server", program.binary()),
            truncated: false,
        }),
        cpu: Duration::ZERO,
        memory: None,
        wall: Duration::ZERO,
        messages: None,
    }
}

/// Run an external program to its exit, keeping at most [`OUTPUT_CAP`] bytes
/// of what it prints (stdout, then stderr).
pub fn drive_program(
    child: &mut Child,
    spawned_at: Instant,
    pid: u32,
    tx: &mpsc::Sender<(u32, WorkerReport)>,
    worker: u32,
) -> Result<(), ChannelError> {
    let ready = WorkerReport::Ready {
        latency: spawned_at.elapsed(),
        pid,
        tid: None,
    };
    let _ = tx.send((worker, ready));
    let mut kept = Vec::new();
    let mut truncated = false;
    let stderr = child.stderr.take();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        stderr.map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        truncated |= read_capped(stream, &mut kept)?;
    }
    // Read the program's own CPU time while it is still a zombie, then reap.
    let cpu = cpu_time_of_exited(pid).unwrap_or_default();
    let status = child.wait()?;
    // The allow-listed programs end by themselves; one ended by a signal was
    // killed (a cancel, a deadline), and has no result to report.
    let result = status.code().map(|code| WorkResult::Program {
        exit_code: Some(code),
        output: String::from_utf8_lossy(&kept).into_owned(),
        truncated,
    });
    let done = WorkerReport::Done {
        result,
        cpu,
        memory: None,
        wall: spawned_at.elapsed(),
        messages: None,
    };
    let _ = tx.send((worker, done));
    Ok(())
}

/// Append what `stream` yields to `kept` up to [`OUTPUT_CAP`] in all, then
/// keep reading and discarding so the program never blocks on a full pipe.
/// True if anything was discarded.
fn read_capped(mut stream: impl Read, kept: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    let mut truncated = false;
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(truncated);
        }
        let room = OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
        truncated |= n > room;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_run_from_their_argument_vector() {
        let command = program_command(Program::ListPublic, Path::new("/srv/site"));
        assert_eq!(command.get_program(), "ls");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["-l", "/srv/site"]);
    }

    #[test]
    fn output_is_capped_but_read_to_the_end() {
        let big = vec![b'x'; OUTPUT_CAP + 10];
        let mut kept = Vec::new();
        assert!(read_capped(&big[..], &mut kept).unwrap());
        assert_eq!(kept.len(), OUTPUT_CAP);
    }
}
