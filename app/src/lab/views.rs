//! What a lab draws from its state: per-worker rows, the summary, the main
//! loop's heartbeat, the cluster's live figures. Every chart has its figures
//! as text or a table beside it.

use crate::lab_state::{
    describe_result, format_count, format_us, outcome_word, Incident, LabState, WorkerRow,
};
use crate::protocol::{HostInfo, Outcome, RunSummary};
use leptos::prelude::*;

/// One row per worker: when it started, how far it is, what it cost.
#[component]
pub fn WorkerTable(lab: RwSignal<LabState>, noun: &'static str) -> AnyView {
    let row = move |w: WorkerRow| {
        let label = format!("{noun} {} progress", w.worker);
        let percent = format!("{:.0}%", w.fraction() * 100.0);
        let id = w.tid.unwrap_or(w.pid);
        let memory = w.memory.map(|m| {
            format!(
                "{:.1} / {:.1} MiB",
                m.rss_bytes as f64 / 1048576.0,
                m.anon_bytes as f64 / 1048576.0
            )
        });
        let trip = w
            .round_trip_ns
            .map(|(p50, p99)| format!("{} / {}", format_us(p50 / 1000), format_us(p99 / 1000)));
        view! {
            <tr data-worker=w.worker>
                <th scope="row">{w.worker}</th>
                <td class="num">{(id != 0).then(|| id.to_string())}</td>
                <td class="num">{w.start_latency_us.map(format_us)}</td>
                <td>
                    <progress max="1" value=w.fraction() aria-label=label></progress>
                    " "
                    <span class="num">{percent}</span>
                </td>
                <td class="num">{w.wall_us.map(format_us)}</td>
                <td class="num">{w.cpu_us.map(format_us)}</td>
                <td class="num">{memory.unwrap_or_else(|| "—".into())}</td>
                <td class="num">{trip.unwrap_or_else(|| "—".into())}</td>
                <td class="num">{w.messages.map(format_count).unwrap_or_else(|| "—".into())}</td>
                <td class="result">{w.result.as_ref().map(describe_result)}</td>
            </tr>
        }
    };
    view! {
        <div class="table-wrap">
            <table class="workers">
                <caption>"Per-worker measurements, as they arrive"</caption>
                <thead>
                    <tr>
                        <th scope="col">{noun}</th>
                        <th scope="col">"Kernel id"</th>
                        <th scope="col">"Spawn → first message"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Wall time"</th>
                        <th scope="col">"CPU time"</th>
                        <th scope="col">"Memory (resident / private)"</th>
                        <th scope="col">"Round trip p50 / p99"</th>
                        <th scope="col">"Messages sent"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || lab.with(|s| s.workers.clone()).into_iter().map(row).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The end of a run: totals, the measured speedup, and where it ran.
#[component]
pub fn Summary(summary: RunSummary, host: Option<HostInfo>, noun: &'static str) -> AnyView {
    let outcome = format!("{:?}", summary.outcome).to_lowercase();
    let outcome_attr = outcome.clone();
    let speedup = match (summary.speedup, summary.outcome) {
        (Some(s), _) => Some(format!("{s:.2}×")),
        (None, Outcome::Completed) if summary.baseline_wall_us.is_none() => None,
        (None, _) => Some("not measured: the run did not complete".into()),
    };
    let noun = noun.to_lowercase();
    view! {
        <section id="summary" class="summary" data-outcome=outcome_attr aria-labelledby="summary-title">
            <h3 id="summary-title">"Summary: " {outcome}</h3>
            <dl>
                <dt>"Result"</dt>
                <dd id="result">{describe_result(&summary.result)}</dd>
                <dt>"Wall time"</dt>
                <dd>{format_us(summary.wall_us)}</dd>
                <dt>"CPU time, all workers"</dt>
                <dd>{format_us(summary.cpu_us)}</dd>
                {summary.baseline_wall_us.map(|b| view! {
                    <dt>{format!("Same job on one {noun}")}</dt>
                    <dd>{format_us(b)}</dd>
                })}
                {speedup.map(|s| view! {
                    <dt>{format!("Speedup over one {noun} (measured)")}</dt>
                    <dd id="speedup">{s}</dd>
                })}
                {summary.main_loop_lag_us.map(|lag| view! {
                    <dt>"Longest the heartbeat waited"</dt>
                    <dd id="lag">{format_us(lag)}</dd>
                })}
            </dl>
            {host.map(|h| view! { <HostLine host=h/> })}
        </section>
    }
    .into_any()
}

/// Where the figures come from.
#[component]
fn HostLine(host: HostInfo) -> impl IntoView {
    let cores = match host.physical_cores {
        Some(p) => format!("{} logical CPUs on {p} physical cores", host.logical_cores),
        None => format!("{} logical CPUs", host.logical_cores),
    };
    let memory = format!(
        "{} GiB of memory, {} GiB free",
        host.memory_total_bytes / (1 << 30),
        host.memory_available_bytes / (1 << 30)
    );
    let load = format!(
        "load average {:.2} / {:.2} / {:.2}",
        host.load_average[0], host.load_average[1], host.load_average[2]
    );
    view! {
        <p class="host">
            "Measured on this server: " {host.cpu_model} ", " {cores} ", " {memory} ", " {load} "."
            {host.busy.then(|| view! {
                <strong class="busy">
                    " The machine was already busy when this run started, so these times are likely slower than on a quiet machine."
                </strong>
            })}
        </p>
    }
}

/// The main loop's pulse: one mark per heartbeat along the run's timeline,
/// its height the tick's lateness. A long gap is the loop frozen by the work.
#[component]
pub fn HeartbeatStrip(lab: RwSignal<LabState>) -> AnyView {
    const W: f64 = 600.0;
    const H: f64 = 80.0;
    let marks = move || {
        lab.with(|s| {
            let beats = &s.heartbeats;
            let span = beats.last().map_or(1, |b| b.0.max(1)) as f64;
            let worst = beats.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
            let mut out = Vec::new();
            let mut prev_x = 0.0;
            for &(at, lag) in beats {
                let x = at as f64 / span * W;
                // Log scale: a 1 ms tick and a 1 s freeze both stay visible.
                let h = ((lag.max(1) as f64).ln() / worst.ln().max(1.0) * (H - 6.0)).max(2.0);
                let late = lag > 50_000;
                if late {
                    out.push(view! {
                        <rect class="frozen" x=prev_x y="0" width=(x - prev_x).max(1.0) height=H></rect>
                    }.into_any());
                }
                out.push(view! {
                    <rect class=if late { "beat late" } else { "beat" } x=x - 1.0 y=H - h width="2" height=h></rect>
                }.into_any());
                prev_x = x;
            }
            out
        })
    };
    let figures = move || {
        lab.with(|s| {
            let mut lags: Vec<u64> = s.heartbeats.iter().map(|b| b.1).collect();
            lags.sort_unstable();
            (!lags.is_empty())
                .then(|| (lags.len(), lags[lags.len() / 2], *lags.last().unwrap_or(&0)))
        })
    };
    view! {
        <figure class="heartbeat">
            <figcaption>"The event loop's heartbeat: a mark every 20 ms it was free to tick"</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img"
                aria-label="Heartbeat ticks over time; a gap means the loop was blocked">
                {marks}
            </svg>
            <table class="compact">
                <caption class="visually-hidden">"Heartbeat figures"</caption>
                <tbody>
                    {move || figures().map(|(n, median, worst)| view! {
                        <tr><th scope="row">"Ticks"</th><td class="num">{n}</td></tr>
                        <tr><th scope="row">"Typical lateness (median)"</th><td class="num">{format_us(median)}</td></tr>
                        <tr><th scope="row">"Longest wait"</th><td class="num" id="worst-lag">{format_us(worst)}</td></tr>
                    })}
                </tbody>
            </table>
        </figure>
    }
    .into_any()
}

/// The cluster as it is loaded: answers per worker, throughput, latency,
/// deaths and replacements.
#[component]
pub fn ClusterView(lab: RwSignal<LabState>, kill: Callback<u32>) -> AnyView {
    // Workers can be killed while the load runs: after the first tick, until
    // the load generator's final figures arrive.
    let loading = move || lab.with(|s| s.busy() && !s.ticks.is_empty() && s.load.is_none());
    let per_worker = move || {
        lab.with(|s| {
            s.load
                .as_ref()
                .map(|l| l.per_worker.clone())
                .or_else(|| s.ticks.last().map(|t| t.per_worker.clone()))
                .unwrap_or_default()
        })
    };
    let bars =
        move || {
            let counts = per_worker();
            let total: u64 = counts.iter().sum();
            counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let share = if total == 0 { 0.0 } else { n as f64 / total as f64 };
                view! {
                    <tr data-cluster-worker=i>
                        <th scope="row">{i}</th>
                        <td class="num answers">{n}</td>
                        <td class="bar-cell">
                            <span class="bar" style=format!("width: {:.1}%", share * 100.0)></span>
                            <span class="num">{format!("{:.0}%", share * 100.0)}</span>
                        </td>
                    </tr>
                }
            })
            .collect_view()
        };
    let live = move || {
        lab.with(|s| {
            s.ticks.last().map(|t| {
                format!(
                    "{} answered, {} failed · {:.0} requests/s · latency p50 {} · p90 {} · p99 {}",
                    format_count(t.completed),
                    format_count(t.errors),
                    t.rps,
                    format_us(t.p50_us),
                    format_us(t.p90_us),
                    format_us(t.p99_us)
                )
            })
        })
    };
    let incidents = move || {
        lab.with(|s| {
            s.incidents
                .iter()
                .map(|i| {
                    let text = match i {
                        Incident::Exited { worker, pid, signal, at_ms } => format!(
                            "{at_ms} ms: worker {worker} (pid {pid}) died{}",
                            signal.map(|s| format!(", signal {s}")).unwrap_or_default()
                        ),
                        Incident::Respawned { worker, pid, downtime_us, at_ms } => format!(
                            "{at_ms} ms: the primary replaced worker {worker} with pid {pid} after {}",
                            format_us(*downtime_us)
                        ),
                    };
                    view! { <li>{text}</li> }
                })
                .collect_view()
        })
    };
    let total = move || {
        lab.with(|s| {
            s.load.as_ref().map(|l| {
                format!(
                    "{} of {} requests answered ({} failed) at {:.0} requests/s; latency p50 {}, p90 {}, p99 {}, max {}.",
                    format_count(l.completed),
                    format_count(l.requests),
                    format_count(l.errors),
                    l.rps,
                    format_us(l.latency.p50_us),
                    format_us(l.latency.p90_us),
                    format_us(l.latency.p99_us),
                    format_us(l.latency.max_us)
                )
            })
        })
    };
    view! {
        <section class="cluster" aria-label="The cluster under load">
            <p class="live">{live}</p>
            <div class="table-wrap">
                <table class="share">
                    <caption>"Answers per worker"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Worker"</th>
                            <th scope="col">"Answers"</th>
                            <th scope="col">"Share"</th>
                        </tr>
                    </thead>
                    <tbody>{bars}</tbody>
                </table>
            </div>
            // Kept out of the table, which is redrawn on every tick, so a
            // button is never replaced under the learner's pointer.
            <div class="kills" role="group" aria-label="Kill a worker now">
                <span>"Kill a worker now:"</span>
                <For
                    each=move || 0..lab.with(|s| s.workers.len() as u32)
                    key=|i| *i
                    children=move |i| {
                        view! {
                            <button
                                type="button"
                                class="kill"
                                data-kill=i
                                disabled=move || !loading()
                                on:click=move |_| kill.run(i)
                            >
                                {format!("Worker {i}")}
                            </button>
                        }
                    }
                />
            </div>
            <ul class="incidents">{incidents}</ul>
            <p id="load-total">{total}</p>
        </section>
    }
    .into_any()
}

/// The learner's finished runs on this page, newest first, so one setting
/// can be compared with the next (messages against shared memory, a pool
/// against fresh threads, one policy against another).
#[component]
pub fn RunHistory(lab: RwSignal<LabState>) -> AnyView {
    let rows = move || {
        lab.with(|s| {
            s.history
                .iter()
                .map(|past| {
                    let sum = &past.summary;
                    view! {
                        <tr>
                            <th scope="row">{past.run}</th>
                            <td class="result">{past.settings.clone()}</td>
                            <td>{outcome_word(sum.outcome)}</td>
                            <td class="num">{format_us(sum.wall_us)}</td>
                            <td class="num">
                                {sum.speedup.map_or("—".to_string(), |x| format!("{x:.2}×"))}
                            </td>
                            <td class="num">{past.start_us.map_or("—".to_string(), format_us)}</td>
                            <td class="num">{past.messages.map_or("—".to_string(), format_count)}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <div class="table-wrap history" class:empty=move || lab.with(|s| s.history.is_empty())>
            <table>
                <caption>"Your runs on this page, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Run"</th>
                        <th scope="col">"Settings"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Wall time"</th>
                        <th scope="col">"Speedup"</th>
                        <th scope="col">"Median start"</th>
                        <th scope="col">"Messages"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
