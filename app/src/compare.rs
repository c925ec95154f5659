//! The compare page: the models side by side, with the measured rows filled
//! by a calibration pass on the server that sent the page.
//!
//! The figures come from the `measured_figures` server function. The server
//! measures on the first request and caches the result for everyone; the
//! page can ask for a fresh pass. The route renders in order, so the table
//! is in the HTML itself and reads fine without JavaScript.

use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use protocol::compare::{column, ratio, reading, shown, Pick, COLUMNS, MEASURED, MIN_RERUN_GAP_S};
use protocol::format::{format_count, format_us, host_line, utc, Fixed};
use protocol::{Calibration, Figure, ModelKind, Runtime, SweepPoint};

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
/// server allows that once every five minutes and otherwise answers with the last
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
            "Not the main thread's: a Worker can open a port of its own, and with reusePort (Node.js v22.12+, Linux) several can share one",
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

/// The compare page. The figures are awaited on the server (the route
/// renders in order, so the table is in the HTML itself) and drawn by
/// [`Measured`].
#[component]
pub fn ComparePage() -> impl IntoView {
    view! {
        <Title text="Compare the models — spawnlab"/>
        <article class="model-page compare">
            <h1>"The models side by side"</h1>
            <p class="lede">
                "The first six rows are what every comparison says, in our words. The rest were "
                "measured on the server that sent you this page, twice: with real Node.js running "
                "our scripts, and with the Rust engine running the same models on the operating "
                "system's own threads and processes. Each cell gives both, Node.js first, and how "
                "many times the one is the other; open \"how\" to see exactly what was timed."
            </p>
            <Suspense fallback=|| {
                view! {
                    <p class="measuring" role="status">
                        "Measuring every model on this server, on Node.js and on the Rust engine, once for everyone; the figures appear here when the pass is done."
                    </p>
                }
            }>
                {Suspend::new(async move {
                    let first = measured_figures("false".into()).await.map_err(|e| e.to_string());
                    view! { <Measured first/> }
                })}
            </Suspense>
        </article>
    }
}

/// The measured table, the chart, "Measure again" and the reading of the
/// figures, all rendered on the server.
///
/// "Measure again" is a plain form that posts `rerun=true` to the server
/// function: the server measures (or keeps a pass younger than
/// [`MIN_RERUN_GAP_S`]) and sends the browser back to this page, which
/// shows the pass it now has. It works without JavaScript, and it keeps
/// the compare page out of the wasm bundle: nothing here runs in the
/// browser.
#[component]
fn Measured(first: Result<Calibration, String>) -> impl IntoView {
    let c = match first {
        Ok(c) => c,
        Err(e) => {
            return Either::Right(view! {
                <p class="error" role="alert">"The server could not measure: " {e}</p>
                <RerunForm/>
            })
        }
    };
    let kept = kept_note(c.finished_unix_s);
    Either::Left(view! {
        {kept}
        <Figures c=c.clone()/>
        <RerunForm/>
        <h2>"Reading the figures"</h2>
        <Reading c/>
    })
}

/// While the pass is younger than [`MIN_RERUN_GAP_S`], "Measure again"
/// answers with it: say so, and until when, so a learner who pressed the
/// button knows why the figures did not change. Rendered on the server,
/// whose clock stamped the pass.
fn kept_note(finished_unix_s: u64) -> Option<impl IntoView> {
    #[cfg(feature = "ssr")]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A browser-only build (Trunk) has no server clock to compare with.
    #[cfg(not(feature = "ssr"))]
    let now = u64::MAX;
    let age = now.checked_sub(finished_unix_s)?;
    (age < MIN_RERUN_GAP_S).then(|| {
        view! {
            <p class="kept" role="status" data-measured="pass">
                {format!(
                    "These figures are less than five minutes old (measured {}). The server \
                     measures again at most once every five minutes, so until about {} \"Measure \
                     again\" shows these same figures.",
                    utc(finished_unix_s),
                    utc(finished_unix_s + MIN_RERUN_GAP_S)
                )}
            </p>
        }
    })
}

/// "Measure again": a form posting to the [`measured_figures`] server
/// function, which sends the browser back here when it is done.
#[component]
fn RerunForm() -> impl IntoView {
    let action = <MeasuredFigures as ServerFn>::PATH;
    view! {
        <form class="rerun" method="post" action=action>
            <input type="hidden" name="rerun" value="true"/>
            <button type="submit" class="run">"Measure again"</button>
            " "
            <span class="hint">
                "Runs every model again on this server, at most once every five minutes (sooner, "
                "you get the last figures); the page comes back with them when the pass is done."
            </span>
        </form>
    }
}

/// One model's figure on one runtime, measured or with why it is not.
fn figure(c: &Calibration, model: ModelKind, runtime: Runtime, pick: Pick) -> Option<&Figure> {
    column(c, model, runtime).map(pick)
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
    let missing = c
        .runtimes
        .iter()
        .filter(|r| !r.available)
        .map(|r| view! { <p class="warning" role="note">{format!("{}: {}", r.runtime.label(), r.note)}</p> })
        .collect_view();
    let versions = c
        .runtimes
        .iter()
        .filter(|r| r.available)
        .map(|r| {
            format!(
                "{}: {}",
                r.runtime.label(),
                r.version.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let measured_rows = MEASURED
        .iter()
        .map(|(heading, pick)| {
            let cells = COLUMNS
                .iter()
                .map(|&model| {
                    let node = figure(&c, model, Runtime::Node, *pick);
                    let rust = figure(&c, model, Runtime::Rust, *pick);
                    let none = node.is_none_or(|f| f.value.is_none())
                        && rust.is_none_or(|f| f.value.is_none());
                    let why = none.then(|| node.or(rust).map(|f| f.how.clone())).flatten();
                    let value = |f: Option<&Figure>| f.map_or("not measured".into(), shown);
                    let how = |f: Option<&Figure>, r: Runtime| {
                        f.filter(|f| f.value.is_some()).map(|f| {
                            view! { <small class="how" data-runtime=r.name()>{f.how.clone()}</small> }
                        })
                    };
                    let times = ratio(node.and_then(|f| f.value), rust.and_then(|f| f.value));
                    view! {
                        <td class:none=none data-measured="pass">
                            {match why {
                                Some(why) => Either::Left(view! { <span class="num">"—"</span> <small class="how">{why}</small> }),
                                None => Either::Right(view! {
                                    <span class="fig" data-runtime="node">
                                        <strong class="num">{value(node)}</strong> " " {Runtime::Node.label()}
                                    </span>
                                    <span class="fig" data-runtime="rust">
                                        <strong class="num">{value(rust)}</strong> " " {Runtime::Rust.label()}
                                    </span>
                                    <span class="ratio" title="Node.js's figure over Rust's">{format!("Node.js/Rust: {times}")}</span>
                                    <details>
                                        <summary>"how"</summary>
                                        {how(node, Runtime::Node)}
                                        {how(rust, Runtime::Rust)}
                                    </details>
                                }),
                            }}
                        </td>
                    }
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
    let job_bars: Vec<(String, Runtime, Option<f64>)> = COLUMNS
        .iter()
        .filter(|model| **model != ModelKind::Cluster)
        .flat_map(|&model| {
            let c = &c;
            Runtime::ALL.into_iter().map(move |runtime| {
                (
                    format!("{} · {}", model.node_name(), runtime.label()),
                    runtime,
                    figure(c, model, runtime, |m| &m.job_wall).and_then(|f| f.value),
                )
            })
        })
        .collect();
    view! {
        {busy}
        {missing}
        <p class="versions">{versions}</p>
        <div class="table-wrap" tabindex="0" role="region" aria-label="The comparison table">
            <table class="compare-table" data-finished=c.finished_unix_s>
                <caption data-measured="pass">{caption}</caption>
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
                                            Either::Left(view! { {name} })
                                        } else {
                                            Either::Right(view! { <code>{name}</code> })
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
        <BreakEven points=c.break_even.clone()/>
    }
}

/// What the pass says, in sentences whose every figure comes from it and
/// names its runtime, and whose every comparison is computed from the
/// figures (`protocol::compare::reading`).
#[component]
fn Reading(c: Calibration) -> impl IntoView {
    let sentences = reading(&c)
        .into_iter()
        .map(|s| view! { <li data-measured="pass">{s}</li> })
        .collect_view();
    view! {
        <ul class="reading">
            {sentences}
            <li>
                "Start cost is why Node's documentation advises a pool of Workers: neither start is "
                "free next to a small task. Bulk data is the other difference the table leaves out: "
                <code>"postMessage"</code>" copies (structured clone) unless the buffer is in a "
                "transfer list or a "<code>"SharedArrayBuffer"</code>", and "<code>"fork()"</code>
                "'s channel is JSON unless you ask for "<code>"serialization: 'advanced'"</code>
                "; "<code>"spawnlab bench"</code>" measures 1 MiB each way on both runtimes."
            </li>
            <li>
                "A speedup below the number of workers is the price of starting them and of sharing the cores with everything else on the machine; more workers than cores buys nothing for a CPU-bound job. The break-even sweep above shows where a second worker starts to pay on each runtime; try it in the "
                <a href="/threads">"worker threads lab"</a>"."
            </li>
            <li>
                "A cluster multiplies requests per second only while the requests need CPU; the load generator here runs on the same cores, so it takes its share too. Past one machine, a load balancer spreads connections between machines: see the "
                <a href="/cluster">"cluster page"</a>"."
            </li>
        </ul>
    }
}

/// The break-even sweep from the server's calibration pass (measured once,
/// for everyone), for pages other than the compare page.
#[component]
pub fn BreakEvenFromPass() -> impl IntoView {
    view! {
        <Suspense fallback=|| view! {
            <p class="measuring" role="status">
                "Measuring both runtimes on this server (once, for everyone)…"
            </p>
        }>
            {Suspend::new(async move {
                match measured_figures("false".into()).await {
                    Ok(c) => view! { <BreakEven points=c.break_even/> }.into_any(),
                    Err(e) => view! { <p class="error">"The server could not measure: " {e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Two workers against one over a range of job sizes, on each runtime: a
/// chart (speedup against job size, log scale) and its table.
#[component]
pub fn BreakEven(points: Vec<SweepPoint>) -> impl IntoView {
    if points.is_empty() {
        return None;
    }
    let (w, h, left, bottom) = (600.0, 180.0, 48.0, 22.0);
    let sizes: Vec<u64> = {
        let mut v: Vec<u64> = points.iter().map(|p| p.below).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let lo = (sizes[0] as f64).log10();
    let hi = (sizes[sizes.len() - 1] as f64).log10().max(lo + 1.0);
    let top = points
        .iter()
        .filter_map(SweepPoint::speedup)
        .fold(2.0, f64::max);
    let x = move |below: u64| left + ((below as f64).log10() - lo) / (hi - lo) * (w - left - 48.0);
    let y = move |s: f64| (h - bottom) - s / top * (h - bottom - 8.0);
    let lines = Runtime::ALL
        .into_iter()
        .map(|runtime| {
            let pts = points
                .iter()
                .filter(|p| p.runtime == runtime)
                .filter_map(|p| {
                    Some(format!(
                        "{},{}",
                        Fixed(x(p.below), 1),
                        Fixed(y(p.speedup()?), 1)
                    ))
                })
                .collect::<Vec<_>>()
                .join(" ");
            view! { <polyline class=format!("sweep {}", runtime.name()) points=pts></polyline> }
        })
        .collect_view();
    let ticks = sizes
        .iter()
        .map(|&below| {
            view! { <text class="tick" x=x(below) y=h - 6.0 text-anchor="middle">{format_count(below)}</text> }
        })
        .collect_view();
    let rows = sizes
        .iter()
        .map(|&below| {
            let cell = |runtime| {
                points
                    .iter()
                    .find(|p| p.below == below && p.runtime == runtime)
                    .map_or("—".to_string(), |p| {
                        format!(
                            "{} on 2, {} on 1: {}",
                            format_us(p.wall_us),
                            p.one_worker_us.map_or("—".into(), format_us),
                            p.speedup()
                                .map_or("—".into(), |s| format!("{}×", Fixed(s, 2)))
                        )
                    })
            };
            view! {
                <tr>
                    <th scope="row">{format_count(below)}</th>
                    <td class="num" data-runtime="node">{cell(Runtime::Node)}</td>
                    <td class="num" data-runtime="rust">{cell(Runtime::Rust)}</td>
                </tr>
            }
        })
        .collect_view();
    Some(view! {
        <figure class="chart break-even">
            <figcaption>
                "Break-even: counting the primes below N on 2 workers against 1 (worker threads). "
                "Above the line at 1×, the second worker paid for its start."
            </figcaption>
            <svg viewBox=format!("0 0 {w} {h}") role="img" data-measured="pass"
                aria-label="Speedup of two workers over one against job size, for Node.js and the Rust engine. The figures are in the table below.">
                <line class="axis" x1=left x2=w y1=h - bottom y2=h - bottom></line>
                <line class="even" x1=left x2=w y1=y(1.0) y2=y(1.0)></line>
                <text class="tick" x=left - 4.0 y=y(1.0) + 4.0 text-anchor="end">"1×"</text>
                <text class="tick" x=left - 4.0 y=y(top) + 10.0 text-anchor="end">{format!("{}×", Fixed(top, 1))}</text>
                {ticks}
                {lines}
            </svg>
            <ul class="legend">
                <li><span class="key node"></span>"Node.js (new Worker())"</li>
                <li><span class="key rust"></span>"Rust engine (std::thread)"</li>
            </ul>
            <div class="table-wrap" tabindex="0" role="region" aria-label="Break-even figures">
                <table class="compact">
                    <thead>
                        <tr>
                            <th scope="col">"Primes below"</th>
                            <th scope="col">"Node.js"</th>
                            <th scope="col">"Rust engine"</th>
                        </tr>
                    </thead>
                    <tbody data-measured="pass">{rows}</tbody>
                </table>
            </div>
        </figure>
    })
}

/// The shared CPU-bound job's wall time per model, as bars. The same
/// figures are in the table's "same CPU-bound job" row.
#[component]
fn JobChart(job: String, bars: Vec<(String, Runtime, Option<f64>)>) -> impl IntoView {
    let longest = bars.iter().filter_map(|(_, _, v)| *v).fold(0.0, f64::max);
    let (label_w, chart_w, row_h) = (250.0, 720.0, 30.0);
    let height = row_h * bars.len() as f64 + 8.0;
    let rows = bars
        .into_iter()
        .enumerate()
        .map(|(i, (name, runtime, value))| {
            let y = 4.0 + i as f64 * row_h;
            let width = match value {
                Some(v) if longest > 0.0 => (v / longest) * (chart_w - label_w - 90.0),
                _ => 0.0,
            };
            let text = value.map_or("—".into(), |v| format_us(v.round() as u64));
            view! {
                <g>
                    <text x="0" y=y + 20.0 class="label">{name}</text>
                    <rect x=label_w y=y + 4.0 width=width.max(1.0) height=row_h - 12.0 class=format!("job-bar {}", runtime.name())></rect>
                    <text x=label_w + width + 8.0 y=y + 20.0 class="value">{text}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-measured="pass">
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
