//! The compare page: the models side by side, with the measured rows filled
//! by a calibration pass on the server that sent the page.
//!
//! The figures come from the `measured_figures` server function. The server
//! measures on the first request and caches the result for everyone; the
//! page can ask for a fresh pass. The route renders in order, so the table
//! is in the HTML itself and reads fine without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use protocol::compare::{shown, COLUMNS, MEASURED};
use protocol::format::{format_us, host_line, utc};
use protocol::{Calibration, ModelFigures, ModelKind};

/// Where the server function gets its figures: the server provides one
/// (it owns the engine); the app only knows it answers with a
/// [`Calibration`] or a message saying why not.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct CalibrationSource(pub std::sync::Arc<dyn Fn(bool) -> PendingFigures + Send + Sync>);

/// A calibration on its way: the figures, or why there are none.
#[cfg(feature = "ssr")]
pub type PendingFigures =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Calibration, String>> + Send>>;

/// The comparison's measured figures; with `rerun=true`, measured again (the
/// server allows that once a minute and otherwise answers with the last
/// pass). `rerun` travels as text so that a bad value gets an answer naming
/// the field, not a parser's complaint.
#[server(endpoint = "calibration")]
pub async fn measured_figures(
    #[server(default)] rerun: String,
) -> Result<Calibration, ServerFnError> {
    let rerun = match rerun.as_str() {
        "" | "false" => false,
        "true" => true,
        other => {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::BAD_REQUEST);
            }
            return Err(ServerFnError::new(format!(
                "rerun must be true or false, got {other:?}"
            )));
        }
    };
    let source = use_context::<CalibrationSource>()
        .ok_or_else(|| ServerFnError::new("this server has no engine to measure with"))?;
    (source.0)(rerun).await.map_err(ServerFnError::new)
}

/// The rows everyone quotes, in our words: one entry per column
/// ([`COLUMNS`]), in order.
const CLASSIC: [(&str, [&str; 4]); 6] = [
    (
        "Runs in",
        [
            "The one process, on its one event loop",
            "The same process: a thread with its own V8 isolate and event loop",
            "A new process; fork() starts a new Node.js, it does not copy this one",
            "One process per worker, plus the primary",
        ],
    ),
    (
        "Memory",
        [
            "One heap for everything",
            "A heap per worker; only SharedArrayBuffer memory is shared",
            "Entirely its own",
            "Entirely its own, per worker",
        ],
    ),
    (
        "Communication",
        [
            "Plain function calls",
            "postMessage, which copies (structured clone), or SharedArrayBuffer with Atomics",
            "An IPC channel of serialized messages (fork), or stdin and stdout",
            "The primary's IPC channel; clients reach workers over HTTP",
        ],
    ),
    (
        "Overhead",
        [
            "None, until the loop is blocked",
            "An isolate and a loop per worker: use a pool",
            "A whole runtime per child",
            "A whole runtime per worker",
        ],
    ),
    (
        "Shares a port",
        [
            "It owns its server",
            "No",
            "Only when handed a server socket (send's second argument)",
            "Yes: that is what it is for",
        ],
    ),
    (
        "Reach for it to",
        [
            "Do I/O and short work",
            "Crunch numbers without blocking the loop",
            "Run another program, or fence off a crash",
            "Use every core for one network server",
        ],
    ),
];

/// The compare page.
#[component]
pub fn ComparePage() -> AnyView {
    // The pass every visitor gets, and a fresh one when asked for.
    let first = Resource::new(|| (), |_| measured_figures("false".into()));
    let again = ServerAction::<MeasuredFigures>::new();
    let measuring = again.pending();
    view! {
        <Title text="Compare the models — spawnlab"/>
        <article class="model-page compare">
            <h1>"The models side by side"</h1>
            <p class="lede">
                "The first six rows are what every comparison says, in our words. The rest were "
                "measured on the server that sent you this page: it ran one job through every "
                "model, started the same HTTP server alone and as a cluster, and timed each step. "
                "Every cell says how its figure was obtained."
            </p>
            <Transition fallback=|| {
                view! {
                    <p class="measuring" role="status">
                        "Measuring every model on this server; this takes a few seconds, once."
                    </p>
                }
            }>
                {move || {
                    let fresh = again.value().get();
                    // A re-run within the minute answers with the same pass.
                    let kept = matches!(
                        (&fresh, first.get()),
                        (Some(Ok(a)), Some(Ok(b))) if a.finished_unix_s == b.finished_unix_s
                    );
                    fresh
                        .or_else(|| first.get())
                        .map(|answer| match answer {
                            Ok(c) => {
                                view! {
                                    {kept
                                        .then(|| {
                                            view! {
                                                <p class="kept" role="status">
                                                    "These figures are less than a minute old, so the "
                                                    "server kept them instead of measuring again."
                                                </p>
                                            }
                                        })}
                                    <Figures c/>
                                }
                                    .into_any()
                            }
                            Err(e) => {
                                view! {
                                    <p class="error" role="alert">
                                        "The server could not measure: " {e.to_string()}
                                    </p>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
            <p class="rerun">
                <button
                    type="button"
                    class="run"
                    on:click=move |_| {
                        again
                            .dispatch(MeasuredFigures {
                                rerun: "true".into(),
                            });
                    }
                    disabled=move || measuring.get()
                >
                    "Measure again"
                </button>
                " "
                <span class="measuring" role="status">
                    {move || measuring.get().then_some("Measuring every model again… ")}
                </span>
                <span class="hint">
                    "Runs every model again on this server (at most once a minute; sooner, you get "
                    "the last figures). It needs JavaScript."
                </span>
            </p>
            <h2>"Reading the figures"</h2>
            <ul>
                <li>
                    "A small message costs about the same between threads as between processes: "
                    "most of a round trip is waking the other side, whichever kind it is. What "
                    "differs is bulk data (a copy into a pipe against a hand-over in memory) and, "
                    "above all, the start cost."
                </li>
                <li>
                    "Start cost is why Node's documentation advises a pool of workers: a thread "
                    "starts far faster than a process, but neither is free next to a small task."
                </li>
                <li>
                    "Memory per worker counts what a worker adds. A thread shares its process's "
                    "heap and code, so it adds little; a process brings a whole runtime. In Node.js "
                    "every worker thread also carries its own V8 heap, so there the gap is smaller: "
                    "on a 2-core VM like this one (Node.js v20.20.2, 2026-11-26) an idle Worker "
                    "added about 8–10 MiB and a forked child 6.8 MiB of private memory."
                </li>
                <li>
                    "A speedup below the number of workers is the price of starting them and of "
                    "sharing the cores with everything else on the machine; more workers than cores "
                    "buys nothing for a CPU-bound job. Try it in the "
                    <A href="/threads">"worker threads lab"</A>"."
                </li>
                <li>
                    "A cluster multiplies requests per second only while the requests need CPU; the "
                    "load generator here runs on the same cores, so it takes its share too. Past one "
                    "machine, a load balancer spreads connections between machines: see the "
                    <A href="/cluster">"cluster page"</A>"."
                </li>
            </ul>
        </article>
    }
    .into_any()
}

/// The table and the chart for one calibration pass.
#[component]
fn Figures(c: Calibration) -> impl IntoView {
    let host = &c.host;
    let caption = format!(
        "Measured on {} · {} · the pass took {}",
        host_line(host),
        utc(c.finished_unix_s),
        format_us(c.took_ms * 1_000)
    );
    let busy = host.busy.then(|| {
        view! {
            <p class="warning" role="note">
                "The machine was already busy when these figures were measured, so they may be "
                "slower than usual."
            </p>
        }
    });
    let column = |model: ModelKind| c.models.iter().find(|m| m.model == model).cloned();
    let columns: Vec<Option<ModelFigures>> = COLUMNS.iter().map(|&m| column(m)).collect();
    let measured_rows = MEASURED
        .iter()
        .map(|(heading, pick)| {
            let cells = columns
                .iter()
                .map(|m| match m {
                    Some(m) => {
                        let f = pick(m);
                        view! {
                            <td class:none=f.value.is_none()>
                                <strong class="num">{shown(f)}</strong>
                                <small class="how">{f.how.clone()}</small>
                            </td>
                        }
                        .into_any()
                    }
                    None => view! { <td>"not measured"</td> }.into_any(),
                })
                .collect_view();
            view! {
                <tr class="measured">
                    <th scope="row">{*heading}</th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    let classic_rows = CLASSIC
        .iter()
        .map(|(heading, cells)| {
            view! {
                <tr>
                    <th scope="row">{*heading}</th>
                    {cells.iter().map(|text| view! { <td>{*text}</td> }).collect_view()}
                </tr>
            }
        })
        .collect_view();
    let job_bars: Vec<(String, Option<f64>)> = COLUMNS
        .iter()
        .zip(&columns)
        .filter(|(model, _)| **model != ModelKind::Cluster)
        .map(|(model, m)| {
            (
                model.node_name().to_string(),
                m.as_ref().and_then(|m| m.job_wall.value),
            )
        })
        .collect();
    view! {
        {busy}
        <div class="table-wrap">
            <table class="compare-table" data-finished=c.finished_unix_s>
                <caption>{caption}</caption>
                <thead>
                    <tr>
                        <td></td>
                        {COLUMNS
                            .iter()
                            .map(|model| {
                                let name = model.node_name();
                                view! {
                                    <th scope="col">
                                        {if *model == ModelKind::MainThread {
                                            view! { {name} }.into_any()
                                        } else {
                                            view! { <code>{name}</code> }.into_any()
                                        }}
                                    </th>
                                }
                            })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>{classic_rows}</tbody>
                <tbody class="measured-rows">{measured_rows}</tbody>
            </table>
        </div>
        <JobChart job=c.job.clone() bars=job_bars/>
    }
}

/// The shared CPU-bound job's wall time per model, as bars. The same
/// figures are in the table's "same CPU-bound job" row.
#[component]
fn JobChart(job: String, bars: Vec<(String, Option<f64>)>) -> impl IntoView {
    let longest = bars.iter().filter_map(|(_, v)| *v).fold(0.0, f64::max);
    let (label_w, chart_w, row_h) = (150.0, 600.0, 34.0);
    let height = row_h * bars.len() as f64 + 8.0;
    let rows = bars
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let y = 4.0 + i as f64 * row_h;
            let width = match value {
                Some(v) if longest > 0.0 => (v / longest) * (chart_w - label_w - 90.0),
                _ => 0.0,
            };
            let text = value.map_or("—".into(), |v| format_us(v.round() as u64));
            view! {
                <g>
                    <text x="0" y=y + 20.0 class="label">{name}</text>
                    <rect x=label_w y=y + 4.0 width=width.max(1.0) height=row_h - 12.0 class="job-bar"></rect>
                    <text x=label_w + width + 8.0 y=y + 20.0 class="value">{text}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <figcaption>"Wall time to " {job.clone()} " (2 workers where there are workers)"</figcaption>
            <svg
                viewBox=format!("0 0 {chart_w} {height}")
                role="img"
                aria-label=format!("Bar chart: wall time to {job}, per model. The figures are in the table above.")
            >
                {rows}
            </svg>
        </figure>
    }
}
