//! What machine the numbers come from.
//!
//! Every run carries a [`HostInfo`] so a figure on the page can always say
//! where it was measured, and whether the machine was already busy.

use app::protocol::HostInfo;
use std::collections::HashSet;
use std::time::Duration;

/// How long to watch the CPUs before a run to judge whether they were idle.
const BUSY_SAMPLE: Duration = Duration::from_millis(200);

/// Above this share of all CPUs in use before the run, the host counts as busy.
const BUSY_SHARE: f64 = 0.25;

/// Read the host's description. Blocks for about [`BUSY_SAMPLE`] to measure
/// how busy the CPUs are right now: the load average alone lags by a minute
/// and would blame a run on the one before it.
pub fn describe() -> HostInfo {
    let before = cpu_ticks();
    std::thread::sleep(BUSY_SAMPLE);
    let after = cpu_ticks();
    let busy_share = match (before, after) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64
        }
        _ => 0.0,
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostInfo {
        cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        logical_cores: logical_cores(),
        physical_cores: physical_cores(&cpuinfo),
        load_average: load_average(),
        memory_total_bytes: meminfo_bytes(&meminfo, "MemTotal:").unwrap_or(0),
        memory_available_bytes: meminfo_bytes(&meminfo, "MemAvailable:").unwrap_or(0),
        busy: busy_share > BUSY_SHARE,
    }
}

/// CPUs this process may run on.
pub fn logical_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Distinct (package, core) pairs; `None` when the kernel does not say.
fn physical_cores(cpuinfo: &str) -> Option<u32> {
    let mut cores = HashSet::new();
    for block in cpuinfo.split("\n\n") {
        let field = |name: &str| {
            block
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        if let (Some(package), Some(core)) = (field("physical id"), field("core id")) {
            cores.insert((package, core));
        }
    }
    (!cores.is_empty()).then_some(cores.len() as u32)
}

fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0.0));
    [(); 3].map(|_| fields.next().unwrap_or(0.0))
}

fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// (busy, total) jiffies summed over all CPUs, from the first line of
/// /proc/stat. Idle and iowait count as not busy.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 2\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 1\n";

    #[test]
    fn hyperthreads_of_one_core_count_once() {
        assert_eq!(physical_cores(CPUINFO), Some(2));
        assert_eq!(cpu_model(CPUINFO).as_deref(), Some("Example CPU @ 2.0GHz"));
    }

    #[test]
    fn physical_cores_are_unknown_without_topology() {
        assert_eq!(physical_cores("processor\t: 0\n"), None);
    }

    #[test]
    fn meminfo_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemAvailable:   1024 kB\n";
        assert_eq!(meminfo_bytes(text, "MemTotal:"), Some(24_576_000 * 1024));
        assert_eq!(meminfo_bytes(text, "MemAvailable:"), Some(1024 * 1024));
    }

    #[test]
    fn this_host_describes_itself() {
        let host = describe();
        assert!(host.logical_cores >= 1);
        assert!(host.memory_total_bytes > 0);
        assert!(!host.cpu_model.is_empty());
    }
}
