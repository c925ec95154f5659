//! The child's side: what `spawnlab __child` runs. It says `ready`, answers
//! pings, does the one share it is given, reports, and exits — or exits at
//! once when the server closes the channel.

use crate::engine::catalogue::{Compute, Share};
use crate::engine::ipc::{self, FromChild, ToChild};
use crate::engine::measure::{memory_of_self, micros, process_cpu_time};
use protocol::Memory;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The hidden subcommand that turns the binary into a worker.
pub const CHILD_COMMAND: &str = "__child";

/// How often a child reports progress, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// The worker side: what `spawnlab __child` runs. Reads requests from stdin,
/// answers on stdout, exits after its work or when the server goes away.
pub fn child_main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = String::new();
    if ipc::send(&mut out, &FromChild::Ready).is_err() {
        return ExitCode::FAILURE;
    }
    loop {
        let msg = match ipc::receive::<_, ToChild>(&mut input, &mut buf) {
            Ok(Some(msg)) => msg,
            // The server closed the channel: nothing more to do.
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spawnlab child: {e}");
                return ExitCode::FAILURE;
            }
        };
        match msg {
            ToChild::Ping { seq } => {
                if ipc::send(&mut out, &FromChild::Pong { seq }).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ToChild::Work {
                workload,
                worker,
                workers,
            } => {
                let work = match Compute::try_from(&workload) {
                    Ok(work) => work,
                    Err(e) => {
                        eprintln!("spawnlab child: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let share = Share::new(work, worker, workers);
                let mut last = None::<Instant>;
                let result = share.run(
                    || false,
                    |done, total| {
                        if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done == total {
                            last = Some(Instant::now());
                            let _ = ipc::send(&mut out, &FromChild::Progress { done, total });
                        }
                    },
                );
                let done = FromChild::Done {
                    result: result.ok(),
                    cpu_us: micros(process_cpu_time()),
                    memory: memory_of_self().unwrap_or(Memory {
                        rss_bytes: 0,
                        anon_bytes: 0,
                    }),
                };
                let _ = ipc::send(&mut out, &done);
                let _ = out.flush();
                return ExitCode::SUCCESS;
            }
        }
    }
}
