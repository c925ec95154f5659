//! What the CLI prints: a run as a table, and the calibration pass as the
//! compare page's table. The words come from the protocol's `format`, as on
//! the page.

use protocol::compare::{shown, COLUMNS, MEASURED};
use protocol::format::{
    describe_result, describe_spec, format_bytes, format_count, format_us, host_line,
    incident_sentence, outcome_word, BUSY_NOTE,
};
use protocol::lab::LabState;
use protocol::{Calibration, ModelKind, RunSpec, WorkResult};

/// The run as a table: one line per worker, then the summary.
pub fn run_table(state: &LabState, spec: &RunSpec) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} · {}",
        spec.model.kind().node_name(),
        describe_spec(spec)
    ));
    if let Some(h) = &state.host {
        line(format!("host: {}", host_line(h)));
        if h.busy {
            line(BUSY_NOTE.to_string());
        }
    }
    line(format!(
        "{:>6} {:>8} {:>10} {:>19} {:>10} {:>10} {:>17} {:>8}  result",
        "worker", "pid", "start", "round trip p50/p99", "wall", "cpu", "rss / anon", "messages"
    ));
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for r in &state.workers {
        line(format!(
            "{:>6} {:>8} {:>10} {:>19} {:>10} {:>10} {:>17} {:>8}  {}",
            r.worker,
            r.tid.unwrap_or(r.pid),
            or_dash(r.start_latency_us.map(format_us)),
            or_dash(r.round_trip_ns.map(|(p50, p99)| format!(
                "{} / {}",
                format_us(p50 / 1000),
                format_us(p99 / 1000)
            ))),
            or_dash(r.wall_us.map(format_us)),
            or_dash(r.cpu_us.map(format_us)),
            or_dash(r.memory.map(|m| format!(
                "{} / {}",
                format_bytes(m.rss_bytes),
                format_bytes(m.anon_bytes)
            ))),
            or_dash(r.messages.map(format_count)),
            or_dash(r.result.as_ref().map(describe_result))
        ));
    }
    for r in &state.workers {
        if let Some(WorkResult::Program { output, .. }) = &r.result {
            if output.lines().count() > 1 {
                line(format!(
                    "--- worker {} output ---\n{}",
                    r.worker,
                    output.trim_end()
                ));
            }
        }
    }
    if let Some(load) = &state.load {
        let l = &load.latency;
        line(format!(
            "load: {} requests, {} answered, {} failed, {:.0} req/s over {}; latency p50 {} p90 {} p99 {} max {}",
            format_count(load.requests),
            format_count(load.completed),
            format_count(load.errors),
            load.rps,
            format_us(load.duration_us),
            format_us(l.p50_us),
            format_us(l.p90_us),
            format_us(l.p99_us),
            format_us(l.max_us)
        ));
        let counted = |v: &[u64]| {
            v.iter()
                .map(|n| format_count(*n))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        line(format!(
            "answers per worker (x-worker header): {} = {}",
            counted(&load.per_worker),
            format_count(load.per_worker.iter().sum())
        ));
        // After a respawn a slot's own count covers only its replacement.
        if load.respawns == 0 && load.served_by_workers.iter().all(Option::is_some) {
            let own: Vec<u64> = load.served_by_workers.iter().flatten().copied().collect();
            line(format!(
                "requests each worker counted itself:   {} = {}",
                counted(&own),
                format_count(own.iter().sum())
            ));
        }
    }
    for incident in &state.incidents {
        line(format!(
            "{:>6} ms  {}",
            incident.at_ms(),
            incident_sentence(incident)
        ));
    }
    if let Some(lag) = state.summary.as_ref().and_then(|s| s.main_loop_lag_us) {
        line(format!(
            "main loop: {} heartbeats; the longest wait was {}",
            state.heartbeats.len(),
            format_us(lag)
        ));
    }
    if let Some(e) = &state.error {
        line(format!("error: {e}"));
    }
    if let Some(s) = &state.summary {
        line(format!(
            "{}: wall {}, cpu {}{}; {}",
            outcome_word(s.outcome),
            format_us(s.wall_us),
            format_us(s.cpu_us),
            match (s.baseline_wall_us, s.speedup) {
                (Some(b), Some(x)) => format!(", one worker {}, speedup {x:.2}x", format_us(b)),
                _ => String::new(),
            },
            describe_result(&s.result)
        ));
    }
    out
}

/// The measured rows against the models, then how each figure was taken.
pub fn compare_table(c: &Calibration) -> String {
    let mut out = String::new();
    let host = &c.host;
    out.push_str(&format!("host: {}\n", host_line(host)));
    if host.busy {
        out.push_str(BUSY_NOTE);
        out.push('\n');
    }
    out.push_str(&format!("job: {}\n\n", c.job));
    let column = |model: ModelKind| c.models.iter().find(|m| m.model == model);
    out.push_str(&format!("{:<28}", ""));
    for model in COLUMNS {
        out.push_str(&format!("{:>18}", model.node_name()));
    }
    out.push('\n');
    for (row, pick) in MEASURED {
        out.push_str(&format!("{row:<28}"));
        for model in COLUMNS {
            let cell = column(model).map_or("not measured".to_string(), |m| shown(pick(m)));
            out.push_str(&format!("{cell:>18}"));
        }
        out.push('\n');
    }
    out.push_str("\nhow each figure was measured:\n");
    for model in COLUMNS {
        let Some(m) = column(model) else { continue };
        let name = model.node_name();
        for (row, pick) in MEASURED {
            let f = pick(m);
            if f.value.is_some() {
                out.push_str(&format!("  {name} · {row}: {}\n", f.how));
            }
        }
    }
    out.push_str(&format!(
        "\nthe pass took {}\n",
        format_us(c.took_ms * 1_000)
    ));
    out
}
