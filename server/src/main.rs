//! `spawnlab`: serve the site (the default, as `cargo leptos serve` expects).

use clap::Parser;
use spawnlab::settings::ServeArgs;
use spawnlab::startup::Application;

/// A teaching site about how Node.js spreads work across processes and
/// threads, with labs that really run.
#[derive(Parser)]
#[command(name = "spawnlab", version, about)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,spawnlab=info".into()),
        )
        .init();
    let settings = Cli::parse().serve.resolve();
    let site_dir = settings.site_dir.clone();
    let app = Application::build(settings).await?;
    // Tests and scripts read this line to learn the port when asked for port 0.
    println!(
        "spawnlab listening on http://{} (site: {})",
        app.local_addr(),
        site_dir.display()
    );
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (service managers).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
