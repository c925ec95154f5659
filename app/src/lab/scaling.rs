//! The scaling lab's own views: the diagram of load generator, balancer,
//! instances and workers drawn from the run; the buttons that break them;
//! what the balancer logged against what the client got; and the learner's
//! earlier scaling runs.
//!
//! Everything here draws [`ScalingView`](protocol::lab::ScalingView) as the
//! server reported it: a box is up because the server said so, a count is
//! what the load generator or the balancer's access log counted. Colour is
//! never alone: every box says its state in words, and the figures are in
//! tables too.

use super::charts::{RateMark, RatePoint};
use super::markup::{esc, Attr, Attrs, Fixed, Markup};
use super::LabView;
use leptos::prelude::*;
use protocol::format::{format_count, format_us, outcome_word};
use protocol::lab::{BoxState, InstanceRow, LabState, PastRun};
use protocol::{BalancerKind, BalancerLog, Fault, ModelSpec, Runtime, ScalingStats};

/// What produced a run's figures, in words: "Node.js v20.20.2 behind
/// nginx/1.22.1" once its balancer is up, the runtime alone before (and in
/// the other labs). `None` before a run has started.
pub fn provenance(s: &LabState) -> Option<String> {
    let runtime = s.spec.as_ref()?.runtime;
    let Some((_, balancer, ..)) = &s.scaling.balancer else {
        return Some(runtime.label().to_string());
    };
    // The version that really ran (its boot), else the one `hello` found.
    let version = match runtime {
        Runtime::Node => s.boot.as_ref().map(|b| b.version.clone()).or_else(|| {
            s.runtimes
                .iter()
                .find(|r| r.runtime == runtime)
                .and_then(|r| r.version.clone())
        }),
        Runtime::Rust => None,
    };
    Some(behind(runtime, version.as_deref(), balancer))
}

/// "Node.js v20.20.2 behind nginx/1.22.1", "Rust engine behind HAProxy 2.6.12".
pub fn behind(runtime: Runtime, version: Option<&str>, balancer: &str) -> String {
    match version {
        Some(v) if !v.is_empty() => format!("{} {v} behind {balancer}", runtime.label()),
        _ => format!("{} behind {balancer}", runtime.label()),
    }
}

/// A finished scaling run, with what the generic history does not keep:
/// what the client and the balancer measured, and what ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRun {
    pub past: PastRun,
    pub stats: ScalingStats,
    /// "Node.js v20.20.2 behind nginx/1.22.1".
    pub ran_on: String,
}

impl ScalingRun {
    /// The run `s` has just finished, if it measured a load.
    pub fn of(s: &LabState) -> Option<ScalingRun> {
        let past = s.history.first().filter(|p| Some(p.run) == s.run)?;
        Some(ScalingRun {
            past: past.clone(),
            stats: s.scaling.stats.clone()?,
            ran_on: provenance(s)?,
        })
    }
}

/// The scaling lab's series for the throughput chart: its ticks, and the
/// moments of its fault log.
pub fn scaling_rates(lab: LabView) -> (Memo<Vec<RatePoint>>, Memo<Vec<RateMark>>) {
    let points = Memo::new(move |_| {
        lab.scaling_ticks
            .with(|t| t.iter().map(RatePoint::from).collect())
    });
    let marks = Memo::new(move |_| {
        lab.scaling_log
            .with(|log| log.iter().map(|(at, _)| (*at, "event")).collect())
    });
    (points, marks)
}

/// How many instances and workers per instance the current scaling run
/// asked for; zeros before one has started.
fn planned(lab: LabView) -> Memo<(u32, u32)> {
    Memo::new(move |_| {
        lab.spec.with(|spec| match spec {
            Some(spec) => match &spec.model {
                ModelSpec::Scaling { instances, .. } => (*instances, spec.workers),
                _ => (0, 0),
            },
            None => (0, 0),
        })
    })
}

/// Every instance the run asked for, those not heard of yet as starting,
/// each with a state for every worker.
pub fn padded(rows: &[InstanceRow], instances: u32, workers: u32) -> Vec<InstanceRow> {
    let n = rows.len().max(instances as usize);
    (0..n)
        .map(|i| {
            let mut row = rows.get(i).cloned().unwrap_or_default();
            let w = row.workers.len().max(workers as usize);
            // A worker not heard of yet shares its instance's state.
            row.workers.resize(w, row.state);
            row
        })
        .collect()
}

/// Answers per instance and worker: the final count once the load is done,
/// the newest tick's before.
fn spread(lab: LabView) -> Vec<Vec<u64>> {
    lab.scaling_stats
        .with(|s| s.as_ref().map(|s| s.per_instance.clone()))
        .or_else(|| {
            lab.scaling_ticks
                .with(|t| t.last().map(|t| t.per_instance.clone()))
        })
        .unwrap_or_default()
}

/// What the balancer's log says: final once the load is done, so far before.
fn balancer_log(lab: LabView) -> Option<(BalancerLog, bool)> {
    lab.scaling_stats
        .with(|s| s.as_ref().map(|s| (s.balancer.clone(), true)))
        .or_else(|| {
            lab.scaling_ticks
                .with(|t| t.last().map(|t| (t.balancer.clone(), false)))
        })
}

/// Which balancers this server has, and — when nginx is missing — that
/// the lab is off and how to install it. Never a simulation instead.
#[component]
pub fn BalancerNote(lab: LabView, balancer: RwSignal<BalancerKind>) -> impl IntoView {
    // Text (see `markup`): redrawn whole when the list or the choice changes.
    let body = move || {
        lab.balancers.with(|all| {
            let mut m = Markup::default();
            if all.is_empty() {
                m.text(
                    "p",
                    &[("class", &"runtime-note")],
                    "Waiting for the server to say which load balancers it has…",
                );
                return m.finish();
            }
            let nginx = all.iter().find(|b| b.balancer == BalancerKind::Nginx);
            if let Some(nginx) = nginx.filter(|b| !b.available) {
                m.text(
                    "p",
                    &[
                        ("class", &"runtime-note warning"),
                        ("role", &"note"),
                        ("id", &"balancer-missing"),
                        ("data-balancer", &"nginx"),
                    ],
                    &format!(
                        "This lab is off on this server, because it needs a real nginx: {} \
                         Nothing here is simulated, so the Run button stays disabled until then.",
                        nginx.note
                    ),
                );
                return m.finish();
            }
            let chosen = balancer.get();
            m.open(
                "ul",
                &[
                    ("class", &"runtime-note balancers"),
                    ("aria-label", &"Load balancers on this server"),
                ],
            );
            for b in all {
                let picked = b.balancer == chosen;
                let text = match (&b.version, b.available) {
                    (Some(v), true) => format!("{} found on this server: {v}.", b.balancer.label()),
                    // The note names the balancer and says how to install it.
                    _ => b.note.clone(),
                };
                if picked && !b.available {
                    m.text(
                        "li",
                        &[("data-balancer", &b.balancer.name()), ("class", &"warning")],
                        &text,
                    );
                } else {
                    m.text("li", &[("data-balancer", &b.balancer.name())], &text);
                }
            }
            m.close("ul");
            m.finish()
        })
    };
    view! { <div class="balancer-note" inner_html=body></div> }
}

/// The drawing's size in SVG units; it scales to the page's width.
const W: f64 = 800.0;
const GEN_X: f64 = 2.0;
const GEN_W: f64 = 134.0;
const BAL_X: f64 = 182.0;
const BAL_W: f64 = 152.0;
const SIDE_H: f64 = 92.0;
const INST_X: f64 = 374.0;
const INST_W: f64 = W - INST_X - 2.0;
const PAD: f64 = 8.0;
const HEAD: f64 = 26.0;
const CELL_H: f64 = 40.0;
const GAP: f64 = 6.0;
const INST_GAP: f64 = 14.0;
const TOP: f64 = 6.0;

/// Columns of worker boxes in an instance.
fn columns(workers: usize) -> usize {
    if workers <= 4 {
        workers.clamp(1, 2)
    } else {
        3
    }
}

/// An instance box's height with `workers` workers in it.
fn instance_height(workers: usize) -> f64 {
    let rows = workers.div_ceil(columns(workers)).max(1) as f64;
    HEAD + rows * CELL_H + (rows - 1.0) * GAP + PAD
}

/// The run as a diagram: load generator → balancer → instances, each
/// holding its workers, every box coloured and labelled with its state and
/// what it answered; then the buttons that break them.
#[component]
pub fn ScalingDiagram(lab: LabView, fault: Callback<Fault>) -> impl IntoView {
    let plan = planned(lab);
    let rows = Memo::new(move |_| {
        let (instances, workers) = plan.get();
        lab.instances.with(|rows| padded(rows, instances, workers))
    });
    let drawing = move || {
        let rows = rows.get();
        if rows.is_empty() {
            return None;
        }
        let counts = spread(lab);
        let log = balancer_log(lab).map(|(log, _)| log);
        let bal_state = lab.balancer_state.get();
        let balancer = lab.balancer.get();
        let concurrency = lab.spec.with(|s| match s.as_ref().map(|s| &s.model) {
            Some(ModelSpec::Scaling { concurrency, .. }) => *concurrency,
            _ => 0,
        });
        let tick = lab
            .scaling_ticks
            .with(|t| t.last().map(|t| (t.completed, t.errors)));
        let (completed, errors) = lab
            .scaling_stats
            .with(|s| s.as_ref().map(|s| (s.completed, s.errors)))
            .or(tick)
            .unwrap_or((0, 0));

        // Lay the instances out top to bottom.
        let mut tops = Vec::with_capacity(rows.len());
        let mut y = TOP;
        for row in &rows {
            tops.push(y);
            y += instance_height(row.workers.len()) + INST_GAP;
        }
        let height = (y - INST_GAP + TOP).max(SIDE_H + 2.0 * TOP);
        let mid = height / 2.0;

        let bal_title = balancer.as_ref().map_or_else(
            || "Load balancer".to_string(),
            |(_, version, ..)| version.clone(),
        );
        let bal_port = balancer
            .as_ref()
            .map(|(_, _, port, _)| format!("port {port}"))
            .unwrap_or_default();
        let bal_requests = log
            .as_ref()
            .map(|l| format!("{} requests logged", format_count(l.requests)))
            .unwrap_or_default();
        let summary = diagram_sentence(
            &rows,
            &counts,
            balancer.as_ref().map(|b| b.1.as_str()),
            bal_state,
        );

        let mut m = Markup::default();
        m.svg(W, height, &summary).raw(concat!(
            r#"<defs><marker id="scaling-arrow" viewBox="0 0 10 10" refX="9" refY="5" "#,
            r#"markerWidth="7" markerHeight="7" orient="auto">"#,
            r#"<path class="arrowhead" d="M 0 0 L 10 5 L 0 10 z"></path></marker></defs>"#,
        ));
        // A side box: the load generator or the balancer, a title and three
        // lines.
        let side = |m: &mut Markup, class: &str, state: &str, x: f64, w: f64, lines: [&str; 4]| {
            let top = mid - SIDE_H / 2.0;
            m.open("g", &[("class", &class), ("data-state", &state)])
                .empty(
                    "rect",
                    &[
                        ("class", &format!("box {state}")),
                        ("x", &x),
                        ("y", &top),
                        ("width", &w),
                        ("height", &SIDE_H),
                        ("rx", &6),
                    ],
                );
            for (k, (line, dy)) in lines.iter().zip([21.0, 41.0, 60.0, 79.0]).enumerate() {
                let y = top + dy;
                let attrs: &Attrs = if k == 0 {
                    &[("class", &"head"), ("x", &(x + 8.0)), ("y", &y)]
                } else {
                    &[("x", &(x + 8.0)), ("y", &y)]
                };
                m.text("text", attrs, line);
            }
            m.close("g");
        };
        side(
            &mut m,
            "gen-box",
            "up",
            GEN_X,
            GEN_W,
            [
                "Load generator",
                &format!("{concurrency} in flight"),
                &format!("{} answered", format_count(completed)),
                &format!("{} failed", format_count(errors)),
            ],
        );
        m.empty(
            "line",
            &[
                ("class", &"link"),
                ("x1", &(GEN_X + GEN_W)),
                ("x2", &(BAL_X - 2.0)),
                ("y1", &mid),
                ("y2", &mid),
                ("marker-end", &"url(#scaling-arrow)"),
            ],
        );
        side(
            &mut m,
            "balancer-box",
            bal_state.word(),
            BAL_X,
            BAL_W,
            [&bal_title, bal_state.word(), &bal_port, &bal_requests],
        );
        for (i, row) in rows.iter().enumerate() {
            let top = tops[i];
            let h = instance_height(row.workers.len());
            let cols = columns(row.workers.len());
            let cell_w = (INST_W - 2.0 * PAD - (cols as f64 - 1.0) * GAP) / cols as f64;
            let answered: u64 = counts.get(i).map_or(0, |c| c.iter().sum());
            let attempts = log.as_ref().and_then(|l| l.attempts.get(i).copied());
            let port = row.port.map(|p| format!(" · :{p}")).unwrap_or_default();
            let arrow_y = top + HEAD / 2.0;
            let cut = row.state == BoxState::Down || bal_state == BoxState::Down;
            m.empty(
                "line",
                &[
                    ("class", &if cut { "link cut" } else { "link" }),
                    ("x1", &(BAL_X + BAL_W)),
                    ("x2", &(INST_X - 2.0)),
                    ("y1", &mid),
                    ("y2", &arrow_y),
                    ("marker-end", &"url(#scaling-arrow)"),
                ],
            );
            if let Some(a) = attempts {
                m.text(
                    "text",
                    &[
                        ("class", &"link-label"),
                        ("x", &(INST_X - 8.0)),
                        ("y", &(arrow_y - 5.0)),
                        ("text-anchor", &"end"),
                    ],
                    &format!("{} attempts", format_count(a)),
                );
            }
            let state = row.state.word();
            m.open(
                "g",
                &[
                    ("class", &"instance-box"),
                    ("data-instance", &i),
                    ("data-state", &state),
                ],
            )
            .empty(
                "rect",
                &[
                    ("class", &format!("box instance {state}")),
                    ("x", &INST_X),
                    ("y", &top),
                    ("width", &INST_W),
                    ("height", &h),
                    ("rx", &6),
                ],
            )
            .text(
                "text",
                &[
                    ("class", &"head"),
                    ("x", &(INST_X + PAD)),
                    ("y", &(top + 18.0)),
                ],
                &format!(
                    "Instance {i}: {state}{port} · {} answers",
                    format_count(answered)
                ),
            );
            for (j, worker) in row.workers.iter().enumerate() {
                let x = INST_X + PAD + (j % cols) as f64 * (cell_w + GAP);
                let y = top + HEAD + (j / cols) as f64 * (CELL_H + GAP);
                let n = counts.get(i).and_then(|c| c.get(j)).copied().unwrap_or(0);
                let word = worker.word();
                m.open(
                    "g",
                    &[
                        ("class", &"worker-box"),
                        ("data-instance", &i),
                        ("data-worker", &j),
                        ("data-state", &word),
                    ],
                )
                .empty(
                    "rect",
                    &[
                        ("class", &format!("box {word}")),
                        ("x", &x),
                        ("y", &y),
                        ("width", &cell_w),
                        ("height", &CELL_H),
                        ("rx", &4),
                    ],
                )
                .text(
                    "text",
                    &[("x", &(x + 6.0)), ("y", &(y + 16.0))],
                    &format!("Worker {j}: {word}"),
                )
                .text(
                    "text",
                    &[("class", &"count"), ("x", &(x + 6.0)), ("y", &(y + 32.0))],
                    &format!("{} answers", format_count(n)),
                )
                .close("g");
            }
            m.close("g");
        }
        m.close("svg");
        Some(m.finish())
    };
    let table_rows = move || {
        let counts = spread(lab);
        let mut m = Markup::default();
        for (i, row) in rows.get().iter().enumerate() {
            let per_worker = row
                .workers
                .iter()
                .enumerate()
                .map(|(j, state)| {
                    let n = counts.get(i).and_then(|c| c.get(j)).copied().unwrap_or(0);
                    format!("worker {j} ({}): {}", state.word(), format_count(n))
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let answered: u64 = counts.get(i).map_or(0, |c| c.iter().sum());
            let num = [("class", &"num" as &dyn Attr)];
            m.open("tr", &[("data-instance", &i)])
                .text("th", &[("scope", &"row")], &i.to_string())
                .text("td", &[], row.state.word())
                .text("td", &num, &row.port.map_or("—".into(), |p| p.to_string()))
                .text("td", &num, &row.start_us.map_or("—".into(), format_us))
                .text("td", &num, &row.starts.to_string())
                .text("td", &num, &format_count(answered))
                .text("td", &[("class", &"result")], &per_worker)
                .close("tr");
        }
        m.finish()
    };
    let note = lab.runtime_note();
    let live = move || {
        lab.scaling_ticks.with(|ticks| {
            ticks.last().map(|t| {
                format!(
                    "{} answered, {} failed · {} requests/s in the last tick · latency p50 {} · p90 {} · p99 {}{}",
                    format_count(t.completed),
                    format_count(t.errors),
                    Fixed(t.rps, 0),
                    format_us(t.p50_us),
                    format_us(t.p90_us),
                    format_us(t.p99_us),
                    note().unwrap_or_default()
                )
            })
        })
    };
    // Built apart and erased, so the section's view type stays small
    // enough for the compiler (and the bundle).
    let table = view! {
                <details>
                    <summary>"The diagram as a table"</summary>
                    <div class="table-wrap" tabindex="0" role="region" aria-label="The diagram as a table">
                        <table class="compact">
                            <thead>
                                <tr>
                                    <th scope="col">"Instance"</th>
                                    <th scope="col">"State"</th>
                                    <th scope="col">"Port"</th>
                                    <th scope="col">"Start → serving"</th>
                                    <th scope="col">"Times started"</th>
                                    <th scope="col">"Answers"</th>
                                    <th scope="col">"Answers per worker"</th>
                                </tr>
                            </thead>
                            <tbody inner_html=table_rows></tbody>
                        </table>
                    </div>
                </details>
    };
    view! {
        <section class="scaling" class:empty=move || rows.with(Vec::is_empty) aria-label="The instances under load">
            <p class="live">{live}</p>
            <figure class="scaling-diagram">
                <figcaption>
                    "The run as it stands: requests flow left to right; each box says whether it is up"
                    {lab.runtime_note()}
                </figcaption>
                <div class="drawing" inner_html=move || drawing().unwrap_or_default()></div>
                <ul class="legend" aria-hidden="true">
                    <li><span class="key box-key up"></span>"up: serving"</li>
                    <li><span class="key box-key starting"></span>"starting"</li>
                    <li><span class="key box-key down"></span>"down: killed, or waiting for its replacement"</li>
                </ul>
                {table}
            </figure>
            <FaultButtons lab=lab fault=fault rows=rows/>
        </section>
    }
}

/// The diagram in one sentence, for a screen reader.
fn diagram_sentence(
    rows: &[InstanceRow],
    counts: &[Vec<u64>],
    balancer: Option<&str>,
    balancer_state: BoxState,
) -> String {
    let instances = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let up = row.workers.iter().filter(|w| **w == BoxState::Up).count();
            let answered: u64 = counts.get(i).map_or(0, |c| c.iter().sum());
            format!(
                "instance {i} {}, {up} of {} workers up, {} answers",
                row.state.word(),
                row.workers.len(),
                format_count(answered)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "The load generator sends to {} ({}), which spreads the requests over {} instances: {instances}. The same figures are in the table below.",
        balancer.unwrap_or("the load balancer"),
        balancer_state.word(),
        rows.len()
    )
}

/// Break part of the run now, or bring an instance back. Kept out of the
/// drawing, which is redrawn on every tick, so a button is never replaced
/// under the learner's pointer.
#[component]
fn FaultButtons(
    lab: LabView,
    fault: Callback<Fault>,
    rows: Memo<Vec<InstanceRow>>,
) -> impl IntoView {
    // Faults make sense from the moment the balancer is up until the load
    // generator's final figures arrive.
    let live = Memo::new(move |_| {
        lab.busy.get()
            && lab.balancer.with(Option::is_some)
            && lab.scaling_stats.with(Option::is_none)
    });
    let state_of = move |i: usize| rows.with(|r| r.get(i).map_or(BoxState::Starting, |r| r.state));
    let workers_of = move |i: usize| rows.with(|r| r.get(i).map_or(0, |r| r.workers.len()));
    view! {
        <div class="faults" role="group" aria-label="Break something now">
            <For
                each=move || 0..rows.with(Vec::len)
                key=|i| *i
                children=move |i| {
                    let worker = RwSignal::new(0u32);
                    let instance = i as u32;
                    let select_id = format!("fault-worker-{i}");
                    view! {
                        <fieldset class="fault-instance" data-instance=i>
                            <legend>{format!("Instance {i}")}</legend>
                            <label for=select_id.clone()>"Worker"</label>
                            <select
                                id=select_id
                                on:change=move |ev| {
                                    if let Ok(w) = event_target_value(&ev).parse() {
                                        worker.set(w);
                                    }
                                }
                            >
                                {move || {
                                    (0..workers_of(i) as u32)
                                        .map(|w| view! { <option value=w selected=move || worker.get() == w>{w}</option> })
                                        .collect_view()
                                }}
                            </select>
                            <button
                                type="button"
                                class="kill"
                                data-fault="kill_worker"
                                disabled=move || !live.get() || state_of(i) != BoxState::Up
                                on:click=move |_| fault.run(Fault::KillWorker { instance, worker: worker.get_untracked() })
                            >
                                "Kill this worker"
                            </button>
                            <button
                                type="button"
                                class="kill"
                                data-fault="kill_instance"
                                disabled=move || !live.get() || state_of(i) != BoxState::Up
                                on:click=move |_| fault.run(Fault::KillInstance { instance })
                            >
                                {format!("Kill instance {i}")}
                            </button>
                            <button
                                type="button"
                                data-fault="restart_instance"
                                disabled=move || !live.get() || state_of(i) != BoxState::Down
                                on:click=move |_| fault.run(Fault::RestartInstance { instance })
                            >
                                {format!("Bring instance {i} back")}
                            </button>
                        </fieldset>
                    }
                }
            />
            <button
                type="button"
                class="kill"
                data-fault="kill_balancer"
                disabled=move || !live.get() || lab.balancer_state.get() != BoxState::Up
                on:click=move |_| fault.run(Fault::KillBalancer)
            >
                "Kill the balancer"
            </button>
        </div>
    }
}

/// What broke and what came back, in order.
#[component]
pub fn FaultLog(lab: LabView) -> impl IntoView {
    let items = move || {
        lab.scaling_log.with(|log| {
            let mut m = Markup::default();
            for (at, line) in log {
                m.open("li", &[])
                    .text("span", &[("class", &"at")], &format_us(at * 1_000))
                    .raw(" ")
                    .raw(&esc(line))
                    .close("li");
            }
            m.finish()
        })
    };
    view! {
        <section class="fault-log" class:empty=move || lab.scaling_log.with(Vec::is_empty) aria-labelledby="fault-log-title">
            <h3 id="fault-log-title">"Faults and recoveries, from the start of the run"</h3>
            <ol inner_html=items></ol>
        </section>
    }
}

/// Per instance: the attempts the balancer's access log shows against the
/// answers the client got; then the failures as each side saw them.
#[component]
pub fn BalancerTable(lab: LabView) -> impl IntoView {
    let figures = Memo::new(move |_| {
        let counts = spread(lab);
        balancer_log(lab).map(|(log, last)| (log, counts, last))
    });
    let rows = move || {
        figures.get().map(|(log, counts, _)| {
            let n = log.attempts.len().max(counts.len());
            let mut m = Markup::default();
            let mut row = |label: &str, attempts: u64, answers: u64, key: &dyn Attr| {
                let num = [("class", &"num" as &dyn Attr)];
                m.open("tr", &[("data-instance", key)])
                    .text("th", &[("scope", &"row")], label)
                    .text("td", &num, &format_count(attempts))
                    .text("td", &num, &format_count(answers))
                    .text("td", &num, &format_count(attempts.saturating_sub(answers)))
                    .close("tr");
            };
            for i in 0..n {
                let attempts = log.attempts.get(i).copied().unwrap_or(0);
                let answers = counts.get(i).map_or(0, |c| c.iter().sum());
                row(&format!("Instance {i}"), attempts, answers, &i);
            }
            let all_attempts = log.attempts.iter().sum();
            let all_answers = counts.iter().flatten().sum();
            row("All instances", all_attempts, all_answers, &"all");
            m.finish()
        })
    };
    let failures = move || {
        let stats = lab.scaling_stats.get();
        let tick_errors = lab.scaling_ticks.with(|t| t.last().map(|t| t.errors));
        figures.get().map(|(log, _, _)| {
            let errors = stats
                .as_ref()
                .map(|s| s.errors)
                .or(tick_errors)
                .unwrap_or(0);
            let mut lines: Vec<(&str, String, &str)> = vec![
                (
                    "Requests the client saw fail (an error, or no answer)",
                    format_count(errors),
                    "client-errors",
                ),
                (
                    "Errors the balancer answered itself (502, 503, 504)",
                    format_count(log.errors),
                    "balancer-errors",
                ),
                (
                    "Attempts that failed, in the balancer's log",
                    format_count(log.failed_attempts),
                    "failed-attempts",
                ),
                (
                    "Requests the balancer retried on another instance",
                    format_count(log.retried),
                    "retried",
                ),
                (
                    "Requests in the balancer's log",
                    format_count(log.requests),
                    "logged",
                ),
            ];
            if let Some(s) = &stats {
                lines.push(("Requests the client sent", format_count(s.requests), "sent"));
                lines.push((
                    "Workers the instances' primaries replaced",
                    format_count(s.respawns.into()),
                    "respawns",
                ));
                lines.push((
                    "Client addresses the load came from",
                    format_count(s.client_addresses.into()),
                    "addresses",
                ));
            }
            let mut m = Markup::default();
            for (what, value, id) in lines {
                m.open("tr", &[("data-figure", &id)])
                    .text("th", &[("scope", &"row")], what)
                    .text("td", &[("class", &"num")], &value)
                    .close("tr");
            }
            m.finish()
        })
    };
    let said = move || lab.scaling_stats.with(|s| s.as_ref().map(reading));
    let state = move || match figures.with(|f| f.as_ref().map(|f| f.2)) {
        Some(true) => " — final",
        Some(false) => " — so far",
        None => "",
    };
    view! {
        <section class="balancer-figures" class:empty=move || figures.with(Option::is_none) aria-label="What the balancer saw and what the client saw">
            <div class="table-wrap" tabindex="0" role="region" aria-label="Attempts and answers per instance">
                <table id="attempts">
                    <caption>
                        "Attempts the balancer made per instance (from its access log) against answers the client got per instance"
                        {state}
                        {lab.runtime_note()}
                    </caption>
                    <thead>
                        <tr>
                            <th scope="col">"Instance"</th>
                            <th scope="col">"Attempts the balancer made"</th>
                            <th scope="col">"Answers the client got"</th>
                            <th scope="col">"Attempts beyond answers"</th>
                        </tr>
                    </thead>
                    <tbody inner_html=move || rows().unwrap_or_default()></tbody>
                </table>
            </div>
            <div class="table-wrap" tabindex="0" role="region" aria-label="Failures as each side saw them">
                <table id="failures" class="compact">
                    <caption>"Failures, as the client and the balancer each saw them" {state} {lab.runtime_note()}</caption>
                    <tbody inner_html=move || failures().unwrap_or_default()></tbody>
                </table>
            </div>
            {move || said().map(|r| view! { <p class="reading">{r}</p> })}
        </section>
    }
}

/// What a finished run's failure figures say, in a sentence, from its own
/// numbers.
pub fn reading(stats: &ScalingStats) -> String {
    let log = &stats.balancer;
    let failed = format_count(log.failed_attempts);
    let retried = format_count(log.retried);
    let errors = format_count(stats.errors);
    match (log.failed_attempts, log.retried, stats.errors) {
        (0, _, 0) => "No attempt failed and the client saw no failure.".into(),
        (0, _, _) => format!(
            "The balancer logged no failed attempt, yet the client saw {errors} failures: \
             requests that never reached a balancer able to pass them on."
        ),
        (_, 0, 0) => format!("{failed} attempts failed, and the client saw no failure."),
        (_, _, 0) => format!(
            "{failed} attempts failed, yet the client saw no failure: the balancer retried \
             {retried} requests on another instance, and only the access log remembers."
        ),
        (_, 0, _) => format!(
            "{failed} attempts failed and nothing was retried: the client saw {errors} failures."
        ),
        _ => format!(
            "{failed} attempts failed; the balancer retried {retried} requests on another \
             instance, and the client still saw {errors} failures."
        ),
    }
}

/// The learner's scaling runs on this page, newest first, each with what
/// ran it, so one setting can be set against the next (retries on and off,
/// hash against round robin, 2 instances against 4).
#[component]
pub fn ScalingHistory(runs: RwSignal<Vec<ScalingRun>>) -> impl IntoView {
    let rows = move || {
        runs.with(|runs| {
            let mut m = Markup::default();
            let num = [("class", &"num" as &dyn Attr)];
            for r in runs {
                let s = &r.stats;
                let spread = s
                    .per_instance
                    .iter()
                    .map(|w| format_count(w.iter().sum()))
                    .collect::<Vec<_>>()
                    .join(" / ");
                m.open("tr", &[("data-runtime", &r.past.runtime().name())])
                    .text("th", &[("scope", &"row")], &r.past.run.to_string())
                    .text("td", &[("class", &"result")], &r.ran_on)
                    .text("td", &[("class", &"result")], &r.past.settings)
                    .text("td", &[], outcome_word(r.past.summary.outcome))
                    .text("td", &num, &Fixed(s.rps, 0).to_string())
                    .text(
                        "td",
                        &num,
                        &slash(format_us(s.latency.p50_us), format_us(s.latency.p99_us)),
                    )
                    .text("td", &num, &format_count(s.errors))
                    .text(
                        "td",
                        &num,
                        &slash(
                            format_count(s.balancer.failed_attempts),
                            format_count(s.balancer.retried),
                        ),
                    )
                    .text("td", &num, &spread)
                    .close("tr");
            }
            m.finish()
        })
    };
    view! {
        <div
            class="table-wrap history"
            class:empty=move || runs.with(Vec::is_empty)
            tabindex="0"
            role="region"
            aria-label="Your scaling runs on this page"
        >
            <table id="scaling-history">
                <caption>"Your scaling runs on this page, newest first, each with what ran it"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Run"</th>
                        <th scope="col">"Ran on"</th>
                        <th scope="col">"Settings"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Requests/s"</th>
                        <th scope="col">"Latency p50 / p99"</th>
                        <th scope="col">"Failures the client saw"</th>
                        <th scope="col">"Balancer: failed attempts / retried"</th>
                        <th scope="col">"Answers per instance"</th>
                    </tr>
                </thead>
                <tbody inner_html=rows></tbody>
            </table>
        </div>
    }
}

/// Two figures of one cell: "a / b".
fn slash(a: String, b: String) -> String {
    format!("{a} / {b}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Latency, ModelKind, ServerEvent};

    fn started(lab: &mut LabState, runtime: Runtime) {
        lab.begin(1);
        lab.spec = Some(ModelKind::Scaling.lab_default(runtime));
    }

    #[test]
    fn figures_name_the_runtime_then_the_balancer_too() {
        let mut lab = LabState::default();
        assert_eq!(provenance(&lab), None);
        started(&mut lab, Runtime::Node);
        assert_eq!(provenance(&lab).as_deref(), Some("Node.js"));
        lab.runtimes = vec![protocol::RuntimeInfo {
            runtime: Runtime::Node,
            version: Some("v20.20.2".into()),
            available: true,
            note: String::new(),
            missing: Vec::new(),
        }];
        lab.apply(ServerEvent::BalancerUp {
            run: 1,
            balancer: BalancerKind::Nginx,
            version: "nginx/1.22.1".into(),
            port: 8080,
            pid: 9,
            at_ms: 5,
        });
        assert_eq!(
            provenance(&lab).as_deref(),
            Some("Node.js v20.20.2 behind nginx/1.22.1")
        );
        assert_eq!(
            behind(Runtime::Rust, None, "HAProxy 2.6.12"),
            "Rust engine behind HAProxy 2.6.12"
        );
    }

    #[test]
    fn instances_not_heard_of_yet_are_drawn_starting() {
        let up = InstanceRow {
            state: BoxState::Up,
            workers: vec![BoxState::Up, BoxState::Down],
            ..InstanceRow::default()
        };
        let rows = padded(&[up], 3, 2);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].workers, [BoxState::Up, BoxState::Down]);
        assert_eq!(rows[2].state, BoxState::Starting);
        assert_eq!(rows[2].workers, [BoxState::Starting; 2]);
    }

    #[test]
    fn instance_boxes_grow_by_rows_of_workers() {
        assert_eq!(columns(1), 1);
        assert_eq!(columns(4), 2);
        assert_eq!(columns(8), 3);
        assert!(instance_height(3) > instance_height(2));
        assert_eq!(instance_height(1), instance_height(2));
    }

    // Rendering to HTML needs the server's build.
    #[cfg(feature = "ssr")]
    #[test]
    fn the_diagram_says_each_box_s_state_in_words() {
        let owner = Owner::new();
        owner.set();
        let mut s = LabState::default();
        started(&mut s, Runtime::Rust);
        for instance in 0..2 {
            s.apply(ServerEvent::InstanceUp {
                run: 1,
                instance,
                port: 40_000 + instance as u16,
                pid: 100,
                start_us: 1_000,
                at_ms: 10,
            });
        }
        s.apply(ServerEvent::BalancerUp {
            run: 1,
            balancer: BalancerKind::Haproxy,
            version: "HAProxy 2.6.12".into(),
            port: 8080,
            pid: 9,
            at_ms: 12,
        });
        s.apply(ServerEvent::InstanceDown {
            run: 1,
            instance: 1,
            at_ms: 50,
        });
        let lab = LabView::new(RwSignal::new(s));
        let html = view! { <ScalingDiagram lab=lab fault=Callback::new(|_: Fault| {})/> }.to_html();
        assert!(html.contains("Instance 0: up"), "{html}");
        assert!(html.contains("Instance 1: down"), "{html}");
        assert!(html.contains("Worker 1: down"), "{html}");
        assert!(html.contains("HAProxy 2.6.12"), "{html}");
        assert!(html.contains("Rust engine behind HAProxy 2.6.12"), "{html}");
        assert!(html.contains("Bring instance 1 back"), "{html}");
    }

    fn stats(errors: u64, failed: u64, retried: u64) -> ScalingStats {
        ScalingStats {
            requests: 100,
            completed: 100 - errors,
            errors,
            per_instance: vec![vec![50], vec![50 - errors]],
            client_addresses: 16,
            duration_us: 1_000_000,
            rps: 100.0,
            latency: Latency {
                p50_us: 1,
                p90_us: 2,
                p99_us: 3,
                max_us: 4,
                buckets: Vec::new(),
            },
            balancer: BalancerLog {
                requests: 100,
                attempts: vec![50, 50 + failed],
                failed_attempts: failed,
                retried,
                errors: 0,
            },
            respawns: 0,
        }
    }

    #[test]
    fn the_reading_follows_the_run_s_own_figures() {
        assert!(reading(&stats(0, 0, 0)).starts_with("No attempt failed"));
        assert!(reading(&stats(0, 3, 3)).contains("retried 3 requests"));
        assert!(reading(&stats(3, 3, 0)).contains("nothing was retried"));
        assert!(reading(&stats(2, 0, 0)).contains("never reached"));
    }
}
