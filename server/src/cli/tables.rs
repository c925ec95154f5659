//! What the CLI prints: a run as a table, and the calibration pass as the
//! compare page's table. The words come from the protocol's `format`, as on
//! the page.

use protocol::compare::{column, pair_rows, ratio, runtime_name, shown, COLUMNS, MEASURED};
use protocol::format::{
    describe_result, describe_spec, format_bytes, format_count, format_us, host_line,
    incident_sentence, nearest_rank, outcome_word, shared_sentence, BUSY_NOTE,
};
use protocol::lab::{LabState, Pair};
use protocol::{Calibration, RunSpec, Runtime, WorkResult};

/// The run as a table: one line per worker, then the summary.
pub fn run_table(state: &LabState, spec: &RunSpec) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let runtime = match &state.boot {
        Some(boot) => format!(
            "{} {} (started in {}, not counted below)",
            boot.runtime.label(),
            boot.version,
            format_us(boot.boot_us)
        ),
        None => spec.runtime.label().to_string(),
    };
    line(format!(
        "{runtime} · {} · {}",
        spec.model.kind().node_name(),
        describe_spec(spec)
    ));
    if let Some(h) = &state.host {
        line(format!("host: {}", host_line(h)));
        if h.busy {
            line(BUSY_NOTE.to_string());
        }
    }
    if !state.workers.is_empty() {
        line(format!(
            "{:>6} {:>8} {:>10} {:>19} {:>10} {:>10} {:>17} {:>8}  result",
            "worker", "pid", "start", "round trip p50/p99", "wall", "cpu", "rss / anon", "messages"
        ));
    }
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
    if let Some(stats) = &state.scaling.stats {
        let sc = &state.scaling;
        let behind = sc
            .balancer
            .as_ref()
            .map_or(String::new(), |(_, version, port, _)| {
                format!(" behind {version} on port {port}")
            });
        let l = &stats.latency;
        line(format!(
            "load{behind}, from {} client addresses: {} requests, {} answered, {} failed as the client saw it, {:.0} req/s over {}; latency p50 {} p90 {} p99 {} max {}",
            stats.client_addresses,
            format_count(stats.requests),
            format_count(stats.completed),
            format_count(stats.errors),
            stats.rps,
            format_us(stats.duration_us),
            format_us(l.p50_us),
            format_us(l.p90_us),
            format_us(l.p99_us),
            format_us(l.max_us)
        ));
        line(format!(
            "{:>8} {:>6} {:>24} {:>18}",
            "instance", "port", "answers per worker", "balancer attempts"
        ));
        for (i, row) in stats.per_instance.iter().enumerate() {
            let workers: Vec<String> = row.iter().map(|n| format_count(*n)).collect();
            line(format!(
                "{:>8} {:>6} {:>24} {:>18}",
                i,
                sc.instances
                    .get(i)
                    .and_then(|r| r.port)
                    .map_or("-".into(), |p| p.to_string()),
                format!(
                    "{} = {}",
                    workers.join(" + "),
                    format_count(row.iter().sum())
                ),
                stats
                    .balancer
                    .attempts
                    .get(i)
                    .map_or("-".into(), |n| format_count(*n))
            ));
        }
        let b = &stats.balancer;
        line(format!(
            "the balancer's log: {} requests, {} attempts failed, {} requests retried on another instance, {} answered with an error by the balancer itself",
            format_count(b.requests),
            format_count(b.failed_attempts),
            format_count(b.retried),
            format_count(b.errors)
        ));
        for (at_ms, what) in &sc.log {
            line(format!("{at_ms:>6} ms  {what}"));
        }
    }
    for incident in &state.incidents {
        line(format!(
            "{:>6} ms  {}",
            incident.at_ms(),
            incident_sentence(incident)
        ));
    }
    if !state.pings.is_empty() {
        let mut answered: Vec<u64> = state.pings.iter().filter_map(|p| p.1).collect();
        answered.sort_unstable();
        let pct = |p: f64| nearest_rank(&answered, p).map_or("—".into(), format_us);
        line(format!(
            "/ping from outside: {} sent, answered in {} (p50) / {} (p99), {} unanswered",
            state.pings.len(),
            pct(50.0),
            pct(99.0),
            state.pings.len() - answered.len()
        ));
    }
    if !state.pool_tasks.is_empty() {
        let finishes: Vec<String> = state
            .pool_tasks
            .iter()
            .map(|&(task, at)| format!("#{task} {}", format_us(at)))
            .collect();
        line(format!(
            "libuv pool: {} hashes finished, in this order: {}",
            state.pool_tasks.len(),
            finishes.join(", ")
        ));
    }
    if let Some((p50, p99, max)) = state.loop_delay {
        line(format!(
            "monitorEventLoopDelay: p50 {} / p99 {} / max {} (it samples every 10 ms, so an idle loop reads about 10 ms)",
            format_us(p50),
            format_us(p99),
            format_us(max)
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
        if let Some(n) = s.shared_with.filter(|&n| n > 0) {
            line(shared_sentence(n));
        }
    }
    out
}

/// The measured rows, model by model, each on Node.js and on the Rust
/// engine with their ratio; the break-even sweep; then how each figure was
/// taken.
pub fn compare_table(c: &Calibration) -> String {
    let mut out = String::new();
    let host = &c.host;
    out.push_str(&format!("host: {}\n", host_line(host)));
    if host.busy {
        out.push_str(BUSY_NOTE);
        out.push('\n');
    }
    out.push_str(&format!("job: {}\n", c.job));
    for info in &c.runtimes {
        out.push_str(&format!("{}: {}\n", info.runtime.label(), info.note));
    }
    let column = |model, runtime| column(c, model, runtime);
    let node_name = runtime_name(c, Runtime::Node);
    for model in COLUMNS {
        out.push_str(&format!(
            "\n{:<30} {:>18} {:>16} {:>10}\n",
            model.node_name(),
            node_name,
            Runtime::Rust.label(),
            "Node/Rust"
        ));
        for (row, pick) in MEASURED {
            let node = column(model, Runtime::Node).map(pick);
            let rust = column(model, Runtime::Rust).map(pick);
            if node.is_none_or(|f| f.value.is_none()) && rust.is_none_or(|f| f.value.is_none()) {
                continue;
            }
            let cell = |f: Option<&protocol::Figure>| f.map_or("not measured".to_string(), shown);
            out.push_str(&format!(
                "  {row:<28} {:>18} {:>16} {:>10}\n",
                cell(node),
                cell(rust),
                ratio(node.and_then(|f| f.value), rust.and_then(|f| f.value))
            ));
        }
    }
    if !c.break_even.is_empty() {
        out.push_str("\nbreak-even: primes on 2 workers against 1 (speedup; above 1, the second worker pays)\n");
        out.push_str(&format!("  {:>14}", "primes below"));
        for runtime in Runtime::ALL {
            out.push_str(&format!(" {:>16}", runtime.label()));
        }
        out.push('\n');
        let mut sizes: Vec<u64> = c.break_even.iter().map(|p| p.below).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for below in sizes {
            out.push_str(&format!("  {:>14}", format_count(below)));
            for runtime in Runtime::ALL {
                let point = c
                    .break_even
                    .iter()
                    .find(|p| p.below == below && p.runtime == runtime);
                let cell = point
                    .and_then(|p| p.speedup())
                    .map_or("—".into(), |x| format!("{x:.2}×"));
                out.push_str(&format!(" {cell:>16}"));
            }
            out.push('\n');
        }
    }
    out.push_str("\nhow each figure was measured:\n");
    for m in &c.models {
        for (row, pick) in MEASURED {
            let f = pick(m);
            if f.value.is_some() {
                out.push_str(&format!("  {} · {row}: {}\n", m.model.node_name(), f.how));
            }
        }
    }
    out.push_str(&format!(
        "\nthe pass took {}\n",
        format_us(c.took_ms * 1_000)
    ));
    out
}

/// The same settings on both runtimes, with Node.js's figure over Rust's.
pub fn pair_table(pair: &Pair) -> String {
    let mut out = format!(
        "{:<38} {:>14} {:>14} {:>12}\n",
        "same settings on both runtimes", "Node.js", "Rust engine", "Node/Rust"
    );
    for row in pair_rows(pair) {
        out.push_str(&format!(
            "{:<38} {:>14} {:>14} {:>12}\n",
            row.what, row.node, row.rust, row.ratio
        ));
    }
    out
}
