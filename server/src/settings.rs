//! Where the server listens, what it serves and how much it lets learners run.
//!
//! Every setting is a flag with an environment variable beside it, so the same
//! binary works under `cargo leptos serve` (which sets `LEPTOS_SITE_ADDR` and
//! `LEPTOS_SITE_ROOT`), from a shell, and under a service manager.

use crate::engine::host::logical_cores;
use crate::engine::{Budget, Limits, PanicAt};
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Workers alive across all runs, by default.
pub const MAX_LIVE_WORKERS: u32 = 40;

/// Runs that may wait, by default: a class pressing Run at once.
pub const MAX_QUEUE: u32 = 400;

/// WebSockets one address may hold by default: a class of a hundred behind
/// one NAT, with a few tabs each.
pub const SOCKETS_PER_ADDRESS: u32 = 300;

/// Seconds running labs may go on after SIGTERM by default: none, they are
/// stopped at once. Behind a load balancer set it (deploy/ uses 40, above
/// the 30 s run deadline) so a restart lets every lab finish.
pub const DRAIN_SECS: u64 = 0;

/// Serve the site (the default when no subcommand is given).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port and prints it.
    /// Defaults to cargo-leptos's LEPTOS_SITE_ADDR, then 127.0.0.1:3000.
    #[arg(long, env = "SPAWNLAB_ADDR")]
    pub addr: Option<SocketAddr>,

    /// The built site (pkg/, the CSS and public/ files) to serve.
    /// Defaults to cargo-leptos's LEPTOS_SITE_ROOT, then target/site.
    #[arg(long, env = "SPAWNLAB_SITE_DIR")]
    pub site_dir: Option<PathBuf>,

    /// Most workers (threads or processes) one run may use.
    #[arg(long, env = "SPAWNLAB_MAX_WORKERS", default_value_t = Limits::default().max_workers,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_workers: u32,

    /// Runs executing at once; further runs queue. Defaults to the number of CPUs.
    #[arg(long, env = "SPAWNLAB_MAX_RUNS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_runs: Option<u32>,

    /// Worker threads and processes alive at once, across all runs; a run
    /// that would exceed it waits in the queue.
    #[arg(long, env = "SPAWNLAB_MAX_LIVE_WORKERS", default_value_t = MAX_LIVE_WORKERS,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_live_workers: u32,

    /// Runs allowed to wait for a free slot, sized for a class pressing Run
    /// at once; beyond this, requests are refused (0: a run that cannot
    /// start at once is refused).
    #[arg(long, env = "SPAWNLAB_MAX_QUEUE", default_value_t = MAX_QUEUE,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_queue: u32,

    /// Memory the runs may hold together, in MiB, estimated per worker (a
    /// Node.js process ~48, a Worker ~12, a Rust child ~10, a thread ~1); a
    /// run that would exceed it waits in the queue. Defaults to half the
    /// machine's memory, at most 8192.
    #[arg(long, env = "SPAWNLAB_MAX_MEMORY_MIB",
          value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_memory_mib: Option<u32>,

    /// The Node.js to run for the `node` runtime.
    #[arg(long, env = "SPAWNLAB_NODE", default_value = "node")]
    pub node: PathBuf,

    /// Wall-clock seconds a run may take before it is stopped.
    #[arg(long, env = "SPAWNLAB_RUN_DEADLINE_SECS", default_value_t = Limits::default().run_deadline.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub run_deadline_secs: u64,

    /// Extra origins allowed to open the WebSocket (for a client-only build
    /// hosted elsewhere), comma-separated, e.g. http://127.0.0.1:8080.
    /// The site's own origin is always allowed.
    #[arg(
        long = "allow-origin",
        env = "SPAWNLAB_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// WebSockets one address may hold open; more are refused with 429
    /// before the upgrade. Sized above a class behind one school NAT.
    #[arg(long, env = "SPAWNLAB_MAX_SOCKETS_PER_ADDRESS", default_value_t = SOCKETS_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_sockets_per_address: u32,

    /// Proxies (nginx, a load balancer) whose X-Forwarded-For names the
    /// real client, comma-separated IP addresses; connections from any
    /// other address are counted by their own address.
    #[arg(
        long = "trusted-proxy",
        env = "SPAWNLAB_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// On SIGTERM or SIGINT, seconds that running labs may go on to finish
    /// while /readyz answers 503 "draining" and new lab connections are
    /// refused with 503 (a balancer sends them to another instance); idle
    /// learners are told to reconnect at once, the rest when their labs end,
    /// and labs still running after this long are stopped. 0 stops them at
    /// once. A second signal ends the wait.
    #[arg(long, env = "SPAWNLAB_DRAIN_SECS", default_value_t = DRAIN_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_secs: u64,

    /// Seconds between the server's WebSocket pings, which keep a proxy's
    /// idle timeout (nginx's proxy_read_timeout, HAProxy's timeout tunnel)
    /// from closing a quiet learner's connection; set it well below that
    /// timeout.
    #[arg(long, env = "SPAWNLAB_WS_PING_SECS", default_value_t = crate::session::PING_EVERY.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_ping_secs: u64,
}

/// Everything [`crate::startup::Application::build`] needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub site_dir: PathBuf,
    pub limits: Limits,
    /// Runs at once, workers, memory and the queue.
    pub budget: Budget,
    /// The Node.js to run.
    pub node: PathBuf,
    pub allow_origins: Vec<String>,
    /// WebSockets one client address may hold open.
    pub max_sockets_per_address: u32,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// After a shutdown signal, how long running labs may go on (zero:
    /// they are stopped at once).
    pub drain: Duration,
    /// How often every WebSocket is pinged.
    pub ws_ping: Duration,
    /// The binary worker processes run; `None` for this executable.
    pub worker_binary: Option<PathBuf>,
    /// Test builds only: where every run panics on purpose.
    pub panic_at: Option<PanicAt>,
}

impl ServeArgs {
    /// Fill in what the flags left out, from cargo-leptos's variables or the
    /// defaults.
    pub fn resolve(self) -> Settings {
        let leptos_addr = std::env::var("LEPTOS_SITE_ADDR")
            .ok()
            .and_then(|a| a.parse().ok());
        let leptos_root = std::env::var_os("LEPTOS_SITE_ROOT").map(PathBuf::from);
        Settings {
            addr: self
                .addr
                .or(leptos_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
            site_dir: self
                .site_dir
                .or(leptos_root)
                .unwrap_or_else(|| PathBuf::from("target/site")),
            limits: Limits {
                max_workers: self.max_workers,
                run_deadline: Duration::from_secs(self.run_deadline_secs),
                ..Limits::default()
            },
            budget: Budget {
                max_runs: self.max_runs.unwrap_or_else(logical_cores),
                max_live_workers: self.max_live_workers,
                max_memory_mib: self.max_memory_mib.unwrap_or_else(default_memory_mib),
                max_queue: self.max_queue,
            },
            node: self.node,
            allow_origins: self.allow_origins,
            max_sockets_per_address: self.max_sockets_per_address,
            trusted_proxies: self.trusted_proxies,
            drain: Duration::from_secs(self.drain_secs),
            ws_ping: Duration::from_secs(self.ws_ping_secs),
            worker_binary: None,
            panic_at: None,
        }
    }
}

impl Settings {
    /// Settings for tests: a free loopback port, the built site, workers
    /// started from the real `spawnlab` binary, the shipped defaults elsewhere.
    pub fn for_tests(site_dir: PathBuf, worker_binary: PathBuf) -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            site_dir,
            limits: Limits::default(),
            budget: Budget {
                max_runs: logical_cores(),
                max_live_workers: MAX_LIVE_WORKERS,
                max_memory_mib: default_memory_mib(),
                max_queue: MAX_QUEUE,
            },
            node: "node".into(),
            allow_origins: Vec::new(),
            max_sockets_per_address: SOCKETS_PER_ADDRESS,
            trusted_proxies: Vec::new(),
            drain: Duration::from_secs(DRAIN_SECS),
            ws_ping: crate::session::PING_EVERY,
            worker_binary: Some(worker_binary),
            panic_at: None,
        }
    }
}

/// Half the machine's memory, at most 8 GiB, in MiB.
fn default_memory_mib() -> u32 {
    use procfs::Current;
    let total_mib = procfs::Meminfo::current().map_or(4096, |m| m.mem_total >> 20);
    (total_mib / 2).clamp(512, 8192) as u32
}
