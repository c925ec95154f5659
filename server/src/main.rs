//! `spawnlab`: serve the site (the default, as `cargo leptos serve` expects),
//! run a lab from the terminal (`spawnlab run`), or — started by the server
//! itself — act as one of its worker processes.

use clap::{Parser, Subcommand};
use spawnlab::cli::{self, BenchArgs, CompareArgs, RunArgs};
use spawnlab::engine::cluster::primary::primary_main;
use spawnlab::engine::cluster::worker::worker_main;
use spawnlab::engine::cluster::{PRIMARY_COMMAND, WORKER_COMMAND};
use spawnlab::engine::node::guardian::{guardian_main, GUARDIAN_COMMAND};
use spawnlab::engine::process::{child_main, CHILD_COMMAND};
use spawnlab::settings::ServeArgs;
use spawnlab::startup::Application;
use std::process::ExitCode;

/// A teaching site about how Node.js spreads work across processes and
/// threads, with labs that really run.
#[derive(Parser)]
#[command(
    name = "spawnlab",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run one lab in the terminal and print what it measured.
    Run(Box<RunArgs>),
    /// Measure every model once, as the compare page does, and print the table.
    Compare(CompareArgs),
    /// Node.js and the Rust engine measured side by side, each figure
    /// repeated, with ratios: start cost, round trips, bulk data, memory,
    /// speedup, cluster throughput, a blocked loop.
    Bench(BenchArgs),
    /// A child-process worker, started by the server over a pipe.
    #[command(name = CHILD_COMMAND, hide = true)]
    Child,
    /// A cluster's primary, started by the server.
    #[command(name = PRIMARY_COMMAND, hide = true)]
    ClusterPrimary,
    /// A cluster's HTTP worker, started by its primary.
    #[command(name = WORKER_COMMAND, hide = true)]
    ClusterWorker,
    /// The guardian of one Node.js run: kills its process group when the
    /// server stops the run or dies.
    #[command(name = GUARDIAN_COMMAND, hide = true)]
    Guardian {
        /// The server's pid: if it is already gone, do nothing.
        #[arg(long)]
        parent: u32,
        /// The program to guard, and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // Workers stay single-threaded and small: no async runtime, no logging.
        Some(Command::Child) => child_main(),
        Some(Command::ClusterPrimary) => primary_main(),
        Some(Command::ClusterWorker) => worker_main(),
        Some(Command::Guardian { parent, argv }) => guardian_main(parent, argv),
        Some(Command::Run(args)) => {
            runtime().block_on(cli::run(*args, cli.serve.resolve().site_dir))
        }
        Some(Command::Compare(args)) => {
            runtime().block_on(cli::compare(args, cli.serve.resolve().site_dir))
        }
        Some(Command::Bench(args)) => {
            runtime().block_on(cli::bench(args, cli.serve.resolve().site_dir))
        }
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,spawnlab=info".into()),
                )
                .init();
            match runtime().block_on(serve(cli.serve)) {
                Ok(()) => ExitCode::SUCCESS,
                // A setting that cannot work: said in one line, before
                // anything listens, with the usage-error status clap uses.
                Err(Failure::Settings(why)) => {
                    eprintln!("spawnlab: {why}");
                    ExitCode::from(2)
                }
                Err(Failure::Other(e)) => {
                    eprintln!("spawnlab: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Why serving ended in failure.
enum Failure {
    /// The operator's settings cannot work; the message names the flag.
    Settings(String),
    /// Anything else.
    Other(anyhow::Error),
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let settings = args.resolve();
    let site_dir = settings.site_dir.clone();
    check_site(&site_dir).map_err(Failure::Settings)?;
    let addr = settings.addr;
    let app = Application::build(settings).await.map_err(|e| {
        use std::io::ErrorKind::{AddrInUse, AddrNotAvailable, PermissionDenied};
        match e.kind() {
            AddrInUse | AddrNotAvailable | PermissionDenied => Failure::Settings(format!(
                "cannot listen on {addr} ({e}): set --addr (or SPAWNLAB_ADDR) to an address \
                 this machine has and nothing else uses; port 0 picks a free one"
            )),
            _ => Failure::Other(e.into()),
        }
    })?;
    // Tests and scripts read this line to learn the port when asked for port 0.
    println!(
        "spawnlab listening on http://{} (site: {})",
        app.local_addr(),
        site_dir.display()
    );
    let (first, second) = shutdown_signals();
    app.run_until_stopped_or_hurried(first, second)
        .await
        .map_err(|e| Failure::Other(e.into()))?;
    Ok(())
}

/// The site folder must hold the built bundle, or every page would load
/// without its script and styles and no lab would work.
fn check_site(site_dir: &std::path::Path) -> Result<(), String> {
    let options = leptos::config::get_configuration(None)
        .map_err(|e| format!("cannot read the site's configuration: {e}"))?
        .leptos_options;
    let pkg = site_dir.join(options.site_pkg_dir.as_ref());
    let missing: Vec<String> = ["js", "wasm", "css"]
        .iter()
        .map(|ext| format!("{}.{ext}", options.output_name))
        .filter(|file| !pkg.join(file).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the site folder {} has no built bundle (missing in {}: {}): build it with \
         `cargo leptos build --release` (or `make site`), or point --site-dir (or \
         SPAWNLAB_SITE_DIR) at the folder it built",
        site_dir.display(),
        pkg.display(),
        missing.join(", ")
    ))
}

/// Two futures: the first resolves on the first SIGINT (Ctrl-C) or SIGTERM
/// (service managers), which starts the shutdown (and its drain, if one is
/// set); the second on the next one, which ends the drain at once.
fn shutdown_signals() -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    let (count, counted) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            count.send_modify(|n| *n += 1);
        }
    });
    let nth = move |n: u32| {
        let mut counted = counted.clone();
        async move {
            let _ = counted.wait_for(|seen| *seen >= n).await;
        }
    };
    (nth(1), nth(2))
}
