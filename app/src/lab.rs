//! A lab: choose what to run and how to spread it, press Run, and watch the
//! server's measurements arrive.
//!
//! One component serves every model; [`LabModel`] decides which controls it
//! shows and which request it sends. It only draws [`LabState`]: every
//! number in it came over the WebSocket from a real run on the server.

mod charts;
mod timeline;
mod views;

use crate::client::{Connection, Link};
use crate::lab_state::{LabState, Phase};
use crate::protocol::{
    ClientMessage, KillWorker, ModelSpec, Program, RunSpec, SchedPolicy, Sharing, ThreadStrategy,
    Workload,
};
use charts::{LatencyHistogram, Throughput};
use leptos::prelude::*;
use timeline::Timeline;
use views::{ClusterView, HeartbeatStrip, RunHistory, Summary, WorkerTable};

/// Which model a lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabModel {
    MainThread,
    Threads,
    ChildProcess,
    Cluster,
}

impl LabModel {
    /// What one worker is called on this lab's page.
    fn worker_noun(self) -> &'static str {
        match self {
            LabModel::MainThread => "Loop",
            LabModel::Threads => "Thread",
            LabModel::ChildProcess => "Process",
            LabModel::Cluster => "Worker",
        }
    }

    fn kinds(self) -> &'static [Kind] {
        match self {
            LabModel::MainThread | LabModel::Threads => {
                &[Kind::Primes, Kind::Sha256Chain, Kind::Sleep]
            }
            LabModel::ChildProcess => {
                &[Kind::Primes, Kind::Sha256Chain, Kind::Sleep, Kind::Program]
            }
            LabModel::Cluster => &[Kind::HttpHello, Kind::HttpCpu, Kind::HttpSleep],
        }
    }

    fn title(self) -> &'static str {
        match self {
            LabModel::MainThread => "Lab: block the event loop",
            LabModel::Threads => "Lab: split a job across threads",
            LabModel::ChildProcess => "Lab: split a job across child processes",
            LabModel::Cluster => "Lab: load a cluster of HTTP workers",
        }
    }
}

/// The catalogue, as the lab's menu offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primes,
    Sha256Chain,
    Sleep,
    Program,
    HttpHello,
    HttpCpu,
    HttpSleep,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Primes,
        Kind::Sha256Chain,
        Kind::Sleep,
        Kind::Program,
        Kind::HttpHello,
        Kind::HttpCpu,
        Kind::HttpSleep,
    ];

    fn id(self) -> &'static str {
        match self {
            Kind::Primes => "primes",
            Kind::Sha256Chain => "sha256_chain",
            Kind::Sleep => "sleep",
            Kind::Program => "program",
            Kind::HttpHello => "http_hello",
            Kind::HttpCpu => "http_cpu",
            Kind::HttpSleep => "http_sleep",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Primes => "Count primes (CPU-bound)",
            Kind::Sha256Chain => "SHA-256 chain (CPU-bound)",
            Kind::Sleep => "Sleep (waiting, not computing)",
            Kind::Program => "Run another program",
            Kind::HttpHello => "Say hello (almost no work)",
            Kind::HttpCpu => "Burn CPU on every request",
            Kind::HttpSleep => "Wait on every request",
        }
    }

    /// The size field's label; `None` when the workload has no size.
    fn size_label(self) -> Option<&'static str> {
        match self {
            Kind::Primes => Some("Count the primes below"),
            Kind::Sha256Chain => Some("Rounds of hashing, shared out"),
            Kind::Sleep => Some("Milliseconds of sleep, shared out"),
            Kind::HttpCpu => Some("Milliseconds of CPU per request"),
            Kind::HttpSleep => Some("Milliseconds of waiting per request"),
            Kind::Program | Kind::HttpHello => None,
        }
    }

    fn default_size(self) -> u64 {
        match self {
            Kind::Primes => 20_000_000,
            Kind::Sha256Chain => 2_000_000,
            Kind::Sleep => 2_000,
            Kind::HttpCpu => 1,
            Kind::HttpSleep => 5,
            Kind::Program | Kind::HttpHello => 0,
        }
    }

    fn from_id(id: &str) -> Self {
        Kind::ALL
            .into_iter()
            .find(|k| k.id() == id)
            .unwrap_or(Kind::Primes)
    }

    fn workload(self, size: u64, program: Program) -> Workload {
        match self {
            Kind::Primes => Workload::Primes { below: size },
            Kind::Sha256Chain => Workload::Sha256Chain { rounds: size },
            Kind::Sleep => Workload::Sleep { ms: size },
            Kind::Program => Workload::Program { program },
            Kind::HttpHello => Workload::HttpHello,
            Kind::HttpCpu => Workload::HttpCpu { ms: size },
            Kind::HttpSleep => Workload::HttpSleep { ms: size },
        }
    }
}

const PROGRAMS: [(Program, &str, &str); 4] = [
    (Program::Uname, "uname", "uname -a"),
    (
        Program::ListPublic,
        "list_public",
        "ls -l (the site's files)",
    ),
    (
        Program::PythonVersion,
        "python_version",
        "python3 --version",
    ),
    (Program::NodeVersion, "node_version", "node --version"),
];

const POLICIES: [(SchedPolicy, &str, &str); 3] = [
    (
        SchedPolicy::RoundRobin,
        "round_robin",
        "Round robin: the primary hands out connections",
    ),
    (
        SchedPolicy::SharedSocket,
        "shared_socket",
        "Shared socket: workers race to accept",
    ),
    (
        SchedPolicy::ReusePort,
        "reuse_port",
        "SO_REUSEPORT: the kernel hashes connections",
    ),
];

const STRATEGIES: [(ThreadStrategy, &str, &str); 2] = [
    (ThreadStrategy::Spawn, "spawn", "New threads for every run"),
    (
        ThreadStrategy::Pool,
        "pool",
        "A pool, started once and reused",
    ),
];

const SHARINGS: [(Sharing, &str, &str); 2] = [
    (Sharing::Messages, "messages", "Messages on a channel"),
    (
        Sharing::SharedMemory,
        "shared_memory",
        "Shared memory (atomics), no messages",
    ),
];

/// A labelled menu over `options` (value, id, label), bound to `value`.
fn choice<T>(
    id: &'static str,
    label: &'static str,
    value: RwSignal<T>,
    options: &'static [(T, &'static str, &'static str)],
) -> AnyView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select
                id=id
                on:change=move |ev| {
                    let picked = event_target_value(&ev);
                    if let Some((v, _, _)) = options.iter().find(|(_, i, _)| *i == picked) {
                        value.set(*v);
                    }
                }
            >
                {options
                    .iter()
                    .map(|&(v, i, text)| {
                        view! { <option value=i selected=move || value.get() == v>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </div>
    }
    .into_any()
}

/// Everything the learner can set, as signals.
#[derive(Clone, Copy)]
struct Controls {
    kind: RwSignal<Kind>,
    size: RwSignal<u64>,
    workers: RwSignal<u32>,
    program: RwSignal<Program>,
    round_trips: RwSignal<u32>,
    policy: RwSignal<SchedPolicy>,
    strategy: RwSignal<ThreadStrategy>,
    sharing: RwSignal<Sharing>,
    requests: RwSignal<u32>,
    concurrency: RwSignal<u32>,
    keep_alive: RwSignal<bool>,
    kill: RwSignal<bool>,
    kill_worker: RwSignal<u32>,
    kill_after: RwSignal<u32>,
}

impl Controls {
    fn new(model: LabModel) -> Self {
        let kind = model.kinds()[0];
        Controls {
            kind: RwSignal::new(kind),
            size: RwSignal::new(kind.default_size()),
            workers: RwSignal::new(if model == LabModel::MainThread { 1 } else { 2 }),
            program: RwSignal::new(Program::Uname),
            round_trips: RwSignal::new(if model == LabModel::ChildProcess {
                1_000
            } else {
                0
            }),
            policy: RwSignal::new(SchedPolicy::RoundRobin),
            strategy: RwSignal::new(ThreadStrategy::Spawn),
            sharing: RwSignal::new(Sharing::Messages),
            requests: RwSignal::new(20_000),
            concurrency: RwSignal::new(32),
            keep_alive: RwSignal::new(true),
            kill: RwSignal::new(false),
            kill_worker: RwSignal::new(0),
            kill_after: RwSignal::new(5_000),
        }
    }

    /// The request these controls describe.
    fn spec(&self, model: LabModel) -> RunSpec {
        let model_spec = match model {
            LabModel::MainThread => ModelSpec::MainThread,
            LabModel::Threads => ModelSpec::Threads {
                strategy: self.strategy.get_untracked(),
                sharing: self.sharing.get_untracked(),
            },
            LabModel::ChildProcess => ModelSpec::ChildProcess {
                round_trips: self.round_trips.get_untracked(),
            },
            LabModel::Cluster => ModelSpec::Cluster {
                policy: self.policy.get_untracked(),
                requests: self.requests.get_untracked(),
                concurrency: self.concurrency.get_untracked(),
                keep_alive: self.keep_alive.get_untracked(),
                kill: self.kill.get_untracked().then(|| KillWorker {
                    worker: self.kill_worker.get_untracked(),
                    after_requests: self.kill_after.get_untracked(),
                }),
            },
        };
        RunSpec {
            model: model_spec,
            workload: self
                .kind
                .get_untracked()
                .workload(self.size.get_untracked(), self.program.get_untracked()),
            workers: self.workers.get_untracked(),
        }
    }
}

/// A labelled number input bound to `value`; unparsable text leaves the
/// value alone, and the server judges the range.
fn number_field<T>(id: &'static str, label: &'static str, value: RwSignal<T>) -> impl IntoView
where
    T: Copy + ToString + std::str::FromStr + Send + Sync + 'static,
{
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="number"
                inputmode="numeric"
                min="0"
                prop:value=move || value.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse() {
                        value.set(v);
                    }
                }
            />
        </div>
    }
}

/// A lab for `model`.
#[component]
pub fn Lab(model: LabModel) -> AnyView {
    let lab = RwSignal::new(LabState::default());
    let link = RwSignal::new(Link::Connecting);
    let hydrated = RwSignal::new(false);
    let connection = StoredValue::new_local(None::<Connection>);
    let next_id = StoredValue::new(1u64);
    let c = Controls::new(model);

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

    let workload_select = view! {
        <div class="field">
            <label for="workload">
                {if model == LabModel::Cluster { "Every request" } else { "Workload" }}
            </label>
            <select
                id="workload"
                on:change=move |ev| {
                    let k = Kind::from_id(&event_target_value(&ev));
                    c.kind.set(k);
                    c.size.set(k.default_size());
                }
            >
                {model
                    .kinds()
                    .iter()
                    .map(|&k| {
                        view! {
                            <option value=k.id() selected=move || c.kind.get() == k>
                                {k.label()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </div>
    }
    .into_any();
    let size_field = move || {
        c.kind
            .get()
            .size_label()
            .map(|label| number_field("size", label, c.size).into_any())
    };
    let program_field = move || {
        (c.kind.get() == Kind::Program).then(|| {
            choice(
                "program",
                "Program (run without a shell)",
                c.program,
                &PROGRAMS,
            )
        })
    };
    let workers_field = (model != LabModel::MainThread).then(|| {
        let label = match model {
            LabModel::Threads => "Threads",
            LabModel::ChildProcess => "Child processes",
            _ => "Workers",
        };
        number_field("workers", label, c.workers).into_any()
    });
    let model_fields = match model {
        LabModel::Threads => Some(
            view! {
                {choice("strategy", "Threads come from", c.strategy, &STRATEGIES)}
                {choice("sharing", "Workers report through", c.sharing, &SHARINGS)}
            }
            .into_any(),
        ),
        LabModel::ChildProcess => Some(
            number_field("round_trips", "Ping-pong messages per child", c.round_trips).into_any(),
        ),
        LabModel::Cluster => Some(
            view! {
                {choice("policy", "Scheduling policy", c.policy, &POLICIES)}
                {number_field("requests", "Requests to send", c.requests)}
                {number_field("concurrency", "In flight at once", c.concurrency)}
                <div class="field check">
                    <label>
                        <input
                            id="keep_alive"
                            type="checkbox"
                            prop:checked=move || c.keep_alive.get()
                            on:change=move |ev| c.keep_alive.set(event_target_checked(&ev))
                        />
                        " Keep connections alive"
                    </label>
                </div>
                <div class="field check">
                    <label>
                        <input
                            id="kill"
                            type="checkbox"
                            prop:checked=move || c.kill.get()
                            on:change=move |ev| c.kill.set(event_target_checked(&ev))
                        />
                        " Kill a worker during the load"
                    </label>
                </div>
                {move || {
                    c.kill.get().then(|| view! {
                        {number_field("kill_worker", "Worker to kill", c.kill_worker)}
                        {number_field("kill_after", "…after this many answers", c.kill_after)}
                    })
                }}
            }
            .into_any(),
        ),
        _ => None,
    };

    view! {
        <section class="lab" aria-labelledby="lab-title" data-hydrated=move || hydrated.get().to_string()>
            <h2 id="lab-title">{model.title()}</h2>
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
                {workload_select}
                {size_field}
                {program_field}
                {workers_field}
                {model_fields}
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
            {(model == LabModel::MainThread).then(|| view! { <HeartbeatStrip lab=lab/> })}
            {(model == LabModel::Cluster).then(|| view! {
                <ClusterView lab=lab kill=kill/>
                <Throughput lab=lab/>
                <LatencyHistogram lab=lab/>
            })}
            <Timeline lab=lab noun=model.worker_noun()/>
            <WorkerTable lab=lab noun=model.worker_noun()/>
            {move || lab.with(|s| s.summary.clone()).map(|summary| {
                view! { <Summary summary=summary host=lab.with(|s| s.host.clone()) noun=model.worker_noun()/> }
            })}
            <RunHistory lab=lab/>
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
        Phase::Baseline => "Timing the one-worker baseline…".into(),
    }
}
