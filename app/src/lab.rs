//! A lab: choose what to run and how to spread it, press Run, and watch the
//! server's measurements arrive.
//!
//! One component serves every model; the catalogue's [`ModelKind`] decides
//! which controls it shows and which request it sends. It only draws
//! [`LabState`]: every number in it came over the WebSocket from a real run
//! on the server.
//!
//! The state lives in one signal, updated once per event; the parts of the
//! page read it through [`LabView`]'s memos, so a heartbeat redraws the
//! heartbeat strip and not the summary, the history or the cluster's table.

mod charts;
mod controls;
mod timeline;
mod views;

use crate::client::{Connection, Link};
use charts::{LatencyHistogram, Throughput};
use controls::Controls;
use leptos::prelude::*;
use protocol::lab::{Incident, LabState, PastRun, Phase, Tick, WorkerRow};
use protocol::{ClientMessage, HostInfo, LoadStats, ModelKind, RunSummary};
use timeline::Timeline;
use views::{ClusterView, HeartbeatStrip, RunHistory, Summary, WorkerTable};

/// The slices of a lab's state that parts of the page draw, each a memo:
/// it re-runs on every event, but wakes its readers only when its own slice
/// changed.
#[derive(Clone, Copy)]
pub struct LabView {
    pub phase: Memo<Phase>,
    pub busy: Memo<bool>,
    pub error: Memo<Option<String>>,
    pub host: Memo<Option<HostInfo>>,
    pub workers: Memo<Vec<WorkerRow>>,
    pub summary: Memo<Option<RunSummary>>,
    pub heartbeats: Memo<Vec<(u64, u64)>>,
    pub ticks: Memo<Vec<Tick>>,
    pub incidents: Memo<Vec<Incident>>,
    pub load: Memo<Option<LoadStats>>,
    pub history: Memo<Vec<PastRun>>,
    pub narration: Memo<Vec<String>>,
    /// The newest server stamp: the timeline's "now".
    pub latest_us: Memo<u64>,
}

impl LabView {
    fn new(lab: RwSignal<LabState>) -> Self {
        LabView {
            phase: Memo::new(move |_| lab.with(|s| s.phase)),
            busy: Memo::new(move |_| lab.with(LabState::busy)),
            error: Memo::new(move |_| lab.with(|s| s.error.clone())),
            host: Memo::new(move |_| lab.with(|s| s.host.clone())),
            workers: Memo::new(move |_| lab.with(|s| s.workers.clone())),
            summary: Memo::new(move |_| lab.with(|s| s.summary.clone())),
            heartbeats: Memo::new(move |_| lab.with(|s| s.heartbeats.clone())),
            ticks: Memo::new(move |_| lab.with(|s| s.ticks.clone())),
            incidents: Memo::new(move |_| lab.with(|s| s.incidents.clone())),
            load: Memo::new(move |_| lab.with(|s| s.load.clone())),
            history: Memo::new(move |_| lab.with(|s| s.history.clone())),
            narration: Memo::new(move |_| lab.with(|s| s.narration.clone())),
            latest_us: Memo::new(move |_| lab.with(|s| s.latest_us)),
        }
    }
}

/// The lab's heading.
fn title(model: ModelKind) -> &'static str {
    match model {
        ModelKind::MainThread => "Lab: block the event loop",
        ModelKind::Threads => "Lab: split a job across threads",
        ModelKind::ChildProcess => "Lab: split a job across child processes",
        ModelKind::Cluster => "Lab: load a cluster of HTTP workers",
    }
}

/// A lab for `model`.
#[component]
pub fn Lab(model: ModelKind) -> AnyView {
    let lab = RwSignal::new(LabState::default());
    let link = RwSignal::new(Link::Connecting);
    let hydrated = RwSignal::new(false);
    let connection = StoredValue::new_local(None::<Connection>);
    let next_id = StoredValue::new(1u64);
    let c = Controls::new(model);
    let state = LabView::new(lab);

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

    let ready = move || hydrated.get() && link.get() == Link::Open && !state.busy.get();
    // False when there is no open connection to send on.
    let send = move |msg: &ClientMessage| {
        connection.with_value(|conn| conn.as_ref().is_some_and(|conn| conn.send(msg)))
    };
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let msg = ClientMessage::Start {
            id,
            spec: c.spec(model),
        };
        lab.update(|s| s.begin(id));
        if !send(&msg) {
            lab.update(LabState::connection_lost);
        }
    };
    let cancel = move |_| {
        if let Some(id) = lab.with_untracked(|s| s.run) {
            send(&ClientMessage::Cancel { id });
        }
    };
    // Cluster: kill one worker now; its death and respawn come back as
    // events like any other.
    let kill = Callback::new(move |worker: u32| {
        if let Some(id) = lab.with_untracked(|s| s.run) {
            send(&ClientMessage::Kill { id, worker });
        }
    });

    view! {
        <section class="lab" aria-labelledby="lab-title" data-hydrated=move || hydrated.get().to_string()>
            <h2 id="lab-title">{title(model)}</h2>
            <noscript>
                <p class="notice">
                    "This lab talks to the server over a WebSocket, so it needs JavaScript. "
                    "Everything else on this page reads fine without it."
                </p>
            </noscript>
            // The server is the one judge of what is allowed (the CLI and the
            // page get the same message naming the field and its range), so
            // the browser's own checks are turned off.
            <form class="controls" on:submit=start novalidate>
                {c.fields(model)}
                <div class="actions">
                    <button id="run" type="submit" disabled=move || !ready()>
                        "Run"
                    </button>
                    <button
                        id="cancel"
                        type="button"
                        on:click=cancel
                        disabled=move || !state.busy.get()
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
                {move || phase_text(state.phase.get())}
            </p>
            {move || {
                state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })
            }}
            {(model == ModelKind::MainThread).then(|| view! { <HeartbeatStrip lab=state/> })}
            {(model == ModelKind::Cluster).then(|| view! {
                <ClusterView lab=state kill=kill/>
                <Throughput lab=state/>
                <LatencyHistogram lab=state/>
            })}
            <Timeline lab=state noun=model.worker_noun()/>
            <WorkerTable lab=state noun=model.worker_noun()/>
            {move || state.summary.get().map(|summary| {
                view! { <Summary summary=summary host=state.host.get_untracked() noun=model.worker_noun()/> }
            })}
            <RunHistory lab=state/>
            <div class="narration" role="log" aria-live="polite" aria-label="What the run is doing">
                {move || {
                    state.narration.get().into_iter().map(|line| view! { <p>{line}</p> }).collect_view()
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
        Phase::Baseline => "Timing the one-worker baseline…".into(),
    }
}
