//! Clocks, memory and counters the models share, read through `nix` and
//! `procfs` rather than hand-written system calls and parsers.
//!
//! CPU time is read from each worker's own clock: `getrusage(RUSAGE_SELF)`
//! under-reports threads that are still running, and a per-thread clock is
//! exactly "what this worker cost".

use nix::time::{clock_gettime, ClockId};
use protocol::Memory;
use std::time::Duration;

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the calling process (all its threads) has used so far.
pub fn process_cpu_time() -> Duration {
    cpu_clock(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: ClockId) -> Duration {
    // The per-thread and per-process CPU clocks always exist on Linux.
    clock_gettime(clock).map_or(Duration::ZERO, Duration::from)
}

/// The kernel's id for the calling thread, as `top -H` and `/proc` show it.
pub fn current_tid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// Resident memory of this process: all resident pages, and the anonymous
/// ones that are this process's alone (its heap and stacks, not the shared
/// binary).
pub fn memory_of_self() -> Option<Memory> {
    memory(procfs::process::Process::myself().ok()?)
}

/// [`memory_of_self`] for process `pid`.
pub fn memory_of(pid: u32) -> Option<Memory> {
    memory(procfs::process::Process::new(pid as i32).ok()?)
}

fn memory(process: procfs::process::Process) -> Option<Memory> {
    let status = process.status().ok()?;
    Some(Memory {
        rss_bytes: status.vmrss? * 1024,
        anon_bytes: status.rssanon.unwrap_or(0) * 1024,
    })
}

/// CPU time (user and system) of every live process in group `pgid`, and
/// of the children they have reaped.
pub fn cpu_time_of_group(pgid: u32) -> Duration {
    let ticks: u64 = procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| p.stat().ok())
        .filter(|stat| stat.pgrp == pgid as i32)
        .map(|stat| stat.utime + stat.stime + (stat.cutime + stat.cstime).max(0) as u64)
        .sum();
    Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// CPU time (user and system) of our child `pid`, once it has exited:
/// waits for the exit without reaping, reads the zombie's own clock, and
/// leaves the reaping to the caller.
pub fn cpu_time_of_exited(pid: u32) -> Option<Duration> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(_) => break,
        }
    }
    let stat = procfs::process::Process::new(pid.as_raw())
        .ok()?
        .stat()
        .ok()?;
    let ticks = stat.utime + stat.stime;
    Some(Duration::from_secs_f64(
        ticks as f64 / procfs::ticks_per_second() as f64,
    ))
}

/// The `p`-th percentile (0–100) of `sorted`, by the nearest-rank method.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    protocol::format::nearest_rank(sorted, p).unwrap_or_default()
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
        let m = memory_of_self().unwrap();
        assert_eq!(
            memory_of(std::process::id()).map(|m| m.rss_bytes > 0),
            Some(true)
        );
        assert!(m.rss_bytes > 0 && m.anon_bytes > 0 && m.anon_bytes <= m.rss_bytes);
    }

    #[test]
    fn an_exited_childs_cpu_time_is_read_before_it_is_reaped() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let cpu = cpu_time_of_exited(child.id());
        assert!(cpu.is_some_and(|c| c < Duration::from_secs(1)), "{cpu:?}");
        assert!(child.wait().unwrap().success(), "still ours to reap");
    }

    #[test]
    fn each_thread_has_its_own_id() {
        let main = current_tid();
        assert!(std::path::Path::new(&format!("/proc/self/task/{main}")).exists());
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(main, other);
    }
}
