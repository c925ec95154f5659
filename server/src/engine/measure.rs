//! Clocks and counters the models share.
//!
//! CPU time is read from each worker's own clock: `getrusage(RUSAGE_SELF)`
//! under-reports threads that are still running, and a per-thread clock is
//! exactly "what this worker cost".

use app::protocol::Memory;
use std::time::Duration;

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the calling process (all its threads) has used so far.
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are the
    // kernel's fixed per-thread/per-process CPU clocks, which always exist.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The kernel's id for the calling thread, as `top -H` and `/proc` show it.
pub fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Resident memory of process `pid` (`"self"` for this one), from
/// `/proc/<pid>/status`: all resident pages, and the anonymous ones that are
/// this process's alone (its heap and stacks, not the shared binary).
pub fn memory_of(pid: &str) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_bytes: kib("VmRSS:")? * 1024,
        anon_bytes: kib("RssAnon:").unwrap_or(0) * 1024,
    })
}

/// The `p`-th percentile (0–100) of `sorted`, by the nearest-rank method.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds, saturating, for the wire.
pub fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_only_this_threads_work() {
        let spin = |d: Duration| {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed() < d {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            x
        };
        let before = thread_cpu_time();
        spin(Duration::from_millis(50));
        let used = thread_cpu_time() - before;
        // A busy loop of 50 ms wall uses at most 50 ms of CPU, and on a loaded
        // machine may get less; a sleeping thread would use almost none.
        assert!(used <= Duration::from_millis(60), "{used:?}");
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        assert!(thread_cpu_time() - before < Duration::from_millis(10));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |n| Duration::from_millis(n);
        let sorted: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let m = memory_of("self").unwrap();
        assert!(m.rss_bytes > 0 && m.anon_bytes > 0 && m.anon_bytes <= m.rss_bytes);
    }

    #[test]
    fn each_thread_has_its_own_id() {
        let main = current_tid();
        assert!(std::path::Path::new(&format!("/proc/self/task/{main}")).exists());
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(main, other);
    }
}
