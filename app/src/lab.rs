//! The lab: pick a workload, its size and the number of threads, press Run,
//! and watch the server's measurements arrive.
//!
//! The component only draws [`LabState`]; every number in it came over the
//! WebSocket from a real run on the server.

use crate::client::{Connection, Link};
use crate::lab_state::{describe_result, format_us, LabState, Phase, WorkerRow};
use crate::protocol::{ClientMessage, HostInfo, ModelSpec, Outcome, RunSpec, RunSummary, Workload};
use leptos::prelude::*;

/// The compute workloads a thread lab offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primes,
    Sha256Chain,
    Sleep,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Primes, Kind::Sha256Chain, Kind::Sleep];

    fn id(self) -> &'static str {
        match self {
            Kind::Primes => "primes",
            Kind::Sha256Chain => "sha256_chain",
            Kind::Sleep => "sleep",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Primes => "Count primes (CPU-bound)",
            Kind::Sha256Chain => "SHA-256 chain (CPU-bound)",
            Kind::Sleep => "Sleep (waiting, not computing)",
        }
    }

    fn size_label(self) -> &'static str {
        match self {
            Kind::Primes => "Count the primes below",
            Kind::Sha256Chain => "Rounds of hashing, shared out",
            Kind::Sleep => "Milliseconds of sleep, shared out",
        }
    }

    fn default_size(self) -> u64 {
        match self {
            Kind::Primes => 20_000_000,
            Kind::Sha256Chain => 2_000_000,
            Kind::Sleep => 2_000,
        }
    }

    fn from_id(id: &str) -> Self {
        Kind::ALL
            .into_iter()
            .find(|k| k.id() == id)
            .unwrap_or(Kind::Primes)
    }

    fn workload(self, size: u64) -> Workload {
        match self {
            Kind::Primes => Workload::Primes { below: size },
            Kind::Sha256Chain => Workload::Sha256Chain { rounds: size },
            Kind::Sleep => Workload::Sleep { ms: size },
        }
    }
}

/// The worker-threads lab.
#[component]
pub fn ThreadsLab() -> AnyView {
    let lab = RwSignal::new(LabState::default());
    let link = RwSignal::new(Link::Connecting);
    let hydrated = RwSignal::new(false);
    let connection = StoredValue::new_local(None::<Connection>);
    let next_id = StoredValue::new(1u64);
    let kind = RwSignal::new(Kind::Primes);
    let size = RwSignal::new(Kind::Primes.default_size());
    let workers = RwSignal::new(2u32);

    // Effects run only in the browser: this is where the socket opens, and
    // the attribute it sets tells tests (and curious learners) that the page
    // is live.
    Effect::new(move |_| {
        let conn = Connection::open(
            move |ev| lab.update(|s| s.apply(ev)),
            move |l| {
                link.set(l);
                if l == Link::Lost {
                    lab.update(LabState::connection_lost);
                }
            },
        );
        connection.set_value(Some(conn));
        hydrated.set(true);
    });
    on_cleanup(move || {
        connection.with_value(|c| c.iter().for_each(Connection::close));
    });

    let ready = move || hydrated.get() && link.get() == Link::Open && !lab.with(LabState::busy);
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let msg = ClientMessage::Start {
            id,
            spec: RunSpec {
                model: ModelSpec::Threads {
                    strategy: Default::default(),
                    sharing: Default::default(),
                },
                workload: kind.get_untracked().workload(size.get_untracked()),
                workers: workers.get_untracked(),
            },
        };
        lab.update(|s| s.begin(id));
        let sent = connection.with_value(|c| c.as_ref().is_some_and(|c| c.send(&msg)));
        if !sent {
            lab.update(LabState::connection_lost);
        }
    };
    let cancel = move |_| {
        if let Some(id) = lab.with_untracked(|s| s.run) {
            connection.with_value(|c| {
                if let Some(c) = c {
                    c.send(&ClientMessage::Cancel { id });
                }
            });
        }
    };
    let max_workers = move || lab.with(|s| s.limits.as_ref().map_or(16, |l| l.max_workers));
    let max_size = move || {
        lab.with(|s| {
            s.limits.as_ref().map(|l| match kind.get() {
                Kind::Primes => l.max_primes_below,
                Kind::Sha256Chain => l.max_sha256_rounds,
                Kind::Sleep => l.max_sleep_ms,
            })
        })
    };

    view! {
        <section class="lab" aria-labelledby="lab-title" data-hydrated=move || hydrated.get().to_string()>
            <h2 id="lab-title">"Lab: split a job across threads"</h2>
            <noscript>
                <p class="notice">
                    "This lab talks to the server over a WebSocket, so it needs JavaScript. "
                    "Everything else on this page reads fine without it."
                </p>
            </noscript>
            // The server is the one judge of what is allowed (the CLI and the
            // page get the same message naming the field and its range), so
            // the browser's own checks are turned off; min/max still shape
            // the number spinners.
            <form class="controls" on:submit=start novalidate>
                <div class="field">
                    <label for="workload">"Workload"</label>
                    <select
                        id="workload"
                        on:change=move |ev| {
                            let k = Kind::from_id(&event_target_value(&ev));
                            kind.set(k);
                            size.set(k.default_size());
                        }
                    >
                        {Kind::ALL
                            .into_iter()
                            .map(|k| {
                                view! {
                                    <option value=k.id() selected=move || kind.get() == k>
                                        {k.label()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="size">{move || kind.get().size_label()}</label>
                    <input
                        id="size"
                        type="number"
                        inputmode="numeric"
                        min="0"
                        max=move || max_size().map(|m| m.to_string())
                        prop:value=move || size.get().to_string()
                        on:input=move |ev| {
                            if let Ok(v) = event_target_value(&ev).trim().parse() {
                                size.set(v);
                            }
                        }
                    />
                </div>
                <div class="field">
                    <label for="workers">"Threads"</label>
                    <input
                        id="workers"
                        type="number"
                        inputmode="numeric"
                        min="1"
                        max=move || max_workers().to_string()
                        prop:value=move || workers.get().to_string()
                        on:input=move |ev| {
                            if let Ok(v) = event_target_value(&ev).trim().parse() {
                                workers.set(v);
                            }
                        }
                    />
                </div>
                <div class="actions">
                    <button id="run" type="submit" disabled=move || !ready()>
                        "Run"
                    </button>
                    <button
                        id="cancel"
                        type="button"
                        on:click=cancel
                        disabled=move || !lab.with(LabState::busy)
                    >
                        "Cancel"
                    </button>
                </div>
            </form>
            <p class="link" data-link=move || format!("{:?}", link.get()).to_lowercase()>
                {move || match (hydrated.get(), link.get()) {
                    (false, _) => "Waiting for the page to start…",
                    (true, Link::Connecting) => "Connecting to the server…",
                    (true, Link::Open) => "Connected: runs execute on the server that sent this page.",
                    (true, Link::Lost) => "Connection lost; reconnecting…",
                }}
                " "
                {move || phase_text(lab.with(|s| s.phase))}
            </p>
            {move || {
                lab.with(|s| s.error.clone())
                    .map(|e| view! { <p class="error" role="alert">{e}</p> })
            }}
            <WorkerTable lab=lab/>
            {move || lab.with(|s| s.summary.clone()).map(|summary| {
                view! { <Summary summary=summary host=lab.with(|s| s.host.clone())/> }
            })}
            <div class="narration" role="log" aria-live="polite" aria-label="What the run is doing">
                {move || {
                    lab.with(|s| {
                        s.narration.iter().map(|line| view! { <p>{line.clone()}</p> }).collect_view()
                    })
                }}
            </div>
        </section>
    }
    .into_any()
}

fn phase_text(phase: Phase) -> String {
    match phase {
        Phase::Idle => String::new(),
        Phase::Requested => "Starting…".into(),
        Phase::Queued(n) => format!("Queued: number {n} in line."),
        Phase::Running => "Running.".into(),
        Phase::Baseline => "Timing the one-thread baseline…".into(),
    }
}

/// One row per thread: when it started, how far it is, what it cost.
#[component]
fn WorkerTable(lab: RwSignal<LabState>) -> impl IntoView {
    let row = |w: WorkerRow| {
        let label = format!("Thread {} progress", w.worker);
        let percent = format!("{:.0}%", w.fraction() * 100.0);
        view! {
            <tr data-worker=w.worker>
                <th scope="row">{w.worker}</th>
                <td>{w.tid.map(|t| t.to_string()).unwrap_or_default()}</td>
                <td class="num">{w.start_latency_us.map(format_us).unwrap_or_default()}</td>
                <td>
                    <progress max="1" value=w.fraction() aria-label=label></progress>
                    " "
                    <span class="num">{percent}</span>
                </td>
                <td class="num">{w.wall_us.map(format_us).unwrap_or_default()}</td>
                <td class="num">{w.cpu_us.map(format_us).unwrap_or_default()}</td>
                <td class="result">{w.result.as_ref().map(describe_result).unwrap_or_default()}</td>
            </tr>
        }
    };
    view! {
        <div class="table-wrap">
            <table class="workers">
                <caption>"Per-thread measurements, as they arrive"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Thread"</th>
                        <th scope="col">"Kernel thread id"</th>
                        <th scope="col">"Spawn → first message"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Wall time"</th>
                        <th scope="col">"CPU time"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || lab.with(|s| s.workers.clone()).into_iter().map(row).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The end of a run: totals, the measured speedup, and where it ran.
#[component]
fn Summary(summary: RunSummary, host: Option<HostInfo>) -> impl IntoView {
    let outcome = format!("{:?}", summary.outcome).to_lowercase();
    let outcome_attr = outcome.clone();
    let speedup = match (summary.speedup, summary.outcome) {
        (Some(s), _) => format!("{s:.2}×"),
        (None, Outcome::Completed) => {
            "not measured: the one-thread baseline did not finish before the deadline".into()
        }
        (None, _) => "not measured: the run did not complete".into(),
    };
    view! {
        <section id="summary" class="summary" data-outcome=outcome_attr aria-labelledby="summary-title">
            <h3 id="summary-title">"Summary: " {outcome}</h3>
            <dl>
                <dt>"Result"</dt>
                <dd id="result">{describe_result(&summary.result)}</dd>
                <dt>"Wall time, all threads"</dt>
                <dd>{format_us(summary.wall_us)}</dd>
                <dt>"CPU time, all threads"</dt>
                <dd>{format_us(summary.cpu_us)}</dd>
                <dt>"Same job on one thread"</dt>
                <dd>{summary.baseline_wall_us.map(format_us).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Speedup over one thread (measured)"</dt>
                <dd id="speedup">{speedup}</dd>
            </dl>
            {host.map(|h| view! { <HostLine host=h/> })}
        </section>
    }
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
