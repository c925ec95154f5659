//! The comparison table's measured rows, as the compare page and
//! `spawnlab compare` both lay them out.

use crate::format::{format_bytes, format_count, format_ns, format_us, Fixed};
use crate::lab::{Pair, PastRun};
use crate::{Calibration, Figure, ModelFigures, ModelKind, Runtime, RuntimeInfo, Unit};

/// The table's columns, in order: every model.
pub const COLUMNS: [ModelKind; 4] = ModelKind::ALL;

/// A re-run asked for sooner than this many seconds after the last pass
/// gets the last pass: the figures are shared by everyone, and a pass loads
/// both cores for about half a minute.
pub const MIN_RERUN_GAP_S: u64 = 300;

/// Where in a model's figures one row's value lives.
pub type Pick = fn(&ModelFigures) -> &Figure;

/// The measured rows: heading, and where in a model's figures the value
/// lives.
pub const MEASURED: [(&str, Pick); 6] = [
    ("Start cost (spawn → ready)", |m| &m.start),
    ("Small-message round trip", |m| &m.round_trip),
    ("Memory per worker", |m| &m.memory),
    ("The same CPU-bound job", |m| &m.job_wall),
    ("Speedup on this host", |m| &m.speedup),
    ("Hello over HTTP", |m| &m.hello_rps),
];

/// A figure's value, in words, or a dash where the model has none.
pub fn shown(figure: &Figure) -> String {
    figure
        .value
        .map_or_else(|| "—".into(), |v| show_value(v, figure.unit))
}

/// A value in its unit, in words.
pub fn show_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Micros => format_us(v.round() as u64),
        Unit::Nanos => format_ns(v.round() as u64),
        Unit::Bytes => format_bytes(v.round() as u64),
        Unit::Ratio => format!("{}×", Fixed(v, 2)),
        Unit::PerSecond => format!("{} req/s", format_count(v.round() as u64)),
    }
}

/// One model's figures on one runtime in a pass, if the pass ran it.
pub fn column(c: &Calibration, model: ModelKind, runtime: Runtime) -> Option<&ModelFigures> {
    c.models
        .iter()
        .find(|m| m.model == model && m.runtime == runtime)
}

/// One model's figure on one runtime in a pass, if it was measured.
pub fn figure_of(
    c: &Calibration,
    model: ModelKind,
    runtime: Runtime,
    pick: Pick,
) -> Option<&Figure> {
    column(c, model, runtime)
        .map(pick)
        .filter(|f| f.value.is_some())
}

/// How the pass names a runtime: "Node.js v20.20.2", "Rust engine".
pub fn runtime_name(c: &Calibration, runtime: Runtime) -> String {
    c.runtimes
        .iter()
        .find(|r| r.runtime == runtime)
        .map_or_else(|| runtime.label().into(), RuntimeInfo::name)
}

/// What a pass says about start cost, messages and memory, in sentences
/// whose every comparison follows the figures — which model is faster or
/// larger is computed, never assumed — and whose every figure names its
/// runtime. A runtime the pass did not measure is left out.
pub fn reading(c: &Calibration) -> Vec<String> {
    let start: Pick = |m| &m.start;
    let trip: Pick = |m| &m.round_trip;
    let memory: Pick = |m| &m.memory;
    let value = |model, runtime, pick| figure_of(c, model, runtime, pick).and_then(|f| f.value);
    let shown_of = |model, runtime, pick| figure_of(c, model, runtime, pick).map(shown);
    let mut out = Vec::new();
    for runtime in Runtime::ALL {
        let name = match runtime {
            Runtime::Node => runtime_name(c, runtime),
            Runtime::Rust => format!("the {}", runtime_name(c, runtime)),
        };
        let (thread, process) = (
            value(ModelKind::Threads, runtime, start),
            value(ModelKind::ChildProcess, runtime, start),
        );
        if let (Some(t), Some(p)) = (thread, process) {
            let (a, b) = (
                shown_of(ModelKind::Threads, runtime, start).unwrap_or_default(),
                shown_of(ModelKind::ChildProcess, runtime, start).unwrap_or_default(),
            );
            out.push(if p > t {
                format!(
                    "On {name}, a thread started in {a} and a child process in {b}: the process took {} as long.",
                    ratio(Some(p), Some(t))
                )
            } else {
                format!(
                    "On {name}, a child process started in {b} and a thread in {a}: here the thread was the slower to start ({} as long).",
                    ratio(Some(t), Some(p))
                )
            });
        }
        let (thread, process) = (
            value(ModelKind::Threads, runtime, trip),
            value(ModelKind::ChildProcess, runtime, trip),
        );
        if let (Some(t), Some(p)) = (thread, process) {
            let (a, b) = (
                shown_of(ModelKind::Threads, runtime, trip).unwrap_or_default(),
                shown_of(ModelKind::ChildProcess, runtime, trip).unwrap_or_default(),
            );
            let near = (t / p).max(p / t) < 2.0;
            out.push(format!(
                "On {name}, a small message took {a} there and back between threads and {b} to a child process: {}.",
                if near {
                    "about the same, since most of a round trip is waking the other side"
                } else if t < p {
                    "the thread's channel was the cheaper"
                } else {
                    "the child's channel was the cheaper"
                }
            ));
        }
        let (thread, process) = (
            value(ModelKind::Threads, runtime, memory),
            value(ModelKind::ChildProcess, runtime, memory),
        );
        if let (Some(t), Some(p)) = (thread, process) {
            let (a, b) = (
                shown_of(ModelKind::Threads, runtime, memory).unwrap_or_default(),
                shown_of(ModelKind::ChildProcess, runtime, memory).unwrap_or_default(),
            );
            out.push(if t >= p {
                format!(
                    "On {name}, one more thread added {a} and a child process held {b} of its own: the thread cost as much or more — the gap the usual comparison promises is gone."
                )
            } else if p / t < 2.0 {
                format!(
                    "On {name}, one more thread added {a} and a child process held {b} of its own: close, so the usual \"threads are lighter\" barely holds."
                )
            } else {
                format!(
                    "On {name}, one more thread added {a} and a child process held {b} of its own: the thread was lighter, {} less.",
                    ratio(Some(p), Some(t))
                )
            });
        }
    }
    if !out.is_empty() {
        out.push(
            "Memory was measured differently for the two: for threads, the process's growth in \
             anonymous resident memory per worker; for a child, that child's own anonymous \
             resident memory."
                .into(),
        );
    }
    out
}

/// How many times `a` is `b`, in words: "3.1×", or "—" where either is
/// missing (or zero).
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a > 0.0 => {
            let r = a / b;
            if r >= 100.0 {
                format!("{}×", format_count(r.round() as u64))
            } else if r >= 10.0 {
                format!("{}×", Fixed(r, 0))
            } else {
                format!("{}×", Fixed(r, 2))
            }
        }
        _ => "—".into(),
    }
}

/// One row of a Node.js-against-Rust comparison of the same settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub what: &'static str,
    pub node: String,
    pub rust: String,
    /// Node.js's figure over Rust's.
    pub ratio: String,
}

/// The rows comparing one pair of runs: the same settings on each runtime.
pub fn pair_rows(pair: &Pair) -> Vec<PairRow> {
    type Get = fn(&PastRun) -> Option<f64>;
    type Show = fn(f64) -> String;
    let rows: [(&str, Get, Show); 6] = [
        (
            "Wall time",
            |r| Some(r.summary.wall_us as f64),
            |v| format_us(v as u64),
        ),
        (
            "CPU time, all workers",
            |r| Some(r.summary.cpu_us as f64),
            |v| format_us(v as u64),
        ),
        (
            "Median start (spawn → first message)",
            |r| r.start_us.map(|v| v as f64),
            |v| format_us(v as u64),
        ),
        (
            "Median memory per worker",
            |r| r.memory_bytes.map(|v| v as f64),
            |v| format_bytes(v as u64),
        ),
        (
            "Speedup over one worker",
            |r| r.summary.speedup,
            |v| format!("{}×", Fixed(v, 2)),
        ),
        (
            "Runtime start-up, before the model",
            |r| r.boot_us.map(|v| v as f64),
            |v| format_us(v as u64),
        ),
    ];
    rows.iter()
        .map(|(what, get, show)| {
            let (node, rust) = (get(&pair.node), get(&pair.rust));
            PairRow {
                what,
                node: node.map_or("—".into(), show),
                rust: rust.map_or("—".into(), show),
                ratio: ratio(node, rust),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_in_their_units() {
        let f = |value, unit| Figure::measured(value, unit, "");
        assert_eq!(shown(&f(6_100.0, Unit::Micros)), "6.1 ms");
        assert_eq!(shown(&f(13_240.0, Unit::Nanos)), "13.2 µs");
        assert_eq!(shown(&f(1_536.0, Unit::Bytes)), "1.5 KiB");
        assert_eq!(shown(&f(1.934, Unit::Ratio)), "1.93×");
        assert_eq!(shown(&f(28_712.4, Unit::PerSecond)), "28,712 req/s");
        assert_eq!(shown(&Figure::none(Unit::Ratio, "n/a")), "—");
    }

    #[test]
    fn ratios_read_at_their_scale() {
        assert_eq!(ratio(Some(15_000.0), Some(11.0)), "1,364×");
        assert_eq!(ratio(Some(49.0), Some(3.0)), "16×");
        assert_eq!(ratio(Some(1.5), Some(1.0)), "1.50×");
        assert_eq!(ratio(None, Some(1.0)), "—");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "—");
    }

    fn pass(figures: &[(ModelKind, Runtime, f64, f64, f64)]) -> Calibration {
        let f = |v: f64, unit| Figure::measured(v, unit, "made up");
        let none = |unit| Figure::none(unit, "n/a");
        Calibration {
            host: crate::HostInfo {
                cpu_model: "test".into(),
                logical_cores: 2,
                physical_cores: None,
                load_average: [0.0; 3],
                memory_total_bytes: 1,
                memory_available_bytes: 1,
                busy: false,
                debug_build: false,
            },
            finished_unix_s: 0,
            took_ms: 0,
            job: "a job".into(),
            models: figures
                .iter()
                .map(|&(model, runtime, start_us, trip_ns, bytes)| ModelFigures {
                    model,
                    runtime,
                    start: f(start_us, Unit::Micros),
                    round_trip: f(trip_ns, Unit::Nanos),
                    memory: f(bytes, Unit::Bytes),
                    job_wall: none(Unit::Micros),
                    speedup: none(Unit::Ratio),
                    hello_rps: none(Unit::PerSecond),
                })
                .collect(),
            runtimes: vec![crate::RuntimeInfo {
                runtime: Runtime::Node,
                version: Some("v99.0.0".into()),
                available: true,
                note: String::new(),
                missing: vec![],
            }],
            break_even: vec![],
        }
    }

    /// The sentences follow the figures: a Worker slower to start than a
    /// fork, or heavier than one, is said so.
    #[test]
    fn sentences_follow_the_figures_not_the_folklore() {
        let usual = pass(&[
            (ModelKind::Threads, Runtime::Rust, 10.0, 4_000.0, 12_000.0),
            (
                ModelKind::ChildProcess,
                Runtime::Rust,
                4_000.0,
                5_000.0,
                1_800_000.0,
            ),
        ]);
        let said = reading(&usual).join(" ");
        assert!(said.contains("On the Rust engine, a thread started in 10 µs and a child process in 4.0 ms: the process took 400× as long."), "{said}");
        assert!(said.contains("about the same"), "{said}");
        assert!(said.contains("the thread was lighter, 150× less"), "{said}");

        let upside_down = pass(&[
            (
                ModelKind::Threads,
                Runtime::Node,
                60_000.0,
                90_000.0,
                9_000_000.0,
            ),
            (
                ModelKind::ChildProcess,
                Runtime::Node,
                40_000.0,
                900_000.0,
                7_000_000.0,
            ),
        ]);
        let said = reading(&upside_down).join(" ");
        assert!(said.contains("On Node.js v99.0.0, a child process started in 40.0 ms and a thread in 60.0 ms: here the thread was the slower to start (1.50× as long)."), "{said}");
        assert!(
            said.contains("the thread's channel was the cheaper"),
            "{said}"
        );
        assert!(
            said.contains("the gap the usual comparison promises is gone"),
            "{said}"
        );
        assert!(
            !said.contains("Rust engine"),
            "a runtime not measured is left out: {said}"
        );
    }
}
