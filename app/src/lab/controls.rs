//! What the learner can set before pressing Run, and the request it makes.
//!
//! The menus are the catalogue's (`protocol::catalogue`): which workloads a
//! model accepts, the programs, policies, strategies and ways of sharing,
//! each with its label. Nothing here is judged in the browser: the server
//! is the one judge of what is allowed, and says which field is wrong.

use super::LabView;
use leptos::either::EitherOf4;
use leptos::prelude::*;
use protocol::{
    catalogue::{DEFAULT_INSTANCES, DEFAULT_POOL_THREADS},
    Balance, BalancerKind, Fault, KillWorker, ModelKind, ModelSpec, Program, RunSpec, Runtime,
    SchedPolicy, Serialization, Sharing, ThreadStrategy, TimedFault, Workload, WorkloadKind,
    DEFAULT_CONCURRENCY, DEFAULT_KILL_AFTER, DEFAULT_REQUESTS, DEFAULT_ROUND_TRIPS,
};

/// Scaling: a fault planned before the run, injected by the server once so
/// many requests are answered — the same moment on every run, so a run
/// with retries and one without can be compared. (The buttons beside the
/// diagram break things by hand.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Nothing,
    Worker,
    Instance,
    Balancer,
}

impl Planned {
    const ALL: [Planned; 4] = [
        Planned::Nothing,
        Planned::Worker,
        Planned::Instance,
        Planned::Balancer,
    ];

    /// The menu's value and label.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Planned::Nothing => ("nothing", "Nothing planned (use the buttons while it runs)"),
            Planned::Worker => ("kill_worker", "Kill a worker of one instance"),
            Planned::Instance => ("kill_instance", "Kill one whole instance"),
            Planned::Balancer => ("kill_balancer", "Kill the balancer"),
        }
    }
}

/// Everything the learner can set, as signals.
#[derive(Clone, Copy)]
pub struct Controls {
    pub runtime: RwSignal<Runtime>,
    kind: RwSignal<WorkloadKind>,
    size: RwSignal<u64>,
    workers: RwSignal<u32>,
    program: RwSignal<Program>,
    round_trips: RwSignal<u32>,
    serialization: RwSignal<Serialization>,
    policy: RwSignal<SchedPolicy>,
    strategy: RwSignal<ThreadStrategy>,
    sharing: RwSignal<Sharing>,
    requests: RwSignal<u32>,
    concurrency: RwSignal<u32>,
    keep_alive: RwSignal<bool>,
    kill: RwSignal<bool>,
    kill_worker: RwSignal<u32>,
    kill_after: RwSignal<u32>,
    pool_threads: RwSignal<u32>,
    instances: RwSignal<u32>,
    pub balancer: RwSignal<BalancerKind>,
    balance: RwSignal<Balance>,
    retries: RwSignal<bool>,
    planned: RwSignal<Planned>,
    fault_instance: RwSignal<u32>,
}

impl Controls {
    /// The controls of `model`'s lab, at their defaults.
    pub fn new(model: ModelKind) -> Self {
        let kind = model.workloads()[0];
        Controls {
            runtime: RwSignal::new(Runtime::Node),
            kind: RwSignal::new(kind),
            size: RwSignal::new(kind.default_size()),
            workers: RwSignal::new(model.default_workers()),
            program: RwSignal::new(Program::Uname),
            round_trips: RwSignal::new(if model == ModelKind::ChildProcess {
                DEFAULT_ROUND_TRIPS
            } else {
                0
            }),
            serialization: RwSignal::new(Serialization::Json),
            policy: RwSignal::new(SchedPolicy::RoundRobin),
            strategy: RwSignal::new(ThreadStrategy::Spawn),
            sharing: RwSignal::new(Sharing::Messages),
            requests: RwSignal::new(DEFAULT_REQUESTS),
            concurrency: RwSignal::new(DEFAULT_CONCURRENCY),
            keep_alive: RwSignal::new(true),
            kill: RwSignal::new(false),
            kill_worker: RwSignal::new(0),
            kill_after: RwSignal::new(DEFAULT_KILL_AFTER),
            pool_threads: RwSignal::new(DEFAULT_POOL_THREADS),
            instances: RwSignal::new(DEFAULT_INSTANCES),
            balancer: RwSignal::new(BalancerKind::default()),
            balance: RwSignal::new(Balance::default()),
            retries: RwSignal::new(true),
            planned: RwSignal::new(Planned::Nothing),
            fault_instance: RwSignal::new(DEFAULT_INSTANCES - 1),
        }
    }

    /// Scaling: the planned fault, if one is.
    fn timed_fault(&self) -> Option<TimedFault> {
        let instance = self.fault_instance.get_untracked();
        let fault = match self.planned.get_untracked() {
            Planned::Nothing => return None,
            Planned::Worker => Fault::KillWorker {
                instance,
                worker: self.kill_worker.get_untracked(),
            },
            Planned::Instance => Fault::KillInstance { instance },
            Planned::Balancer => Fault::KillBalancer,
        };
        Some(TimedFault {
            after_requests: self.kill_after.get_untracked(),
            fault,
        })
    }

    /// Why `model`'s lab cannot run on this server, if it cannot: a
    /// scaling lab without nginx is off (the server's note says how to
    /// install it), and one whose chosen balancer is missing waits for
    /// another choice. Tracked.
    pub fn unavailable(&self, model: ModelKind, lab: LabView) -> Option<String> {
        if model != ModelKind::Scaling {
            return None;
        }
        let chosen = self.balancer.get();
        lab.balancers.with(|all| {
            let info = |kind: BalancerKind| all.iter().find(|b| b.balancer == kind);
            match (info(BalancerKind::Nginx), info(chosen)) {
                (None, _) => {
                    Some("Waiting for the server to say which load balancers it has…".into())
                }
                (Some(nginx), _) if !nginx.available => Some(nginx.note.clone()),
                (_, Some(b)) if b.available => None,
                (_, Some(b)) => Some(b.note.clone()),
                (_, None) => Some(format!(
                    "This server did not say whether it has {}.",
                    chosen.label()
                )),
            }
        })
    }

    /// The request these controls describe.
    pub fn spec(&self, model: ModelKind) -> RunSpec {
        let model_spec = match model {
            ModelKind::MainThread => ModelSpec::MainThread,
            ModelKind::Threads => ModelSpec::Threads {
                strategy: self.strategy.get_untracked(),
                sharing: self.sharing.get_untracked(),
            },
            ModelKind::ChildProcess => ModelSpec::ChildProcess {
                round_trips: self.round_trips.get_untracked(),
                serialization: self.serialization.get_untracked(),
            },
            ModelKind::Cluster => ModelSpec::Cluster {
                policy: self.policy.get_untracked(),
                requests: self.requests.get_untracked(),
                concurrency: self.concurrency.get_untracked(),
                keep_alive: self.keep_alive.get_untracked(),
                kill: self.kill.get_untracked().then(|| KillWorker {
                    worker: self.kill_worker.get_untracked(),
                    after_requests: self.kill_after.get_untracked(),
                }),
            },
            ModelKind::Scaling => ModelSpec::Scaling {
                instances: self.instances.get_untracked(),
                balancer: self.balancer.get_untracked(),
                balance: self.balance.get_untracked(),
                requests: self.requests.get_untracked(),
                concurrency: self.concurrency.get_untracked(),
                keep_alive: self.keep_alive.get_untracked(),
                retries: self.retries.get_untracked(),
                faults: self.timed_fault().into_iter().collect(),
            },
        };
        let mut workload = self
            .kind
            .get_untracked()
            .with_size(self.size.get_untracked(), self.program.get_untracked());
        if let Workload::PoolHash { pool_threads, .. } = &mut workload {
            *pool_threads = self.pool_threads.get_untracked();
        }
        RunSpec {
            runtime: self.runtime.get_untracked(),
            model: model_spec,
            workload,
            workers: self.workers.get_untracked(),
        }
    }

    /// Why the run these controls describe exists on Node.js alone, if it
    /// does (a libuv pool workload, advanced serialization). Tracked.
    pub fn node_only(&self, model: ModelKind) -> Option<&'static str> {
        self.kind.track();
        self.serialization.track();
        self.spec(model).node_only()
    }

    /// The form's fields for `model`, in order. `lab` has what the server
    /// said in `hello`: its limits and its balancers.
    pub fn fields(self, model: ModelKind, lab: LabView) -> impl IntoView {
        let c = self;
        let runtime_select = choice("runtime", "Runs on", c.runtime, &Runtime::ALL, |r| {
            (r.name(), r.label())
        });
        let workload_select = view! {
            <div class="field">
                <label for="workload">
                    {if matches!(model, ModelKind::Cluster | ModelKind::Scaling) {
                        "Every request"
                    } else {
                        "Workload"
                    }}
                </label>
                <select
                    id="workload"
                    on:change=move |ev| {
                        if let Some(k) = WorkloadKind::from_name(&event_target_value(&ev)) {
                            c.kind.set(k);
                            c.size.set(k.default_size());
                            // Only Node.js has libuv's pool: pick it for the learner.
                            if k.node_only() {
                                c.runtime.set(Runtime::Node);
                            }
                        }
                    }
                >
                    {model
                        .workloads()
                        .iter()
                        .map(|&k| {
                            view! {
                                <option value=k.name() selected=move || c.kind.get() == k>
                                    {k.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </div>
        };
        let size_field = move || {
            c.kind
                .get()
                .size_label()
                .map(|label| number_field("size", label, c.size))
        };
        let program_field = move || {
            (c.kind.get() == WorkloadKind::Program).then(|| {
                choice(
                    "program",
                    "Program (run without a shell)",
                    c.program,
                    &Program::ALL,
                    |p| (p.name(), p.command_line()),
                )
            })
        };
        let pool_field = move || {
            (c.kind.get() == WorkloadKind::PoolHash).then(|| {
                number_field(
                    "pool_threads",
                    "Pool threads (UV_THREADPOOL_SIZE)",
                    c.pool_threads,
                )
            })
        };
        // A scaling run's workers are per instance: asked beside the instances.
        let own_workers = !matches!(model, ModelKind::MainThread | ModelKind::Scaling);
        let workers_field = own_workers.then(|| {
            let label = match model {
                ModelKind::Threads => "Threads",
                ModelKind::ChildProcess => "Child processes",
                _ => "Workers",
            };
            number_field("workers", label, c.workers)
        });
        let model_fields = match model {
            ModelKind::Threads => Some(EitherOf4::A(view! {
                {choice("strategy", "Threads come from", c.strategy, &ThreadStrategy::ALL,
                    |s| (s.name(), s.label()))}
                {choice("sharing", "Workers report through", c.sharing, &Sharing::ALL,
                    |s| (s.name(), s.label()))}
            })),
            ModelKind::ChildProcess => Some(EitherOf4::B(view! {
                {number_field("round_trips", "Ping-pong messages per child", c.round_trips)}
                {choice("serialization", "The IPC channel carries", c.serialization,
                    &Serialization::ALL, |s| (s.name(), s.label()))}
            })),
            ModelKind::Cluster => Some(EitherOf4::C(view! {
                {choice("policy", "Scheduling policy", c.policy, &SchedPolicy::ALL,
                    |p| (p.name(), p.label()))}
                {number_field("requests", "Requests to send", c.requests)}
                {number_field("concurrency", "In flight at once", c.concurrency)}
                {check("keep_alive", " Keep connections alive", c.keep_alive)}
                {check("kill", " Kill a worker during the load", c.kill)}
                {move || {
                    c.kill.get().then(|| view! {
                        {number_field("kill_worker", "Worker to kill", c.kill_worker)}
                        {number_field("kill_after", "…after this many answers", c.kill_after)}
                    })
                }}
            })),
            ModelKind::Scaling => Some(EitherOf4::D(view! {
                {balancer_select(c.balancer, lab)}
                {choice("balance", "The balancer sends each request", c.balance, &Balance::ALL,
                    |b| (b.name(), b.label()))}
                {instances_select(c.instances, lab)}
                {number_field("workers", "Workers per instance", c.workers)}
            })),
            ModelKind::MainThread => None,
        };
        // After the workload and workers: the load, and what breaks.
        let load_fields = (model == ModelKind::Scaling).then(|| {
            view! {
                {number_field("requests", "Requests to send", c.requests)}
                {number_field("concurrency", "In flight at once", c.concurrency)}
                {check("keep_alive", " Keep client connections alive", c.keep_alive)}
                {check("retries", " Let the balancer retry on another instance", c.retries)}
                {choice("planned", "During the load, plan to", c.planned, &Planned::ALL, Planned::words)}
                {move || {
                    let planned = c.planned.get();
                    (planned != Planned::Nothing).then(|| view! {
                        {(planned != Planned::Balancer)
                            .then(|| number_field("fault_instance", "Instance", c.fault_instance))}
                        {(planned == Planned::Worker)
                            .then(|| number_field("kill_worker", "Worker", c.kill_worker))}
                        {number_field("kill_after", "…after this many answers", c.kill_after)}
                    })
                }}
            }
        });
        view! {
            {runtime_select}
            {workload_select}
            {size_field}
            {program_field}
            {pool_field}
            {workers_field}
            {model_fields}
            {load_fields}
        }
    }
}

/// Scaling: the balancer menu. A balancer this server lacks is listed but
/// cannot be picked, and says so.
fn balancer_select(value: RwSignal<BalancerKind>, lab: LabView) -> impl IntoView {
    // `None` until `hello` says; then the version, or why not.
    let found = move |kind: BalancerKind| {
        lab.balancers.with(|all| {
            all.iter()
                .find(|b| b.balancer == kind)
                .map(|b| b.available.then(|| b.version.clone().unwrap_or_default()))
        })
    };
    view! {
        <div class="field">
            <label for="balancer">"Load balancer"</label>
            <select
                id="balancer"
                on:change=move |ev| {
                    let picked = event_target_value(&ev);
                    if let Some(b) = BalancerKind::ALL.iter().find(|b| b.name() == picked) {
                        value.set(*b);
                    }
                }
            >
                {BalancerKind::ALL
                    .iter()
                    .map(|&b| {
                        let text = move || match found(b) {
                            Some(Some(version)) if !version.is_empty() => {
                                format!("{} ({version})", b.label())
                            }
                            Some(None) => format!("{} (not installed on this server)", b.label()),
                            _ => b.label().to_string(),
                        };
                        view! {
                            <option
                                value=b.name()
                                selected=move || value.get() == b
                                disabled=move || matches!(found(b), Some(None))
                            >
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

/// Scaling: how many instances, from two (one would balance nothing) to
/// the server's limit.
fn instances_select(value: RwSignal<u32>, lab: LabView) -> impl IntoView {
    let most = move || {
        lab.limits
            .with(|l| l.as_ref().map_or(0, |l| l.max_instances))
            .max(value.get())
    };
    view! {
        <div class="field">
            <label for="instances">"App instances"</label>
            <select
                id="instances"
                on:change=move |ev| {
                    if let Ok(n) = event_target_value(&ev).parse() {
                        value.set(n);
                    }
                }
            >
                {move || {
                    (2..=most())
                        .map(|n| {
                            view! { <option value=n selected=move || value.get() == n>{n}</option> }
                        })
                        .collect_view()
                }}
            </select>
        </div>
    }
}

/// A labelled menu over `options`, bound to `value`; `words` gives each
/// option's wire name and label.
fn choice<T>(
    id: &'static str,
    label: &'static str,
    value: RwSignal<T>,
    options: &'static [T],
    words: fn(T) -> (&'static str, &'static str),
) -> impl IntoView
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
                    if let Some(v) = options.iter().find(|&&o| words(o).0 == picked) {
                        value.set(*v);
                    }
                }
            >
                {options
                    .iter()
                    .map(|&v| {
                        let (name, text) = words(v);
                        view! { <option value=name selected=move || value.get() == v>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </div>
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

/// A labelled checkbox bound to `value`.
fn check(id: &'static str, label: &'static str, value: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="field check">
            <label>
                <input
                    id=id
                    type="checkbox"
                    prop:checked=move || value.get()
                    on:change=move |ev| value.set(event_target_checked(&ev))
                />
                {label}
            </label>
        </div>
    }
}
