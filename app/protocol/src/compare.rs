//! The comparison table's measured rows, as the compare page and
//! `spawnlab compare` both lay them out.

use crate::format::{format_bytes, format_count, format_ns, format_us};
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
}
