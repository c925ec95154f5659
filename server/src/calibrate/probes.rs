//! Direct measurements the compare page needs where no lab run gives the
//! figure: a thread's start, a message between two threads, a thread's
//! memory. Each one starts real threads and times them.

use crate::engine::measure::memory_of_self;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Time `count` small messages sent to another thread and answered, over a
/// pair of channels: what one `postMessage` there and back costs at the
/// bottom, without Node's structured clone on top.
pub fn round_trips(count: usize) -> Vec<Duration> {
    let (to_peer, peer_inbox) = mpsc::channel::<u64>();
    let (to_us, our_inbox) = mpsc::channel::<u64>();
    let peer = std::thread::spawn(move || {
        for n in peer_inbox {
            if to_us.send(n + 1).is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(count);
    for n in 0..count as u64 {
        let sent = Instant::now();
        if to_peer.send(n).is_err() || our_inbox.recv().is_err() {
            break;
        }
        samples.push(sent.elapsed());
    }
    drop(to_peer);
    let _ = peer.join();
    samples.sort_unstable();
    samples
}

/// Start `count` threads one after another and time each from the spawn
/// call to its first message: what starting a worker thread costs, with
/// enough samples for a steady median. Sorted.
pub fn start_latencies(count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = mpsc::channel();
        let spawned = Instant::now();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(());
        });
        if rx.recv().is_ok() {
            samples.push(spawned.elapsed());
        }
        let _ = thread.join();
    }
    samples.sort_unstable();
    samples
}

/// Run `argv` to its exit `count` times, one after another, timing each
/// from the spawn to the reaped exit: what starting a short program costs,
/// with its stdout and stderr collected as `execFile` and `exec` collect
/// them. Sorted; a run that cannot start is an error.
pub fn program_runs(argv: &[&str], count: usize) -> std::io::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .output()?;
        samples.push(started.elapsed());
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{} exited with {}",
                argv.join(" "),
                out.status
            )));
        }
    }
    samples.sort_unstable();
    Ok(samples)
}

/// What one more thread adds to this process's resident memory: start
/// `count` threads that each allocate a little and wait, and divide the
/// growth of the process's RSS by `count`. Threads share the heap and the
/// code, so this is mostly each one's stack pages in use.
pub fn resident_bytes_per_thread(count: usize) -> Option<u64> {
    let rss = || memory_of_self().map(|m| m.rss_bytes);
    let before = rss()?;
    let release = Arc::new(std::sync::Barrier::new(count + 1));
    let (ready, all_ready) = mpsc::channel();
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let (release, ready) = (release.clone(), ready.clone());
            std::thread::spawn(move || {
                let scratch = std::hint::black_box(vec![1u8; 1024]);
                let _ = ready.send(());
                release.wait();
                drop(scratch);
            })
        })
        .collect();
    for _ in 0..count {
        all_ready.recv().ok()?;
    }
    let during = rss();
    release.wait();
    for thread in threads {
        let _ = thread.join();
    }
    Some(during?.saturating_sub(before) / count as u64)
}

/// How a bulk payload crosses between two threads (or processes), in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A fresh copy each way (what `postMessage`'s structured clone does).
    Copy,
    /// The buffer itself is moved, not copied (a transfer list).
    Move,
    /// Only a handle to the same memory crosses (`SharedArrayBuffer`).
    Shared,
    /// Through a pipe to another process and back (a child's stdio).
    Pipe,
}

/// Time `count` round trips of a `bytes`-long payload, crossing as `how`
/// says. Sorted.
pub fn payload_round_trips(
    how: Payload,
    bytes: usize,
    count: usize,
) -> std::io::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    match how {
        Payload::Pipe => {
            use std::io::{Read, Write};
            // `cat` echoes what it reads: a child process with a pipe each way.
            let mut cat = std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            let (Some(mut to), Some(mut from)) = (cat.stdin.take(), cat.stdout.take()) else {
                return Err(std::io::Error::other("cat has no pipes"));
            };
            let data = vec![1u8; bytes];
            let mut back = vec![0u8; bytes];
            for _ in 0..count {
                let sent = Instant::now();
                // Write and read at once, or a payload larger than the pipe
                // would wait for a reader that waits for the writer.
                std::thread::scope(|s| {
                    s.spawn(|| to.write_all(&data));
                    from.read_exact(&mut back)
                })?;
                samples.push(sent.elapsed());
            }
            drop(to);
            let _ = cat.kill();
            let _ = cat.wait();
        }
        _ => {
            let (to_peer, peer_inbox) = mpsc::channel::<Box<dyn std::any::Any + Send>>();
            let (to_us, our_inbox) = mpsc::channel::<Box<dyn std::any::Any + Send>>();
            let peer = std::thread::spawn(move || {
                for msg in peer_inbox {
                    // Copy: the peer receives its own copy and answers with one.
                    let answer: Box<dyn std::any::Any + Send> = match msg.downcast::<Vec<u8>>() {
                        Ok(v) if how == Payload::Copy => Box::new(std::hint::black_box(v.to_vec())),
                        Ok(v) => v,
                        Err(other) => other,
                    };
                    if to_us.send(answer).is_err() {
                        break;
                    }
                }
            });
            let shared: Arc<[u8]> = vec![1u8; bytes].into();
            let mut owned = vec![1u8; bytes];
            for _ in 0..count {
                let sent = Instant::now();
                let msg: Box<dyn std::any::Any + Send> = match how {
                    Payload::Copy => Box::new(owned.clone()),
                    Payload::Move => Box::new(std::mem::take(&mut owned)),
                    _ => Box::new(shared.clone()),
                };
                if to_peer.send(msg).is_err() {
                    break;
                }
                let Ok(back) = our_inbox.recv() else { break };
                samples.push(sent.elapsed());
                if let Ok(v) = back.downcast::<Vec<u8>>() {
                    if how == Payload::Move {
                        owned = *v;
                    }
                }
            }
            drop(to_peer);
            let _ = peer.join();
        }
    }
    samples.sort_unstable();
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_started_thread_is_timed() {
        let samples = start_latencies(5);
        assert_eq!(samples.len(), 5);
        assert!(samples.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn a_message_pair_comes_back_once_per_round_trip() {
        let samples = round_trips(100);
        assert_eq!(samples.len(), 100);
        assert!(samples.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn every_payload_comes_back_once_per_round_trip() {
        for how in [Payload::Copy, Payload::Move, Payload::Shared, Payload::Pipe] {
            let samples = payload_round_trips(how, 1 << 20, 3).unwrap();
            assert_eq!(samples.len(), 3, "{how:?}");
        }
    }

    #[test]
    fn extra_threads_are_measured_in_this_process() {
        // Other tests allocate in this process at the same time, so only a
        // loose bound holds here; the compare page shows the real figure.
        let per_thread = resident_bytes_per_thread(8).expect("/proc/self/status is readable");
        assert!(per_thread < 64 * 1024 * 1024, "{per_thread}");
    }
}
