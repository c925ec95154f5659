//! A server to test against: the application in this process on a free
//! loopback port ([`spawn_app`]), or the real `spawnlab` binary as an
//! operator starts it ([`ServerProcess`]). Both stop on drop.

use crate::procs::signal;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use spawnlab::settings::Settings;
use spawnlab::startup::Application;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Where `cargo leptos build` puts the site.
pub fn site_dir() -> PathBuf {
    workspace_root().join("target/site")
}

/// A server running inside the test process, on a free loopback port.
pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for an in-process test server: port 0, the built site, workers
/// from the real binary. Adjust and pass to [`spawn_app_with`].
pub fn test_settings() -> Settings {
    Settings::for_tests(site_dir(), server_binary())
}

/// Start the application in this process, as `main` would, on port 0.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

/// [`spawn_app`] with adjusted settings.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("the server binds a loopback port");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// `ws://…/ws` on this server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, protocol::WS_PATH)
    }

    /// Shut down as SIGTERM would, and wait until the server has returned.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .expect("shut down once")
            .await
            .expect("the server task does not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The real `spawnlab` binary, started as a self-hosting operator would.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

/// The binary cargo built beside this test.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPAWNLAB_BIN") {
        return path.into();
    }
    // target/debug/deps/<test> -> target/debug/spawnlab
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .join("spawnlab")
}

impl ServerProcess {
    /// Start the binary on a free port with the built site; `extra` adds
    /// flags. Waits for the line announcing the address.
    pub fn start(extra: &[&str]) -> Result<Self> {
        let bin = server_binary();
        if !bin.exists() {
            bail!(
                "{} does not exist: run `make test`, or `cargo build --workspace` first",
                bin.display()
            );
        }
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0", "--site-dir"])
            .arg(site_dir())
            .args(extra)
            .env_remove("LEPTOS_SITE_ADDR")
            .env_remove("LEPTOS_SITE_ROOT")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .context("the server printed nothing")?
            .context("reading the server's output")?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in {line:?}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServerProcess { child, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, protocol::WS_PATH)
    }

    /// SIGKILL the server: no cleanup code of its own runs.
    pub fn kill_hard(&mut self) -> Result<std::process::ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// Send SIGTERM and wait up to `within` for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        signal(self.child.id() as i32, Signal::SIGTERM);
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("the server did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
