//! What machine the numbers come from.
//!
//! Every run carries a [`HostInfo`] so a figure on the page can always say
//! where it was measured, and whether the machine was already busy.

use procfs::{Current, CurrentSI};
use protocol::HostInfo;
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
            busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64
        }
        _ => 0.0,
    };
    let cpuinfo = procfs::CpuInfo::current().ok();
    let meminfo = procfs::Meminfo::current().ok();
    let load = procfs::LoadAverage::current().ok();
    HostInfo {
        cpu_model: cpuinfo
            .as_ref()
            .and_then(|c| c.model_name(0))
            .map_or_else(|| std::env::consts::ARCH.to_string(), str::to_string),
        logical_cores: logical_cores(),
        physical_cores: cpuinfo.as_ref().and_then(physical_cores),
        load_average: load.map_or([0.0; 3], |l| [l.one, l.five, l.fifteen].map(f64::from)),
        memory_total_bytes: meminfo.as_ref().map_or(0, |m| m.mem_total),
        memory_available_bytes: meminfo.and_then(|m| m.mem_available).unwrap_or(0),
        busy: busy_share > BUSY_SHARE,
        debug_build: cfg!(debug_assertions),
    }
}

/// A host that could not be described (its description panicked).
pub fn unknown() -> HostInfo {
    HostInfo {
        cpu_model: std::env::consts::ARCH.to_string(),
        logical_cores: logical_cores(),
        physical_cores: None,
        load_average: [0.0; 3],
        memory_total_bytes: 0,
        memory_available_bytes: 0,
        busy: false,
        debug_build: cfg!(debug_assertions),
    }
}

/// CPUs this process may run on.
pub fn logical_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Distinct (package, core) pairs; `None` when the kernel does not say.
fn physical_cores(cpuinfo: &procfs::CpuInfo) -> Option<u32> {
    let cores: HashSet<(&str, &str)> = (0..cpuinfo.num_cores())
        .filter_map(|cpu| {
            Some((
                cpuinfo.get_field(cpu, "physical id")?,
                cpuinfo.get_field(cpu, "core id")?,
            ))
        })
        .collect();
    (!cores.is_empty()).then_some(cores.len() as u32)
}

/// (busy, total) ticks summed over all CPUs. Idle and iowait count as not
/// busy.
fn cpu_ticks() -> Option<(u64, u64)> {
    let t = procfs::KernelStats::current().ok()?.total;
    let idle = t.idle + t.iowait.unwrap_or(0);
    let total = t.user
        + t.nice
        + t.system
        + idle
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 2\nmodel name\t: Example CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 1\n\n";

    fn cpuinfo(text: &str) -> procfs::CpuInfo {
        procfs::FromRead::from_read(text.as_bytes()).unwrap()
    }

    #[test]
    fn hyperthreads_of_one_core_count_once() {
        let info = cpuinfo(CPUINFO);
        assert_eq!(physical_cores(&info), Some(2));
        assert_eq!(info.model_name(0), Some("Example CPU @ 2.0GHz"));
    }

    #[test]
    fn physical_cores_are_unknown_without_topology() {
        assert_eq!(physical_cores(&cpuinfo("processor\t: 0\n\n")), None);
    }

    #[test]
    fn this_host_describes_itself() {
        let host = describe();
        assert!(host.logical_cores >= 1);
        assert!(host.memory_total_bytes > 0);
        assert!(host.memory_available_bytes <= host.memory_total_bytes);
        assert!(!host.cpu_model.is_empty());
        if let Some(physical) = host.physical_cores {
            assert!(physical >= 1 && physical <= host.logical_cores);
        }
    }
}
