//! `spawnlab run`'s flags, and the request they describe. The values of
//! `--model`, `--workload`, `--program`, `--strategy`, `--sharing` and
//! `--policy` are the protocol catalogue's own (clap's `ValueEnum`, in
//! kebab-case), so the command line and the wire can never disagree.

use crate::engine::Limits;
use clap::Args;
use protocol::{
    Balance, BalancerKind, Fault, KillWorker, ModelKind, ModelSpec, Program, RunSpec, Runtime,
    SchedPolicy, Serialization, Sharing, ThreadStrategy, TimedFault, Workload, WorkloadKind,
    DEFAULT_INSTANCES, DEFAULT_KILL_AFTER, DEFAULT_REQUESTS,
};

/// Which runtime runs the lab: one, or each in turn with their ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// Real Node.js running the lab's script.
    Node,
    /// The Rust engine.
    Rust,
    /// Node.js, then the Rust engine, side by side with the ratio.
    Both,
}

impl RuntimeChoice {
    /// The runtimes to run, in order.
    pub fn runtimes(self) -> &'static [Runtime] {
        match self {
            RuntimeChoice::Node => &[Runtime::Node],
            RuntimeChoice::Rust => &[Runtime::Rust],
            RuntimeChoice::Both => &Runtime::ALL,
        }
    }
}

/// Run one lab from the command line.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// How the work is spread.
    #[arg(long, value_enum)]
    pub model: ModelKind,

    /// What runs it: real Node.js (as on the site), the Rust engine, or
    /// both in turn, side by side with the ratio.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Node)]
    pub runtime: RuntimeChoice,

    /// What to compute (program: child-process only; http-*: cluster only).
    /// Defaults to the model's first: primes, or http-hello for the cluster.
    #[arg(long, value_enum)]
    pub workload: Option<WorkloadKind>,

    /// Threads, processes or cluster workers sharing the work (default 2;
    /// the main thread always has 1).
    #[arg(long)]
    pub workers: Option<u32>,

    /// primes: count the primes below this.
    #[arg(long, default_value_t = WorkloadKind::Primes.default_size())]
    pub below: u64,

    /// sha256-chain: rounds of hashing, shared out.
    #[arg(long, default_value_t = WorkloadKind::Sha256Chain.default_size())]
    pub rounds: u64,

    /// sleep, blocking-wait, http-cpu, http-sleep: milliseconds (default:
    /// the lab's, 300 for a sleep, 1 for http-cpu, 5 for http-sleep).
    #[arg(long)]
    pub ms: Option<u64>,

    /// pool-hash (main thread, Node.js only): crypto.pbkdf2 calls started at once.
    #[arg(long, default_value_t = WorkloadKind::PoolHash.default_size() as u32)]
    pub calls: u32,

    /// pool-hash: threads in libuv's pool (UV_THREADPOOL_SIZE).
    #[arg(long, default_value_t = protocol::catalogue::DEFAULT_POOL_THREADS)]
    pub pool_threads: u32,

    /// program: which allow-listed program each child runs.
    #[arg(long, value_enum, default_value_t = Program::Uname)]
    pub program: Program,

    /// child-process: ping-pong messages each child answers before working.
    #[arg(long, default_value_t = 0)]
    pub round_trips: u32,

    /// child-process: how the IPC channel encodes messages (advanced: Node only).
    #[arg(long, value_enum, default_value_t = Serialization::Json)]
    pub serialization: Serialization,

    /// threads: fresh threads per run, or a pool reused across runs.
    #[arg(long, value_enum, default_value_t = ThreadStrategy::Spawn)]
    pub strategy: ThreadStrategy,

    /// threads: report through copied messages, or shared memory.
    #[arg(long, value_enum, default_value_t = Sharing::Messages)]
    pub sharing: Sharing,

    /// cluster: how connections reach the workers.
    #[arg(long, value_enum, default_value_t = SchedPolicy::RoundRobin)]
    pub policy: SchedPolicy,

    /// scaling: app instances behind the balancer.
    #[arg(long, default_value_t = DEFAULT_INSTANCES)]
    pub instances: u32,

    /// scaling: the load balancer.
    #[arg(long, value_enum, default_value_t = BalancerKind::Nginx)]
    pub balancer: BalancerKind,

    /// scaling: how the balancer picks an instance.
    #[arg(long, value_enum, default_value_t = Balance::RoundRobin)]
    pub balance: Balance,

    /// scaling: do not let the balancer retry a failed request on another
    /// instance.
    #[arg(long)]
    pub no_retries: bool,

    /// scaling: a fault once so many answers are in, repeatable:
    /// `kill-worker:I:W@N`, `kill-instance:I@N`, `restart-instance:I@N`,
    /// `kill-balancer@N` (instance I, worker W, after N answers).
    #[arg(long = "fault", value_parser = parse_fault)]
    pub faults: Vec<TimedFault>,

    /// cluster, scaling: requests the load generator sends.
    #[arg(long, default_value_t = DEFAULT_REQUESTS)]
    pub requests: u32,

    /// cluster, scaling: requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,

    /// cluster, scaling: open a new connection for every request.
    #[arg(long)]
    pub no_keep_alive: bool,

    /// cluster: kill this worker part-way through the load.
    #[arg(long)]
    pub kill_worker: Option<u32>,

    /// cluster: ... once this many requests have completed.
    #[arg(long, default_value_t = DEFAULT_KILL_AFTER)]
    pub kill_after: u32,

    /// Wall-clock seconds before the run is stopped.
    #[arg(long, default_value_t = Limits::default().run_deadline.as_secs())]
    pub deadline_secs: u64,

    /// Print every event as a JSON line (the WebSocket protocol) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// The request these flags describe. Whether it fits the server's
    /// limits (and whether the workload suits the model) the engine judges,
    /// as it does for the page.
    pub fn spec(&self, runtime: Runtime) -> RunSpec {
        let model = match self.model {
            ModelKind::MainThread => ModelSpec::MainThread,
            ModelKind::Threads => ModelSpec::Threads {
                strategy: self.strategy,
                sharing: self.sharing,
            },
            ModelKind::ChildProcess => ModelSpec::ChildProcess {
                round_trips: self.round_trips,
                serialization: self.serialization,
            },
            ModelKind::Cluster => ModelSpec::Cluster {
                policy: self.policy,
                requests: self.requests,
                concurrency: self.concurrency,
                keep_alive: !self.no_keep_alive,
                kill: self.kill_worker.map(|worker| KillWorker {
                    worker,
                    after_requests: self.kill_after,
                }),
            },
            ModelKind::Scaling => ModelSpec::Scaling {
                instances: self.instances,
                balancer: self.balancer,
                balance: self.balance,
                requests: self.requests,
                concurrency: self.concurrency,
                keep_alive: !self.no_keep_alive,
                retries: !self.no_retries,
                faults: self.faults.clone(),
            },
        };
        let kind = self.workload.unwrap_or(self.model.workloads()[0]);
        let size = match kind {
            WorkloadKind::Primes => self.below,
            WorkloadKind::Sha256Chain => self.rounds,
            WorkloadKind::PoolHash => self.calls.into(),
            _ => self.ms.unwrap_or(kind.default_size()),
        };
        let mut workload = kind.with_size(size, self.program);
        if let Workload::PoolHash { pool_threads, .. } = &mut workload {
            *pool_threads = self.pool_threads;
        }
        RunSpec {
            runtime,
            model,
            workload,
            workers: self.workers.unwrap_or(self.model.default_workers()),
        }
    }
}

/// `kill-worker:1:0@500` and the like: what `--fault` takes.
fn parse_fault(text: &str) -> Result<TimedFault, String> {
    let usage =
        "expected kill-worker:I:W@N, kill-instance:I@N, restart-instance:I@N or kill-balancer@N";
    let (what, after) = text.split_once('@').ok_or(usage)?;
    let after_requests = after
        .parse()
        .map_err(|_| format!("{after:?} is not a number of answers; {usage}"))?;
    let parts: Vec<&str> = what.split(':').collect();
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{s:?} is not an index; {usage}"))
    };
    let fault = match parts[..] {
        ["kill-worker", i, w] => Fault::KillWorker {
            instance: number(i)?,
            worker: number(w)?,
        },
        ["kill-instance", i] => Fault::KillInstance {
            instance: number(i)?,
        },
        ["restart-instance", i] => Fault::RestartInstance {
            instance: number(i)?,
        },
        ["kill-balancer"] => Fault::KillBalancer,
        _ => return Err(usage.into()),
    };
    Ok(TimedFault {
        after_requests,
        fault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn scaling_flags_and_faults_become_the_spec() {
        let s = spec(&[
            "--model",
            "scaling",
            "--instances",
            "3",
            "--balancer",
            "haproxy",
            "--balance",
            "least-conn",
            "--no-retries",
            "--fault",
            "kill-instance:1@200",
            "--fault",
            "kill-worker:0:1@10",
        ])
        .unwrap();
        assert_eq!(s.workload, Workload::HttpSleep { ms: 5 });
        let ModelSpec::Scaling {
            instances,
            balancer,
            balance,
            retries,
            faults,
            ..
        } = s.model
        else {
            panic!("{s:?}")
        };
        assert_eq!(
            (instances, balancer, balance),
            (3, BalancerKind::Haproxy, Balance::LeastConn)
        );
        assert!(!retries);
        assert_eq!(
            faults,
            vec![
                TimedFault {
                    after_requests: 200,
                    fault: Fault::KillInstance { instance: 1 }
                },
                TimedFault {
                    after_requests: 10,
                    fault: Fault::KillWorker {
                        instance: 0,
                        worker: 1
                    }
                },
            ]
        );
        let err = spec(&["--model", "scaling", "--fault", "kill-everything@3"]).unwrap_err();
        assert!(err.contains("kill-instance:I@N"), "{err}");
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn spec(args: &[&str]) -> Result<RunSpec, String> {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map(|cli| cli.run.spec(Runtime::Rust))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_become_the_protocols_spec() {
        let s = spec(&[
            "--model",
            "cluster",
            "--workers",
            "2",
            "--policy",
            "reuse-port",
        ])
        .unwrap();
        assert_eq!(s.workload, Workload::HttpHello);
        let ModelSpec::Cluster {
            policy, keep_alive, ..
        } = s.model
        else {
            panic!("{s:?}")
        };
        assert_eq!(policy, SchedPolicy::ReusePort);
        assert!(keep_alive);

        let s = spec(&[
            "--model",
            "child-process",
            "--workload",
            "program",
            "--program",
            "node-version",
        ])
        .unwrap();
        assert_eq!(
            s.workload,
            Workload::Program {
                program: Program::NodeVersion
            }
        );
        assert_eq!(spec(&["--model", "main-thread"]).unwrap().workers, 1);
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = spec(&["--model", "fork"]).unwrap_err();
        assert!(
            err.contains("main-thread") && err.contains("child-process"),
            "{err}"
        );
        let err = spec(&["--model", "threads", "--workload", "bitcoin"]).unwrap_err();
        assert!(
            err.contains("primes") && err.contains("sha256-chain"),
            "{err}"
        );
    }
}
