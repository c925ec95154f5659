//! What a lab draws from its state: per-worker rows, the summary, the main
//! loop's heartbeat, the cluster's live figures. Every chart has its figures
//! as text or a table beside it.

use super::markup::{esc, view_box, Attr, Fixed, Markup};
use super::LabView;
use crate::quoted::{find, Quote, Quoted};
use leptos::prelude::*;
use protocol::compare::pair_rows;
use protocol::format::{
    describe_result, format_bytes, format_count, format_us, host_line, incident_sentence,
    nearest_rank, outcome_word, shared_sentence, BUSY_NOTE,
};
use protocol::lab::{Pair, WorkerRow};
use protocol::{HostInfo, ModelKind, Outcome, RunSummary, Runtime};

/// The quoted settings the main thread's strips name (see [`find`]).
const TICK: Quote = find("tick");
const PING_EVERY: Quote = find("ping_every");

/// One row per worker: when it started, how far it is, what it cost.
#[component]
pub fn WorkerTable(lab: LabView, noun: &'static str) -> impl IntoView {
    // The rows are text (see `markup`): the table is redrawn whole on
    // every event anyway.
    let row = move |m: &mut Markup, w: &WorkerRow| {
        let id = w.tid.unwrap_or(w.pid);
        let dash = || "—".to_string();
        // Memory is counted in 4 KiB pages: a thread that added none
        // touched less than a page.
        let memory = match w.memory.map(|m| (m.rss_bytes, m.anon_bytes)) {
            Some((0, 0)) => esc("under a page (4 KiB)"),
            Some((rss, anon)) => pair_text(&format_bytes(rss), &format_bytes(anon)),
            None => dash(),
        };
        let trip = w.round_trip_ns.map_or_else(dash, |(p50, p99)| {
            pair_text(&format_us(p50 / 1000), &format_us(p99 / 1000))
        });
        let at = |us: Option<u64>| us.map(format_us).unwrap_or_default();
        m.open("tr", &[("data-worker", &w.worker)])
            .open("th", &[("scope", &"row")])
            .raw(&w.worker.to_string());
        if id != 0 {
            m.raw(" ")
                .text("small", &[("class", &"kernel-id")], &id.to_string());
        }
        m.close("th")
            .text("td", &[("class", &"num")], &at(w.start_latency_us))
            .open("td", &[])
            .empty(
                "progress",
                &[
                    ("max", &1),
                    ("value", &w.fraction()),
                    ("aria-label", &format!("{noun} {} progress", w.worker)),
                ],
            )
            .raw(" ")
            .text(
                "span",
                &[("class", &"num")],
                &format!("{}%", Fixed(w.fraction() * 100.0, 0)),
            )
            .close("td")
            .text("td", &[("class", &"num")], &at(w.wall_us))
            .text("td", &[("class", &"num")], &at(w.cpu_us))
            .open("td", &[("class", &"num")])
            .raw(&memory)
            .close("td")
            .open("td", &[("class", &"num")])
            .raw(&trip)
            .close("td")
            .text(
                "td",
                &[("class", &"num")],
                &w.messages.map(format_count).unwrap_or_else(dash),
            )
            .text(
                "td",
                &[("class", &"result")],
                &w.result.as_ref().map(describe_result).unwrap_or_default(),
            )
            .close("tr");
    };
    let rows = move || {
        lab.workers.with(|workers| {
            let mut m = Markup::default();
            for w in workers {
                row(&mut m, w);
            }
            m.finish()
        })
    };
    view! {
        <div class="table-wrap" tabindex="0" role="region" aria-label="Per-worker measurements">
            <table class="workers">
                <caption>
                    "Per-worker measurements, as they arrive"
                    {move || lab.runtime.get().map(|r| format!(" (measured on {})", r.label()))}
                </caption>
                <thead>
                    <tr>
                        <th scope="col">{noun} " " <small>"(kernel id)"</small></th>
                        <th scope="col">"Spawn → first message"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Wall time"</th>
                        <th scope="col">"CPU time"</th>
                        <th scope="col">"Memory (resident / anonymous)"</th>
                        <th scope="col">"Round trip p50 / p99"</th>
                        <th scope="col">"Messages sent"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody inner_html=rows></tbody>
            </table>
        </div>
    }
}

/// Two figures of one cell ("p50 / p99"), each kept on one line, the cell
/// free to wrap between them.
fn pair_text(a: &str, b: &str) -> String {
    let mut m = Markup::default();
    m.text("span", &[("class", &"fig")], a)
        .raw(" / ")
        .text("span", &[("class", &"fig")], b);
    m.finish()
}

/// The end of a run: totals, the measured speedup, and where it ran. Text
/// (see `markup`): it is drawn once per run, whole.
pub fn summary_text(
    summary: &RunSummary,
    host: Option<&HostInfo>,
    runtime: Option<Runtime>,
    noun: &str,
) -> String {
    // The wire's name, for tests and styles: "completed", "deadline_exceeded".
    let outcome_attr = summary.outcome.name();
    let speedup = match (summary.speedup, summary.outcome) {
        (Some(s), _) => Some(format!("{}×", Fixed(s, 2))),
        (None, Outcome::Completed) if summary.baseline_wall_us.is_none() => None,
        (None, _) => Some("not measured: the run did not complete".into()),
    };
    let noun = noun.to_ascii_lowercase();
    let mut m = Markup::default();
    m.open(
        "section",
        &[
            ("id", &"summary"),
            ("class", &"summary"),
            ("data-outcome", &outcome_attr),
            ("aria-labelledby", &"summary-title"),
        ],
    )
    .open("h3", &[("id", &"summary-title")])
    .raw("Summary: ")
    .raw(outcome_word(summary.outcome));
    if let Some(r) = runtime {
        m.raw(" ").text(
            "span",
            &[("class", &"runtime-tag"), ("data-runtime", &r.name())],
            r.label(),
        );
    }
    m.close("h3").open("dl", &[]);
    let mut item = |term: &str, id: Option<&str>, value: &str| {
        m.text("dt", &[], term);
        match id {
            Some(id) => m.text("dd", &[("id", &id)], value),
            None => m.text("dd", &[], value),
        };
    };
    item("Result", Some("result"), &describe_result(&summary.result));
    item("Wall time", None, &format_us(summary.wall_us));
    item("CPU time, all workers", None, &format_us(summary.cpu_us));
    if let Some(b) = summary.baseline_wall_us {
        item(&format!("Same job on one {noun}"), None, &format_us(b));
    }
    if let Some(s) = speedup {
        item(
            &format!("Speedup over one {noun} (measured)"),
            Some("speedup"),
            &s,
        );
    }
    if let Some(lag) = summary.main_loop_lag_us {
        item("Longest the heartbeat waited", Some("lag"), &format_us(lag));
    }
    m.close("dl");
    // Where the figures come from.
    if let Some(h) = host {
        m.open("p", &[("class", &"host")])
            .raw("Measured on this server: ")
            .raw(&esc(&host_line(h)))
            .raw(".");
        if h.busy {
            m.text("strong", &[("class", &"busy")], &format!(" {BUSY_NOTE}"));
        }
        m.close("p");
    }
    if let Some(n) = summary.shared_with {
        m.text(
            "p",
            &[("class", &"shared"), ("data-shared", &n)],
            &shared_sentence(n),
        );
    }
    m.close("section");
    m.finish()
}

/// A row of a figures table: what, and its value (with an `id` for tests
/// and readers when given).
fn figure_row(m: &mut Markup, what: &str, id: Option<&str>, value: &str) {
    m.open("tr", &[]).text("th", &[("scope", &"row")], what);
    match id {
        Some(id) => m.text("td", &[("class", &"num"), ("id", &id)], value),
        None => m.text("td", &[("class", &"num")], value),
    };
    m.close("tr");
}

/// The main loop's pulse: one mark per heartbeat along the run's timeline,
/// its height the tick's lateness. A long gap is the loop frozen by the work.
#[component]
pub fn HeartbeatStrip(lab: LabView) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 80.0;
    let marks = move || {
        lab.heartbeats.with(|beats| {
            let span = beats.last().map_or(1, |b| b.0.max(1)) as f64;
            let worst = beats.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
            let mut m = Markup::default();
            let mut prev_x = 0.0;
            for &(at, lag) in beats {
                let x = at as f64 / span * W;
                // Log scale: a 1 ms tick and a 1 s freeze both stay visible.
                let h = ((lag.max(1) as f64).ln() / worst.ln().max(1.0) * (H - 6.0)).max(2.0);
                let late = lag > 50_000;
                if late {
                    m.empty(
                        "rect",
                        &[
                            ("class", &"frozen"),
                            ("x", &prev_x),
                            ("y", &0),
                            ("width", &(x - prev_x).max(1.0)),
                            ("height", &H),
                        ],
                    );
                }
                m.empty(
                    "rect",
                    &[
                        ("class", &if late { "beat late" } else { "beat" }),
                        ("x", &(x - 1.0)),
                        ("y", &(H - h)),
                        ("width", &2),
                        ("height", &h),
                    ],
                );
                prev_x = x;
            }
            m.finish()
        })
    };
    let figures = move || {
        lab.heartbeats.with(|beats| {
            let mut lags: Vec<u64> = beats.iter().map(|b| b.1).collect();
            lags.sort_unstable();
            (!lags.is_empty())
                .then(|| (lags.len(), lags[lags.len() / 2], *lags.last().unwrap_or(&0)))
        })
    };
    view! {
        <figure class="heartbeat">
            <figcaption>"The event loop's heartbeat: a mark every " <Quoted q=TICK/> " it was free to tick" {lab.runtime_note()}</figcaption>
            <svg viewBox=view_box(W, H) preserveAspectRatio="none" role="img"
                aria-label="Heartbeat ticks over time; a gap means the loop was blocked" inner_html=marks>
            </svg>
            <table class="compact">
                <caption class="visually-hidden">"Heartbeat figures"</caption>
                <tbody inner_html=move || {
                    let mut m = Markup::default();
                    if let Some((n, median, worst)) = figures() {
                        figure_row(&mut m, "Ticks", None, &n.to_string());
                        figure_row(&mut m, "Typical lateness (median)", None, &format_us(median));
                        figure_row(&mut m, "Longest wait", Some("worst-lag"), &format_us(worst));
                    }
                    m.finish()
                }></tbody>
            </table>
        </figure>
    }
}

/// The cluster as it is loaded: answers per worker, throughput, latency,
/// deaths and replacements.
#[component]
pub fn ClusterView(lab: LabView, kill: Callback<u32>) -> impl IntoView {
    // Workers can be killed while the load runs: after the first tick, until
    // the load generator's final figures arrive.
    let loading = Memo::new(move |_| {
        lab.busy.get() && lab.ticks.with(|t| !t.is_empty()) && lab.load.with(Option::is_none)
    });
    let per_worker = move || {
        lab.load
            .with(|l| l.as_ref().map(|l| l.per_worker.clone()))
            .or_else(|| lab.ticks.with(|t| t.last().map(|t| t.per_worker.clone())))
            .unwrap_or_default()
    };
    let bars = move || {
        let counts = per_worker();
        let total: u64 = counts.iter().sum();
        let mut m = Markup::default();
        for (i, n) in counts.into_iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            };
            m.open("tr", &[("data-cluster-worker", &i)])
                .text("th", &[("scope", &"row")], &i.to_string())
                .text("td", &[("class", &"num answers")], &n.to_string())
                .open("td", &[("class", &"bar-cell")])
                // The bar leaves room for its label, so a worker with every
                // answer does not push the table wider than the page.
                .empty(
                    "span",
                    &[
                        ("class", &"bar"),
                        (
                            "style",
                            &format!("width: calc({} * (100% - 4rem))", Fixed(share, 3)),
                        ),
                    ],
                )
                .text(
                    "span",
                    &[("class", &"num")],
                    &format!("{}%", Fixed(share * 100.0, 0)),
                )
                .close("td")
                .close("tr");
        }
        m.finish()
    };
    let live = move || {
        lab.ticks.with(|ticks| {
            ticks.last().map(|t| {
                format!(
                    "{} answered, {} failed · {} requests/s so far · latency p50 {} · p90 {} · p99 {}",
                    format_count(t.completed),
                    format_count(t.errors),
                    Fixed(t.rate_so_far(), 0),
                    format_us(t.p50_us),
                    format_us(t.p90_us),
                    format_us(t.p99_us)
                )
            })
        })
    };
    let incidents = move || {
        lab.incidents.with(|incidents| {
            let mut m = Markup::default();
            for i in incidents {
                m.text(
                    "li",
                    &[],
                    &format!("{} ms: {}", i.at_ms(), incident_sentence(i)),
                );
            }
            m.finish()
        })
    };
    let total = move || {
        lab.load.with(|l| {
            l.as_ref().map(|l| {
                format!(
                    "{} of {} requests answered ({} failed) at {} requests/s; latency p50 {}, p90 {}, p99 {}, max {}.",
                    format_count(l.completed),
                    format_count(l.requests),
                    format_count(l.errors),
                    Fixed(l.rps, 0),
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
            <p class="live">{live} {lab.runtime_note()}</p>
            <div class="table-wrap" tabindex="0" role="region" aria-label="Answers per worker">
                <table class="share">
                    <caption>"Answers per worker"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Worker"</th>
                            <th scope="col">"Answers"</th>
                            <th scope="col">"Share"</th>
                        </tr>
                    </thead>
                    <tbody inner_html=bars></tbody>
                </table>
            </div>
            // Kept out of the table, which is redrawn on every tick, so a
            // button is never replaced under the learner's pointer.
            <div class="kills" role="group" aria-label="Kill a worker now">
                <span>"Kill a worker now:"</span>
                <For
                    each=move || 0..lab.workers.with(|w| w.len() as u32)
                    key=|i| *i
                    children=move |i| {
                        view! {
                            <button
                                type="button"
                                class="kill"
                                data-kill=i
                                disabled=move || !loading.get()
                                on:click=move |_| kill.run(i)
                            >
                                {format!("Worker {i}")}
                            </button>
                        }
                    }
                />
            </div>
            <ul class="incidents" inner_html=incidents></ul>
            <p id="load-total">{total}</p>
        </section>
    }
}

/// The learner's finished runs on this page, newest first, so one setting
/// can be compared with the next (messages against shared memory, a pool
/// against fresh threads, one policy against another).
#[component]
pub fn RunHistory(lab: LabView) -> impl IntoView {
    let rows = move || {
        lab.history.with(|history| {
            let mut m = Markup::default();
            for past in history {
                let sum = &past.summary;
                let num = [("class", &"num" as &dyn Attr)];
                m.open("tr", &[("data-runtime", &past.runtime().name())])
                    .text("th", &[("scope", &"row")], &past.run.to_string())
                    .text("td", &[], past.runtime().label())
                    .text("td", &[("class", &"result")], &past.settings)
                    .text("td", &[], outcome_word(sum.outcome))
                    .text("td", &num, &format_us(sum.wall_us))
                    .text(
                        "td",
                        &num,
                        &sum.speedup
                            .map_or("—".to_string(), |x| format!("{}×", Fixed(x, 2))),
                    )
                    .text(
                        "td",
                        &num,
                        &past.start_us.map_or("—".to_string(), format_us),
                    )
                    .text(
                        "td",
                        &num,
                        &past.messages.map_or("—".to_string(), format_count),
                    )
                    .close("tr");
            }
            m.finish()
        })
    };
    view! {
        <div
            class="table-wrap history"
            class:empty=move || lab.history.with(Vec::is_empty)
            tabindex="0"
            role="region"
            aria-label="Your runs on this page"
        >
            <table>
                <caption>"Your runs on this page, newest first, each on the runtime it names"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Run"</th>
                        <th scope="col">"Runtime"</th>
                        <th scope="col">"Settings"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Wall time"</th>
                        <th scope="col">"Speedup"</th>
                        <th scope="col">"Median start"</th>
                        <th scope="col">"Messages"</th>
                    </tr>
                </thead>
                <tbody inner_html=rows></tbody>
            </table>
        </div>
    }
}

/// Which runtime runs the lab, what it needs, and — after a run — how long
/// it took to start before the model began. For Node.js: the script it
/// runs, and how to run it at home.
#[component]
pub fn RuntimeNote(lab: LabView, model: ModelKind, runtime: RwSignal<Runtime>) -> impl IntoView {
    let info = move || {
        let chosen = runtime.get();
        lab.runtimes
            .with(|all| all.iter().find(|r| r.runtime == chosen).cloned())
    };
    let script = model.node_script();
    // The last run's own plan when there is one, so the command repeats it.
    let command = move || {
        let spec = lab.spec.get().filter(|s| s.runtime == Runtime::Node);
        // libuv reads its pool's size from the environment, before the
        // script runs: the command sets it as the server did.
        let env = match spec.as_ref().map(|s| &s.workload) {
            Some(protocol::Workload::PoolHash { pool_threads, .. }) => {
                format!("UV_THREADPOOL_SIZE={pool_threads} ")
            }
            _ => String::new(),
        };
        let spec = spec
            .and_then(|s| serde_json::to_string(&s).ok())
            .unwrap_or_else(|| "…".into());
        format!("{env}node {script} '{{\"run\":1,\"spec\":{spec}}}' 3>&1")
    };
    // Text (see `markup`): the note is redrawn whole when the runtime, the
    // server's list or the run changes.
    let body = move |m: &mut Markup| {
        let chosen = runtime.get();
        let Some(info) = info() else {
            m.text(
                "p",
                &[("class", &"runtime-note")],
                "Waiting for the server to say which runtimes it has…",
            );
            return;
        };
        if !info.available {
            m.text(
                "p",
                &[
                    ("class", &"runtime-note warning"),
                    ("role", &"note"),
                    ("data-runtime", &chosen.name()),
                ],
                &format!(
                    "{} is not available on this server: {} The Rust engine still runs every lab.",
                    chosen.label(),
                    info.note
                ),
            );
            return;
        }
        // The features Node.js may lack are the cluster's (reuse_port).
        let missing = info
            .missing
            .iter()
            .filter(|_| model == ModelKind::Cluster)
            .map(|m| format!("{} needs Node.js {}; ", m.feature, m.needs))
            .collect::<String>();
        let script_link = |m: &mut Markup| {
            m.open("a", &[("href", &format!("/node/{script}"))])
                .text("code", &[], script)
                .close("a");
        };
        m.open(
            "p",
            &[("class", &"runtime-note"), ("data-runtime", &chosen.name())],
        );
        match chosen {
            // Each instance is a cluster of its own: the command would start
            // one instance, not the balancer in front of several.
            Runtime::Node if model == ModelKind::Scaling => {
                m.raw(&esc(&info.note)).raw(" Each instance runs ");
                script_link(m);
                m.raw(
                    " (plain Node.js, no packages), a cluster of its own on a loopback port of \
                     its own; in front of them the server starts the real balancer you pick, \
                     with a configuration it writes for the run, and sends every request to it.",
                );
            }
            Runtime::Rust if model == ModelKind::Scaling => {
                m.raw(
                    "On the Rust engine, each instance is a cluster of the server's own \
                     processes, a primary and its workers, on a loopback port of its own. The \
                     balancer in front is the same real one either way.",
                );
            }
            Runtime::Node => {
                m.raw(&esc(&info.note)).raw(" This lab runs ");
                script_link(m);
                m.raw(" (plain Node.js, no packages, with ")
                    .raw(r#"<a href="/node/common.js"><code>common.js</code></a>"#)
                    .raw(
                        " beside it). Run it at home — it prints the same events this page draws: ",
                    )
                    .text("code", &[("class", &"command")], &command());
                if !missing.is_empty() {
                    m.raw(" ").text(
                        "span",
                        &[("class", &"missing")],
                        &format!(
                            "Not in this version: {missing}it is shown as unavailable rather than pretended."
                        ),
                    );
                }
            }
            Runtime::Rust => {
                m.raw(
                    "The Rust engine runs this lab inside the server: the same model with \
                     the operating system's own threads and processes, no JavaScript \
                     runtime on top — what the OS itself costs.",
                );
            }
        }
        m.close("p");
    };
    let boot = move |m: &mut Markup| {
        if let Some(b) = lab.boot.get() {
            m.text(
                "p",
                &[("class", &"boot"), ("data-boot-us", &b.boot_us)],
                &format!(
                    "{} {} started in {} (pid {}) before the model began: its own start-up, not counted in the figures below.",
                    b.runtime.label(),
                    b.version,
                    format_us(b.boot_us),
                    b.pid
                ),
            );
        }
    };
    let note = move || {
        let mut m = Markup::default();
        body(&mut m);
        m.raw(" ");
        boot(&mut m);
        m.finish()
    };
    view! { <div class="runtime" inner_html=note></div> }
}

/// Main thread: `GET /ping` sent from outside while the job runs, and how
/// long each waited. While the loop is blocked, every request waits.
#[component]
pub fn PingStrip(lab: LabView) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 80.0;
    let marks = move || {
        lab.pings.with(|pings| {
            let span = pings.last().map_or(1, |p| p.0.max(1)) as f64;
            let worst = pings.iter().filter_map(|p| p.1).max().unwrap_or(1).max(1) as f64;
            let mut m = Markup::default();
            for &(at, latency) in pings {
                let x = at as f64 / span * W;
                let (class, h) = match latency {
                    Some(us) => {
                        let h =
                            ((us.max(1) as f64).ln() / worst.ln().max(1.0) * (H - 6.0)).max(2.0);
                        (if us > 50_000 { "ping slow" } else { "ping" }, h)
                    }
                    None => ("ping lost", H),
                };
                m.empty(
                    "rect",
                    &[
                        ("class", &class),
                        ("x", &(x - 1.0)),
                        ("y", &(H - h)),
                        ("width", &2),
                        ("height", &h),
                    ],
                );
            }
            m.finish()
        })
    };
    let figures = move || {
        lab.pings.with(|pings| {
            let mut answered: Vec<u64> = pings.iter().filter_map(|p| p.1).collect();
            answered.sort_unstable();
            let lost = pings.len() - answered.len();
            (!pings.is_empty()).then(|| {
                let pct = |p: f64| nearest_rank(&answered, p);
                (pings.len(), pct(50.0), pct(99.0), lost)
            })
        })
    };
    let rows = move || {
        let mut m = Markup::default();
        if let Some((n, p50, p99, lost)) = figures() {
            let dash = || "—".to_string();
            figure_row(&mut m, "Requests sent", None, &n.to_string());
            figure_row(
                &mut m,
                "Answered in (median)",
                Some("ping-p50"),
                &p50.map_or_else(dash, format_us),
            );
            figure_row(
                &mut m,
                "Answered in (p99)",
                Some("ping-p99"),
                &p99.map_or_else(dash, format_us),
            );
            figure_row(&mut m, "Unanswered", None, &lost.to_string());
        }
        if let Some((p50, p99, max)) = lab.loop_delay.get() {
            figure_row(
                &mut m,
                "monitorEventLoopDelay (Node.js): p50 / p99 / max",
                None,
                &format!(
                    "{} / {} / {}",
                    format_us(p50),
                    format_us(p99),
                    format_us(max)
                ),
            );
        }
        m.finish()
    };
    view! {
        <figure class="pings" class:empty=move || lab.pings.with(Vec::is_empty)>
            <figcaption>"Requests from outside: a GET /ping every " <Quoted q=PING_EVERY/> ", and how long each waited for its answer" {lab.runtime_note()}</figcaption>
            <svg viewBox=view_box(W, H) preserveAspectRatio="none" role="img"
                aria-label="Ping latency over time; tall marks are requests that waited behind the job. The figures are in the table below." inner_html=marks>
            </svg>
            <table class="compact">
                <caption class="visually-hidden">"Ping figures"</caption>
                <tbody inner_html=rows></tbody>
            </table>
        </figure>
    }
}

/// Main thread, Node.js, `pool_hash`: when each hash handed to libuv's
/// thread pool finished, one row per hash in the order they were started.
/// A pool of one finishes them in a staircase; a wider pool, in waves no
/// wider than the machine has cores.
#[component]
pub fn PoolStrip(lab: LabView) -> impl IntoView {
    const W: f64 = 600.0;
    const ROW: f64 = 6.0;
    let height = move || lab.pool_tasks.with(|t| t.len().max(1) as f64 * ROW);
    let marks = move || {
        lab.pool_tasks.with(|tasks| {
            let span = tasks.iter().map(|t| t.1).max().unwrap_or(1).max(1) as f64;
            let mut m = Markup::default();
            for &(task, at) in tasks {
                m.empty(
                    "rect",
                    &[
                        ("class", &"pool-task"),
                        ("x", &0),
                        ("y", &(f64::from(task) * ROW + 1.0)),
                        ("width", &(at as f64 / span * W).max(2.0)),
                        ("height", &(ROW - 2.0)),
                    ],
                );
            }
            m.finish()
        })
    };
    let threads = move || match lab.spec.get().map(|s| s.workload) {
        Some(protocol::Workload::PoolHash { pool_threads, .. }) => Some(pool_threads),
        _ => None,
    };
    let figures = move || {
        lab.pool_tasks.with(|tasks| {
            let first = tasks.iter().map(|t| t.1).min()?;
            let last = tasks.iter().map(|t| t.1).max()?;
            Some((tasks.len(), first, last))
        })
    };
    let reading = move || {
        let (n, first, last) = figures()?;
        let pool = threads()?;
        let cores = lab.host.get().map(|h| h.logical_cores)?;
        let lag = lab.summary.get()?.main_loop_lag_us?;
        (n > 1).then(|| {
            format!(
                "The last of {n} hashes finished {}× as late as the first: with {pool} pool \
                 threads on {cores} cores, at most {} hashed at once. Meanwhile the loop's \
                 longest wait for its heartbeat was {}.",
                Fixed(last as f64 / first.max(1) as f64, 1),
                pool.min(cores),
                format_us(lag)
            )
        })
    };
    view! {
        <figure class="pool" class:empty=move || lab.pool_tasks.with(Vec::is_empty)>
            <figcaption>"libuv's thread pool: each crypto.pbkdf2 call, and when it finished after all were started" {lab.runtime_note()}</figcaption>
            <svg viewBox=move || view_box(W, height()) preserveAspectRatio="none" role="img"
                aria-label="One bar per hash, as long as it took to finish; the figures are in the table below." inner_html=marks>
            </svg>
            <table class="compact">
                <caption class="visually-hidden">"Pool figures"</caption>
                <tbody inner_html=move || {
                    let mut m = Markup::default();
                    if let Some((n, first, last)) = figures() {
                        let pool = threads().map_or("—".into(), |t| t.to_string());
                        figure_row(&mut m, "Hashes finished", Some("pool-done"), &n.to_string());
                        figure_row(&mut m, "Pool threads (UV_THREADPOOL_SIZE)", None, &pool);
                        figure_row(&mut m, "First finished after", None, &format_us(first));
                        figure_row(&mut m, "Last finished after", Some("pool-last"), &format_us(last));
                    }
                    m.finish()
                }></tbody>
            </table>
            {move || reading().map(|r| view! { <p class="reading">{r}</p> })}
        </figure>
    }
}

/// The newest run of the same settings on each runtime, side by side, with
/// Node.js's figure over Rust's: what "run on both" shows.
#[component]
pub fn PairTable(lab: LabView) -> impl IntoView {
    let pair = Memo::new(move |_| lab.history.with(|h| Pair::newest(h)));
    let rows = move || {
        pair.get().map(|pair| {
            let mut m = Markup::default();
            let num = [("class", &"num" as &dyn Attr)];
            for row in pair_rows(&pair) {
                m.open("tr", &[])
                    .text("th", &[("scope", &"row")], row.what)
                    .text("td", &num, &row.node)
                    .text("td", &num, &row.rust)
                    .text("td", &num, &row.ratio)
                    .close("tr");
            }
            m.finish()
        })
    };
    let caption = move || {
        pair.get()
            .map(|p| format!("The same settings on both runtimes: {}", p.node.settings))
    };
    view! {
        <div
            class="table-wrap pair"
            class:empty=move || pair.with(Option::is_none)
            tabindex="0"
            role="region"
            aria-label="The same settings on both runtimes"
        >
            <table id="pair">
                <caption>{caption}</caption>
                <thead>
                    <tr>
                        <td></td>
                        <th scope="col">"Node.js"</th>
                        <th scope="col">"Rust engine"</th>
                        <th scope="col">"Node.js ÷ Rust"</th>
                    </tr>
                </thead>
                <tbody inner_html=move || rows().unwrap_or_default()></tbody>
            </table>
        </div>
    }
}
