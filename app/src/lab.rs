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
//!
//! The scaling lab is the same component with its own views (`scaling`):
//! a diagram of balancer, instances and workers, the buttons that break
//! them, and the balancer's account of the load beside the client's.

mod charts;
mod controls;
mod markup;
mod scaling;
mod timeline;
mod views;

use crate::client::{Connection, Link};
use charts::{cluster_rates, LatencyHistogram, Throughput};
use controls::Controls;
use leptos::either::Either;
use leptos::prelude::*;
use protocol::lab::{
    wait_phrase, Boot, BoxState, Incident, InstanceRow, LabState, PastRun, Phase, ScalingTick,
    Tick, WorkerRow, HISTORY,
};
use protocol::{
    BalancerInfo, BalancerKind, ClientMessage, Fault, HostInfo, Limits, LoadStats, ModelKind,
    Outcome, RunSpec, RunSummary, Runtime, RuntimeInfo, ScalingStats, ServerEvent,
};
use scaling::{
    provenance, scaling_rates, BalancerNote, BalancerTable, FaultLog, ScalingDiagram,
    ScalingHistory, ScalingRun,
};
use timeline::Timeline;
use views::summary_text;
use views::{
    ClusterView, HeartbeatStrip, PairTable, PingStrip, PoolStrip, RunHistory, RuntimeNote,
    WorkerTable,
};

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
    /// The runtimes this server has (from `hello`).
    pub runtimes: Memo<Vec<RuntimeInfo>>,
    /// The current run's runtime start-up (Node.js).
    pub boot: Memo<Option<Boot>>,
    /// The current run's runtime, once it has started.
    pub runtime: Memo<Option<Runtime>>,
    /// What the current run asked for, once it has started.
    pub spec: Memo<Option<RunSpec>>,
    /// Main thread: the `/ping`s sent from outside.
    pub pings: Memo<Vec<(u64, Option<u64>)>>,
    /// Main thread, Node.js: `monitorEventLoopDelay`'s p50, p99, max.
    pub loop_delay: Memo<Option<(u64, u64, u64)>>,
    /// Main thread, Node.js, `pool_hash`: each hash and when it finished.
    pub pool_tasks: Memo<Vec<(u32, u64)>>,
    /// The server's limits (from `hello`).
    pub limits: Memo<Option<Limits>>,
    /// The load balancers this server has (from `hello`).
    pub balancers: Memo<Vec<BalancerInfo>>,
    /// Scaling: the running balancer (which, its version, port, pid).
    pub balancer: Memo<Option<(BalancerKind, String, u16, u32)>>,
    /// Scaling: whether the balancer is up.
    pub balancer_state: Memo<BoxState>,
    /// Scaling: the app instances and their workers.
    pub instances: Memo<Vec<InstanceRow>>,
    /// Scaling: the live figures, one entry per tick.
    pub scaling_ticks: Memo<Vec<ScalingTick>>,
    /// Scaling: faults and recoveries, as (ms since the run began, a sentence).
    pub scaling_log: Memo<Vec<(u64, String)>>,
    /// Scaling: what the client and the balancer measured, at the end.
    pub scaling_stats: Memo<Option<ScalingStats>>,
    /// What produced the current run's figures: "Node.js v20.20.2 behind
    /// nginx/1.22.1" once a scaling run's balancer is up, else the runtime.
    pub provenance: Memo<Option<String>>,
}

impl LabView {
    /// " (Node.js)" or " (Rust engine)" once a run has started — and
    /// " (Node.js v20.20.2 behind nginx/1.22.1)" once a balancer is up:
    /// every chart's caption names what produced its figures.
    pub fn runtime_note(self) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
        move || self.provenance.get().map(|p| format!(" ({p})"))
    }

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
            runtimes: Memo::new(move |_| lab.with(|s| s.runtimes.clone())),
            boot: Memo::new(move |_| lab.with(|s| s.boot.clone())),
            runtime: Memo::new(move |_| lab.with(|s| s.spec.as_ref().map(|spec| spec.runtime))),
            spec: Memo::new(move |_| lab.with(|s| s.spec.clone())),
            pings: Memo::new(move |_| lab.with(|s| s.pings.clone())),
            loop_delay: Memo::new(move |_| lab.with(|s| s.loop_delay)),
            pool_tasks: Memo::new(move |_| lab.with(|s| s.pool_tasks.clone())),
            limits: Memo::new(move |_| lab.with(|s| s.limits.clone())),
            balancers: Memo::new(move |_| lab.with(|s| s.balancers.clone())),
            balancer: Memo::new(move |_| lab.with(|s| s.scaling.balancer.clone())),
            balancer_state: Memo::new(move |_| lab.with(|s| s.scaling.balancer_state)),
            instances: Memo::new(move |_| lab.with(|s| s.scaling.instances.clone())),
            scaling_ticks: Memo::new(move |_| lab.with(|s| s.scaling.ticks.clone())),
            scaling_log: Memo::new(move |_| lab.with(|s| s.scaling.log.clone())),
            scaling_stats: Memo::new(move |_| lab.with(|s| s.scaling.stats.clone())),
            provenance: Memo::new(move |_| lab.with(provenance)),
        }
    }
}

/// Where a lab keeps its socket. In the browser the connection holds
/// JavaScript objects, which stay on their thread; on the server there is
/// no socket (`Connection` is an empty stand-in), and a page may finish
/// rendering on another thread than it began (it waits for the calibration
/// there), so the slot must be thread-safe.
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn connection_slot() -> StoredValue<Option<Connection>, LocalStorage> {
    StoredValue::new_local(None)
}

#[cfg(not(any(feature = "hydrate", feature = "csr")))]
fn connection_slot() -> StoredValue<Option<Connection>> {
    StoredValue::new(None)
}

/// The lab's heading.
fn title(model: ModelKind) -> &'static str {
    match model {
        ModelKind::MainThread => "Lab: block the event loop",
        ModelKind::Threads => "Lab: split a job across threads",
        ModelKind::ChildProcess => "Lab: split a job across child processes",
        ModelKind::Cluster => "Lab: load a cluster of HTTP workers",
        ModelKind::Scaling => "Lab: clusters behind a load balancer",
    }
}

/// The lab of the main-thread page.
#[island]
pub fn MainThreadLab() -> impl IntoView {
    lab(ModelKind::MainThread)
}

/// The lab of the worker-threads page.
#[island]
pub fn ThreadsLab() -> impl IntoView {
    lab(ModelKind::Threads)
}

/// The lab of the child-process page.
#[island]
pub fn ChildProcessLab() -> impl IntoView {
    lab(ModelKind::ChildProcess)
}

/// The lab of the cluster page.
#[island]
pub fn ClusterLab() -> impl IntoView {
    lab(ModelKind::Cluster)
}

/// The lab of the scaling page.
#[island]
pub fn ScalingLab() -> impl IntoView {
    lab(ModelKind::Scaling)
}

/// A lab for `model`: the part of a model's page that runs in the browser.
///
/// Each model's page has an island of its own that calls this, without
/// props: an island's props travel as JSON and are read back with serde's
/// typed deserializer, which (with Rust's float formatting, reached through
/// its error messages) was 14 KB of the brotli-compressed bundle, all to
/// learn one word.
fn lab(model: ModelKind) -> impl IntoView {
    let lab = RwSignal::new(LabState::default());
    let link = RwSignal::new(Link::Connecting);
    let hydrated = RwSignal::new(false);
    let connection = connection_slot();
    let next_id = StoredValue::new(1u64);
    let c = Controls::new(model);
    let state = LabView::new(lab);
    // "Run on both": the Rust run that follows the Node.js one, waiting for
    // the first to finish.
    let then = StoredValue::new(None::<RunSpec>);
    // Scaling: the finished runs with what the client and the balancer
    // measured, which the generic history does not keep.
    let scaling_runs = RwSignal::new(Vec::<ScalingRun>::new());

    // False when there is no open connection to send on.
    let send = move |msg: &ClientMessage| {
        connection.with_value(|conn| conn.as_ref().is_some_and(|conn| conn.send(msg)))
    };
    // Start `spec` as a new run and follow it.
    let launch = move |spec: RunSpec| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        lab.update(|s| s.begin(id));
        if !send(&ClientMessage::Start { id, spec }) {
            then.set_value(None);
            lab.update(LabState::connection_lost);
        }
    };

    // Effects run only in the browser: this is where the socket opens, and
    // the attribute it sets tells tests (and curious learners) that the page
    // is live.
    Effect::new(move |_| {
        let conn = Connection::open(
            move |ev| {
                let ours = matches!(&ev, ServerEvent::RunFinished { run, .. }
                    if Some(*run) == lab.with_untracked(|s| s.run));
                let ended = ours
                    && matches!(&ev, ServerEvent::RunFinished { summary, .. }
                    if summary.outcome == Outcome::Completed);
                lab.update(|s| s.apply(ev));
                if ours && model == ModelKind::Scaling {
                    if let Some(run) = lab.with_untracked(ScalingRun::of) {
                        scaling_runs.update(|runs| {
                            runs.insert(0, run);
                            runs.truncate(HISTORY);
                        });
                    }
                }
                // The first half of "run on both" is done: the second begins.
                if let (true, Some(next)) = (ended, then.get_value()) {
                    then.set_value(None);
                    launch(next);
                }
            },
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

    // Scaling needs a real balancer: without one the lab is off, never
    // simulated (the note says how to install it).
    let ready = move || {
        hydrated.get()
            && link.get() == Link::Open
            && !state.busy.get()
            && c.unavailable(model, state).is_none()
    };
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if ready() {
            then.set_value(None);
            launch(c.spec(model));
        }
    };
    // The same settings on Node.js, then on the Rust engine.
    let both = move |_| {
        if ready() && c.node_only(model).is_none() {
            let spec = c.spec(model);
            then.set_value(Some(RunSpec {
                runtime: Runtime::Rust,
                ..spec.clone()
            }));
            launch(RunSpec {
                runtime: Runtime::Node,
                ..spec
            });
        }
    };
    let cancel = move |_| {
        then.set_value(None);
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
    // Scaling: break (or mend) part of the run now; what happens comes
    // back as events.
    let fault = Callback::new(move |fault: Fault| {
        if let Some(id) = lab.with_untracked(|s| s.run) {
            send(&ClientMessage::Fault { id, fault });
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
                {c.fields(model, state)}
                <div class="actions">
                    <button id="run" type="submit" disabled=move || !ready()>
                        "Run"
                    </button>
                    <button
                        id="run-both"
                        type="button"
                        on:click=both
                        disabled=move || !ready() || c.node_only(model).is_some()
                        title=move || c.node_only(model)
                    >
                        "Run on both"
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
            <p class="link" data-link=move || link.get().name()>
                {move || match (hydrated.get(), link.get()) {
                    (false, _) => "Waiting for the page to start…",
                    (true, Link::Connecting) => "Connecting to the server…",
                    (true, Link::Open) => "Connected: runs execute on the server that sent this page.",
                    (true, Link::Lost) => "Connection lost; reconnecting…",
                }}
                " "
                {move || phase_text(state.phase.get())}
            </p>
            <RuntimeNote lab=state model=model runtime=c.runtime/>
            {(model == ModelKind::Scaling).then(|| view! {
                <BalancerNote lab=state balancer=c.balancer/>
            })}
            {move || {
                state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })
            }}
            {(model == ModelKind::MainThread).then(|| view! {
                <HeartbeatStrip lab=state/>
                <PingStrip lab=state/>
                <PoolStrip lab=state/>
            })}
            {(model == ModelKind::Cluster).then(|| {
                let (points, marks) = cluster_rates(state);
                let latency = Memo::new(move |_| state.load.with(|l| l.as_ref().map(|l| l.latency.clone())));
                view! {
                    <ClusterView lab=state kill=kill/>
                    <Throughput
                        lab=state
                        caption="Throughput over the run: requests answered in each quarter second, as a rate per second"
                        points=points
                        marks=marks
                        marks_mean="a red line marks a worker's death"
                    />
                    <LatencyHistogram lab=state latency=latency/>
                }
            })}
            {(model == ModelKind::Scaling).then(|| {
                let (points, marks) = scaling_rates(state);
                let latency = Memo::new(move |_| state.scaling_stats.with(|s| s.as_ref().map(|s| s.latency.clone())));
                view! {
                    <ScalingDiagram lab=state fault=fault/>
                    <FaultLog lab=state/>
                    <Throughput
                        lab=state
                        caption="Throughput over the run: requests the client got answered, per second, tick by tick"
                        points=points
                        marks=marks
                        marks_mean="a dashed line marks each fault or recovery in the log"
                    />
                    <LatencyHistogram lab=state latency=latency/>
                    <BalancerTable lab=state/>
                }
            })}
            // A scaling run's workers belong to instances: the diagram and
            // the balancer's table show them instead.
            {(model != ModelKind::Scaling).then(|| view! {
                <Timeline lab=state noun=model.worker_noun()/>
                <WorkerTable lab=state noun=model.worker_noun()/>
            })}
            <div
                class="summary-slot"
                inner_html=move || {
                    state.summary.get().map_or_else(String::new, |summary| {
                        summary_text(
                            &summary,
                            state.host.get_untracked().as_ref(),
                            state.runtime.get_untracked(),
                            model.worker_noun(),
                        )
                    })
                }
            ></div>
            {if model == ModelKind::Scaling {
                Either::Left(view! { <ScalingHistory runs=scaling_runs/> })
            } else {
                Either::Right(view! {
                    <PairTable lab=state/>
                    <RunHistory lab=state/>
                })
            }}
            <div
                class="narration"
                role="log"
                aria-live="polite"
                aria-label="What the run is doing"
                tabindex="0"
            >
                {move || {
                    state.narration.get().into_iter().map(|line| view! { <p>{line}</p> }).collect_view()
                }}
            </div>
        </section>
    }
}

fn phase_text(phase: Phase) -> String {
    match phase {
        Phase::Idle => String::new(),
        Phase::Requested => "Starting…".into(),
        Phase::Queued { position, wait_ms } => {
            format!("Queued: number {position} in line{}.", wait_phrase(wait_ms))
        }
        Phase::Running => "Running.".into(),
        Phase::Baseline => "Timing the one-worker baseline…".into(),
    }
}
