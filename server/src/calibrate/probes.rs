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
    fn extra_threads_are_measured_in_this_process() {
        // Other tests allocate in this process at the same time, so only a
        // loose bound holds here; the compare page shows the real figure.
        let per_thread = resident_bytes_per_thread(8).expect("/proc/self/status is readable");
        assert!(per_thread < 64 * 1024 * 1024, "{per_thread}");
    }
}
