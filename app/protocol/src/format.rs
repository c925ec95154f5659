//! Figures in words, the same on the page, in the terminal and in the
//! narration: durations, sizes, counts, results, runs, hosts and incidents.
//!
//! Every name a person reads comes from the catalogue's labels, never from
//! a Rust type's debug name.

use crate::lab::Incident;
use crate::{HostInfo, ModelSpec, Outcome, RunSpec, Serialization, WorkResult, Workload};

/// The median of some values (the lower middle of an even count), if any.
pub fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// The `p`-th percentile (0–100) of `sorted`, by the nearest-rank method;
/// `None` for no values.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// A run's outcome in words.
pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "completed",
        Outcome::Cancelled => "cancelled",
        Outcome::DeadlineExceeded => "stopped at the deadline",
        Outcome::Failed => "failed",
    }
}

/// A number written with a fixed count of decimals, rounded half away
/// from zero: `Fixed(2.345_678, 2)` is "2.35", `Fixed(96.4, 0)` is "96".
///
/// Every decimal the site shows is written through this, never through
/// `f64`'s own `Display` (`{:.2}`, `{}`): that pulls Rust's exact float
/// formatting (Grisu and Dragon4, 17 KB of code) into the browser's
/// bundle, and this is the only part of it the site needs. It honours
/// width and alignment (`{:>8}`) and writes at most 19 decimals. NaN is
/// written "NaN" and infinities "inf"; a magnitude beyond 2^64 /
/// 10^decimals, far above any figure the site shows, is written as that
/// bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fixed(pub f64, pub u8);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fixed(x, decimals) = *self;
        let decimals = decimals.min(19); // 10^19 is the last power of ten in a u64
        if x.is_nan() {
            return f.pad("NaN");
        }
        if x.is_infinite() {
            return f.pad(if x < 0.0 { "-inf" } else { "inf" });
        }
        let scale = 10u64.pow(decimals.into());
        // `as` saturates, and adding a half before it truncates rounds
        // half away from zero.
        let scaled = (x.abs() * scale as f64 + 0.5) as u64;
        let sign = if x < 0.0 && scaled > 0 { "-" } else { "" };
        let whole = scaled / scale;
        let text = if decimals == 0 {
            format!("{sign}{whole}")
        } else {
            let width = usize::from(decimals);
            format!("{sign}{whole}.{:0width$}", scaled % scale)
        };
        f.pad(&text)
    }
}

/// A duration for people: µs below a millisecond, ms below a second, else s.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{} ms", Fixed(us as f64 / 1_000.0, 1))
    } else {
        format!("{} s", Fixed(us as f64 / 1_000_000.0, 2))
    }
}

/// A duration in nanoseconds, at a scale a reader takes in at a glance.
pub fn format_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 100_000 {
        format!("{} µs", Fixed(ns as f64 / 1_000.0, 1))
    } else {
        format_us(ns / 1_000)
    }
}

/// A size in bytes, in binary units: 1536 → "1.5 KiB".
pub fn format_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        return format!("{bytes} B");
    }
    let (value, unit) = if b < KIB * KIB {
        (b / KIB, "KiB")
    } else if b < KIB * KIB * KIB {
        (b / (KIB * KIB), "MiB")
    } else {
        (b / (KIB * KIB * KIB), "GiB")
    };
    format!("{} {unit}", Fixed(value, 1))
}

/// A whole number with thousands separators: 20000000 → "20,000,000".
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A result in a few words.
pub fn describe_result(result: &WorkResult) -> String {
    match result {
        WorkResult::Primes { count } => format!("{} primes", format_count(*count)),
        WorkResult::Sha256Chain { digests } => match digests.as_slice() {
            [one] => format!("digest {}…", &one[..one.len().min(16)]),
            many => format!("{} chains", many.len()),
        },
        WorkResult::Slept { ms } => format!("slept {}", format_us(ms * 1_000)),
        WorkResult::Program {
            exit_code, output, ..
        } => {
            let first = output.lines().next().unwrap_or_default();
            let status = exit_code.map_or("no exit code".into(), |c| format!("exit {c}"));
            match output.lines().count().saturating_sub(1) {
                0 => format!("{status}: {first}"),
                more => format!("{status}: {first} (+{more} more lines)"),
            }
        }
        WorkResult::Requests { served } => format!("{} requests", format_count(*served)),
        WorkResult::Hashed { calls } => format!("{} hashes", format_count(*calls)),
        WorkResult::Incomplete => "stopped".into(),
    }
}

/// A workload in a few words: "primes below 3,000,000", "`uname -a`".
pub fn describe_workload(workload: &Workload) -> String {
    match workload {
        Workload::Primes { below } => format!("primes below {}", format_count(*below)),
        Workload::Sha256Chain { rounds } => format!("{} SHA-256 rounds", format_count(*rounds)),
        Workload::Sleep { ms } => format!("wait {ms} ms on a timer"),
        Workload::BlockingWait { ms } => format!("wait {ms} ms synchronously"),
        Workload::Program { program } => format!("run `{}`", program.command_line()),
        Workload::HttpHello => "hello per request".into(),
        Workload::HttpCpu { ms } => format!("{ms} ms CPU per request"),
        Workload::HttpSleep { ms } => format!("{ms} ms wait per request"),
        Workload::PoolHash {
            calls,
            pool_threads,
        } => format!("{calls} pbkdf2 hashes on a pool of {pool_threads} threads"),
    }
}

/// What was asked for, in a few words: "primes below 3,000,000 · 2 workers ·
/// pool · shared memory".
pub fn describe_spec(spec: &RunSpec) -> String {
    let mut parts = vec![
        describe_workload(&spec.workload),
        format!("{} workers", spec.workers),
    ];
    match &spec.model {
        ModelSpec::MainThread => parts.truncate(1),
        ModelSpec::Threads { strategy, sharing } => {
            parts.push(strategy.short().into());
            parts.push(sharing.short().into());
        }
        ModelSpec::ChildProcess {
            round_trips,
            serialization,
        } => {
            parts.push(format!("{round_trips} round trips"));
            if *serialization == Serialization::Advanced {
                parts.push("advanced serialization".into());
            }
        }
        ModelSpec::Cluster {
            policy,
            requests,
            concurrency,
            keep_alive,
            ..
        } => {
            parts.push(policy.short().into());
            parts.push(load_phrase(*requests, *concurrency, *keep_alive));
        }
        ModelSpec::Scaling {
            instances,
            balancer,
            balance,
            requests,
            concurrency,
            keep_alive,
            retries,
            faults,
        } => {
            parts[1] = format!("{instances} instances × {} workers", spec.workers);
            parts.push(format!("{} {}", balancer.label(), balance.short()));
            parts.push(load_phrase(*requests, *concurrency, *keep_alive));
            parts.push(
                if *retries {
                    "retries on"
                } else {
                    "retries off"
                }
                .into(),
            );
            for f in faults {
                parts.push(format!(
                    "{} after {}",
                    f.fault.describe(),
                    format_count(f.after_requests.into())
                ));
            }
        }
    }
    parts.join(" · ")
}

/// The load generator's part of a spec: "2,000 requests, 32 in flight".
fn load_phrase(requests: u32, concurrency: u32, keep_alive: bool) -> String {
    format!(
        "{} requests, {concurrency} in flight{}",
        format_count(requests.into()),
        if keep_alive { "" } else { ", no keep-alive" }
    )
}

/// The machine in one line: "AMD EPYC 7B13, 2 logical CPUs on 1 physical
/// core, 23 GiB of memory (21 GiB free), load 0.52 / 0.40 / 0.33".
pub fn host_line(host: &HostInfo) -> String {
    let cores = match host.physical_cores {
        Some(1) => format!("{} logical CPUs on 1 physical core", host.logical_cores),
        Some(p) => format!("{} logical CPUs on {p} physical cores", host.logical_cores),
        None => format!("{} logical CPUs", host.logical_cores),
    };
    let [one, five, fifteen] = host.load_average;
    format!(
        "{}, {cores}, {} of memory ({} free), load {} / {} / {}{}",
        host.cpu_model,
        format_bytes(host.memory_total_bytes),
        format_bytes(host.memory_available_bytes),
        Fixed(one, 2),
        Fixed(five, 2),
        Fixed(fifteen, 2),
        if host.debug_build {
            "; a debug build of the server (its engine compiled optimised)"
        } else {
            ""
        }
    )
}

/// Said wherever figures come from a machine that was already busy.
pub const BUSY_NOTE: &str = "The machine was already busy when this run started, so these \
                             times are likely slower than on a quiet machine.";

/// Who else ran while a run was measured: its figures share the CPU with
/// them.
pub fn shared_sentence(others: u32) -> String {
    match others {
        0 => "No other run shared the server while this one ran.".into(),
        1 => "1 other run shared the server's CPUs while this one ran, so these \
              figures include its competition."
            .into(),
        n => format!(
            "{n} other runs shared the server's CPUs while this one ran, so these \
             figures include their competition."
        ),
    }
}

/// A cluster worker's death or replacement, as a sentence.
pub fn incident_sentence(incident: &Incident) -> String {
    match incident {
        Incident::Exited {
            worker,
            pid,
            signal,
            ..
        } => {
            let how = signal.map_or("exited".to_string(), |s| {
                format!("was killed by signal {s}")
            });
            format!("Worker {worker} (pid {pid}) {how}; the primary noticed.")
        }
        Incident::Respawned {
            worker,
            pid,
            downtime_us,
            ..
        } => format!(
            "The primary replaced worker {worker} with pid {pid} after {}.",
            format_us(*downtime_us)
        ),
    }
}

/// Seconds since the Unix epoch as a UTC date and time: "2026-11-27 07:42 UTC".
pub fn utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let (hour, minute) = ((unix_s % 86_400) / 3_600, (unix_s % 3_600) / 60);
    // Days to a civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Program, SchedPolicy};

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![7]), Some(7));
        assert_eq!(median(vec![9, 1, 5]), Some(5));
        assert_eq!(median(vec![4, 1]), Some(1));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_count(20_000_000), "20,000,000");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_us(999), "999 µs");
        assert_eq!(format_us(1_500), "1.5 ms");
        assert_eq!(format_us(2_345_678), "2.35 s");
        assert_eq!(format_ns(850), "850 ns");
        assert_eq!(format_ns(13_240), "13.2 µs");
        assert_eq!(format_ns(6_100_000), "6.1 ms");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1_536), "1.5 KiB");
        assert_eq!(format_bytes(9_122_611), "8.7 MiB");
        assert_eq!(format_bytes(24 << 30), "24.0 GiB");
    }

    #[test]
    fn decimals_are_rounded_half_away_from_zero() {
        assert_eq!(Fixed(2.345_678, 2).to_string(), "2.35");
        assert_eq!(Fixed(0.25, 1).to_string(), "0.3");
        assert_eq!(Fixed(96.4, 0).to_string(), "96");
        assert_eq!(Fixed(99.5, 0).to_string(), "100");
        assert_eq!(Fixed(1.05, 3).to_string(), "1.050");
        assert_eq!(Fixed(-1.25, 1).to_string(), "-1.3");
        assert_eq!(Fixed(-0.04, 1).to_string(), "0.0");
        assert_eq!(Fixed(0.0, 0).to_string(), "0");
        assert_eq!(Fixed(f64::NAN, 1).to_string(), "NaN");
        assert_eq!(Fixed(f64::NEG_INFINITY, 1).to_string(), "-inf");
        assert_eq!(format!("[{:>6}]", Fixed(4.56789, 2)), "[  4.57]");
        // Where the two agree (no tie), the same text as Rust's own.
        for x in [0.0, 0.123, 1.0, 7.77, 12.5001, 1234.5678, 987_654.321] {
            assert_eq!(Fixed(x, 2).to_string(), format!("{x:.2}"));
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(1_795_737_600 + 7 * 3_600 + 42 * 60),
            "2026-11-27 07:42 UTC"
        );
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    /// Learners read labels, never Rust's debug names ("program Uname",
    /// "roundrobin").
    #[test]
    fn specs_are_described_in_words() {
        let program = RunSpec {
            runtime: Default::default(),
            model: ModelSpec::ChildProcess {
                round_trips: 0,
                serialization: Serialization::Json,
            },
            workload: Workload::Program {
                program: Program::Uname,
            },
            workers: 1,
        };
        assert_eq!(
            describe_spec(&program),
            "run `uname -a` · 1 workers · 0 round trips"
        );
        let cluster = RunSpec {
            runtime: Default::default(),
            model: ModelSpec::Cluster {
                policy: SchedPolicy::RoundRobin,
                requests: 20_000,
                concurrency: 32,
                keep_alive: false,
                kill: None,
            },
            workload: Workload::HttpHello,
            workers: 2,
        };
        assert_eq!(
            describe_spec(&cluster),
            "hello per request · 2 workers · round robin · 20,000 requests, 32 in flight, no keep-alive"
        );
    }
}
