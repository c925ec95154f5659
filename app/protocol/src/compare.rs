//! The comparison table's measured rows, as the compare page and
//! `spawnlab compare` both lay them out.

use crate::format::{format_bytes, format_count, format_ns, format_us};
use crate::lab::{Pair, PastRun};
use crate::{Figure, ModelFigures, ModelKind, Unit};

/// The table's columns, in order: every model.
pub const COLUMNS: [ModelKind; 4] = ModelKind::ALL;

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
    let Some(v) = figure.value else {
        return "—".into();
    };
    match figure.unit {
        Unit::Micros => format_us(v.round() as u64),
        Unit::Nanos => format_ns(v.round() as u64),
        Unit::Bytes => format_bytes(v.round() as u64),
        Unit::Ratio => format!("{v:.2}×"),
        Unit::PerSecond => format!("{} req/s", format_count(v.round() as u64)),
    }
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
                format!("{r:.0}×")
            } else {
                format!("{r:.2}×")
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
            |v| format!("{v:.2}×"),
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
}
