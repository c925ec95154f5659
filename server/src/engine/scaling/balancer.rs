//! The real load balancer in front of a scaling run: nginx, or HAProxy.
//!
//! Each run writes its balancer's configuration into a temporary folder of
//! its own, starts the balancer in the foreground on a free loopback port
//! under a guardian (so its workers die with the server, like a Node run's),
//! and reads what the balancer logged about every request: which instances
//! it tried, and which attempts failed. Nothing here is simulated: when the
//! balancer is missing, the run is refused with a sentence saying how to
//! install it.

use super::super::error::RunError;
use super::super::node::guardian::{self, guarded_command};
use protocol::{Balance, BalancerInfo, BalancerKind, BalancerLog};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where a balancer's executable may be when it is not on `PATH` (an
/// operator's shell has /usr/sbin; a service's environment may not).
const SBIN: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// How long a failed instance is left alone before the balancer tries it
/// again (nginx `fail_timeout`), and how often HAProxy checks each one.
pub const FAIL_TIMEOUT_MS: u64 = 2_000;
pub const CHECK_INTERVAL_MS: u64 = 500;

/// A balancer this server found.
#[derive(Debug, Clone)]
pub struct Found {
    pub info: BalancerInfo,
    pub binary: Option<PathBuf>,
}

/// Look for `kind`'s executable and ask it its version.
pub fn detect(kind: BalancerKind) -> Found {
    let (name, package) = kind.binary();
    let install = format!(
        "{} was not found on this server: install it (Debian: `apt-get install {package}`) and restart spawnlab.",
        kind.label()
    );
    let Some(binary) = find(name) else {
        return Found {
            info: BalancerInfo {
                balancer: kind,
                version: None,
                available: false,
                note: install,
            },
            binary: None,
        };
    };
    match version(kind, &binary) {
        Some(version) => Found {
            info: BalancerInfo {
                balancer: kind,
                note: format!("{version} at {}", binary.display()),
                version: Some(version),
                available: true,
            },
            binary: Some(binary),
        },
        None => Found {
            info: BalancerInfo {
                balancer: kind,
                version: None,
                available: false,
                note: format!("{} did not say its version; {install}", binary.display()),
            },
            binary: None,
        },
    }
}

/// The first child of `pid`, from `/proc`.
fn first_child(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `nginx/1.22.1`, `HAProxy 2.6.12-1+deb12u4`.
fn version(kind: BalancerKind, binary: &Path) -> Option<String> {
    let out = Command::new(binary)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let first = text.lines().next()?.trim();
    match kind {
        BalancerKind::Nginx => first.strip_prefix("nginx version: ").map(str::to_string),
        BalancerKind::Haproxy => {
            let v = first.strip_prefix("HAProxy version ")?;
            Some(format!("HAProxy {}", v.split_whitespace().next()?))
        }
    }
}

/// What the configuration needs.
#[derive(Debug, Clone)]
pub struct Setup {
    pub kind: BalancerKind,
    pub balance: Balance,
    pub retries: bool,
    /// The port the balancer listens on.
    pub port: u16,
    /// Each instance's loopback port, by index.
    pub instances: Vec<u16>,
}

impl Setup {
    /// How the balancer names instance `i` in the `x-upstream` header it
    /// adds to every answer (the load generator reads it): nginx writes the
    /// address it tried (`127.0.0.1:5001`, a list when it retried), HAProxy
    /// the server's name.
    pub fn upstream_names(&self) -> Vec<String> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, port)| match self.kind {
                BalancerKind::Nginx => format!("127.0.0.1:{port}"),
                BalancerKind::Haproxy => format!("instance{i}"),
            })
            .collect()
    }

    /// The configuration file's text, with every path inside `dir`.
    pub fn config(&self, dir: &Path) -> String {
        match self.kind {
            BalancerKind::Nginx => self.nginx(dir),
            BalancerKind::Haproxy => self.haproxy(),
        }
    }

    fn nginx(&self, dir: &Path) -> String {
        let d = dir.display();
        let method = match self.balance {
            Balance::RoundRobin => "",
            Balance::LeastConn => "    least_conn;\n",
            // ip_hash would key on the first three octets, which are the
            // same for every loopback client: hash the whole address.
            Balance::Hash => "    hash $remote_addr consistent;\n",
        };
        let mut servers = String::new();
        for port in &self.instances {
            let _ = writeln!(
                servers,
                "    server 127.0.0.1:{port} max_fails=1 fail_timeout={}s;",
                FAIL_TIMEOUT_MS / 1000
            );
        }
        let next = if self.retries { "error timeout" } else { "off" };
        format!(
            "# Written by spawnlab for one scaling run.\n\
daemon off;\n\
master_process on;\n\
worker_processes 1;\n\
pid {d}/nginx.pid;\n\
error_log {d}/error.log warn;\n\
events {{ worker_connections 1024; }}\n\
http {{\n\
  access_log off;\n\
  client_body_temp_path {d}/body;\n\
  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n\
  uwsgi_temp_path {d}/uwsgi;\n\
  scgi_temp_path {d}/scgi;\n\
  log_format lab '$upstream_addr|$upstream_status|$status';\n\
  upstream app {{\n\
{method}{servers}    keepalive 32;\n\
  }}\n\
  server {{\n\
    listen 127.0.0.1:{port};\n\
    access_log {d}/access.log lab;\n\
    location / {{\n\
      proxy_pass http://app;\n\
      proxy_http_version 1.1;\n\
      proxy_set_header Connection \"\";\n\
      proxy_next_upstream {next};\n\
      proxy_connect_timeout 1s;\n\
      proxy_read_timeout 5s;\n\
      add_header x-upstream $upstream_addr always;\n\
    }}\n\
  }}\n\
}}\n",
            port = self.port
        )
    }

    /// HAProxy with one thread, like nginx with one worker: enough for a
    /// lab on loopback, and with several threads HAProxy 2.6 lost a few of
    /// the lines they logged to its standard output at once (seen as 996
    /// to 999 logged of 1,000 answered, in about half the test runs).
    fn haproxy(&self) -> String {
        let method = match self.balance {
            Balance::RoundRobin => "balance roundrobin",
            Balance::LeastConn => "balance leastconn",
            Balance::Hash => "balance source\n  hash-type consistent",
        };
        let retries = if self.retries {
            "retries 2\n  option redispatch 1"
        } else {
            "retries 0"
        };
        let mut servers = String::new();
        for (i, port) in self.instances.iter().enumerate() {
            let _ = writeln!(servers, "  server instance{i} 127.0.0.1:{port} check");
        }
        format!(
            "# Written by spawnlab for one scaling run.\n\
global\n\
  log stdout format raw local0\n\
  maxconn 4096\n\
  nbthread 1\n\
defaults\n\
  mode http\n\
  log global\n\
  log-format \"%s|%rc|%ST\"\n\
  option dontlognull\n\
  timeout connect 1s\n\
  timeout client 10s\n\
  timeout server 5s\n\
  {retries}\n\
frontend lab\n\
  bind 127.0.0.1:{port}\n\
  default_backend app\n\
backend app\n\
  {method}\n\
  default-server inter {CHECK_INTERVAL_MS}ms fall 2 rise 1\n\
  http-response set-header x-upstream %[srv_name]\n\
{servers}",
            port = self.port
        )
    }
}

/// A running balancer: the guardian over it, and where its log goes.
pub struct Balancer {
    pub pid: u32,
    guardian: Option<std::process::Child>,
    log: LogReader,
}

impl Balancer {
    /// Write the configuration into `dir` and start `found`'s balancer
    /// under a guardian that dies with this server.
    pub async fn start(
        found: &Found,
        setup: &Setup,
        dir: &Path,
        guardian: &Path,
    ) -> Result<Balancer, RunError> {
        let binary = found
            .binary
            .clone()
            .ok_or_else(|| RunError::Balancer(found.info.note.clone()))?;
        let config = dir.join(match setup.kind {
            BalancerKind::Nginx => "nginx.conf",
            BalancerKind::Haproxy => "haproxy.cfg",
        });
        std::fs::write(&config, setup.config(dir))
            .map_err(|e| RunError::io("writing the balancer's configuration", e))?;
        let args: Vec<std::ffi::OsString> = match setup.kind {
            BalancerKind::Nginx => vec![
                "-p".into(),
                dir.into(),
                "-c".into(),
                config.into(),
                "-e".into(),
                dir.join("error.log").into(),
            ],
            BalancerKind::Haproxy => vec!["-db".into(), "-f".into(), config.into()],
        };
        let mut command = guarded_command(guardian, &binary, &args, "scaling");
        // HAProxy logs every request on its standard output; nginx writes
        // its access log into `dir`.
        let log_path = dir.join(match setup.kind {
            BalancerKind::Nginx => "access.log",
            BalancerKind::Haproxy => "haproxy.log",
        });
        command.stdin(Stdio::null());
        match setup.kind {
            BalancerKind::Nginx => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
            BalancerKind::Haproxy => {
                let out = std::fs::File::create(&log_path)
                    .map_err(|e| RunError::io("creating the balancer's log", e))?;
                let err = std::fs::File::create(dir.join("error.log"))
                    .map_err(|e| RunError::io("creating the balancer's error log", e))?;
                command.stdout(out).stderr(err);
            }
        }
        let child = tokio::task::spawn_blocking(move || super::super::spawn::spawn(command, None))
            .await
            .map_err(|e| RunError::joined("starting the balancer", e))?
            .map_err(|e| RunError::start(found.info.balancer.label(), e))?;
        // The balancer itself is the guardian's child, and leads the group
        // the guardian ends.
        let guardian_pid = child.id();
        let mut balancer = Balancer {
            pid: guardian_pid,
            guardian: Some(child),
            log: LogReader::new(log_path, setup),
        };
        balancer.wait_listening(setup.port, dir).await?;
        balancer.pid = first_child(guardian_pid).unwrap_or(guardian_pid);
        Ok(balancer)
    }

    /// What the balancer has logged once it has logged at least `requests`
    /// requests (it writes a line as each one ends, a moment after the
    /// client has its answer, and it runs niced like every run's process,
    /// so on a busy machine that moment can stretch), or after two
    /// seconds, whichever comes first.
    pub async fn final_log(&mut self, requests: u64) -> BalancerLog {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let log = self.read_log();
            if log.requests >= requests || tokio::time::Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Wait until the balancer accepts connections on `port`, or fail with
    /// what its error log says.
    async fn wait_listening(&mut self, port: u16, dir: &Path) -> Result<(), RunError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            let exited = self
                .guardian
                .as_mut()
                .map(|g| matches!(g.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited || tokio::time::Instant::now() > deadline {
                let mut said = String::new();
                if let Ok(mut f) = std::fs::File::open(dir.join("error.log")) {
                    let _ = f.read_to_string(&mut said);
                }
                let said = said
                    .lines()
                    .last()
                    .unwrap_or("nothing in its error log")
                    .trim();
                return Err(RunError::Balancer(format!(
                    "the balancer did not start on port {port}: {said}"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// What the balancer has logged so far.
    pub fn read_log(&mut self) -> BalancerLog {
        self.log.read()
    }

    /// Kill the balancer and everything it started (the guardian ends the
    /// group) and reap it.
    pub async fn kill(&mut self) {
        if let Some(guardian) = self.guardian.take() {
            let reaped = guardian::stop(guardian);
            let _ = tokio::task::spawn_blocking(move || reaped.join()).await;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(guardian) = self.guardian.take() {
            guardian::stop(guardian);
        }
    }
}

/// Reads the balancer's log as it grows and folds every complete line.
struct LogReader {
    path: PathBuf,
    offset: u64,
    partial: String,
    kind: BalancerKind,
    names: Vec<String>,
    folded: BalancerLog,
}

impl LogReader {
    fn new(path: PathBuf, setup: &Setup) -> Self {
        LogReader {
            path,
            offset: 0,
            partial: String::new(),
            kind: setup.kind,
            names: setup.upstream_names(),
            folded: BalancerLog {
                attempts: vec![0; setup.instances.len()],
                ..BalancerLog::default()
            },
        }
    }

    fn read(&mut self) -> BalancerLog {
        use std::io::{Seek, SeekFrom};
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            if file.seek(SeekFrom::Start(self.offset)).is_ok() {
                let mut bytes = Vec::new();
                if let Ok(n) = file.read_to_end(&mut bytes) {
                    self.offset += n as u64;
                    self.partial.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        if let Some(end) = self.partial.rfind('\n') {
            let complete: String = self.partial.drain(..=end).collect();
            for line in complete.lines() {
                fold_line(self.kind, &self.names, line, &mut self.folded);
            }
        }
        self.folded.clone()
    }
}

/// Fold one log line into `log`. nginx's lines are
/// `$upstream_addr|$upstream_status|$status`, where a retried request lists
/// every address it tried (`a, b`) and each one's status; HAProxy's are
/// `server|retries|status`, `+` before the retries when it redispatched to
/// another server. Other lines (HAProxy's notices) are skipped.
pub fn fold_line(kind: BalancerKind, names: &[String], line: &str, log: &mut BalancerLog) {
    let fields: Vec<&str> = line.trim().split('|').collect();
    let [upstream, middle, status] = fields[..] else {
        return;
    };
    let Ok(status) = status.parse::<u16>() else {
        return;
    };
    log.requests += 1;
    if status >= 500 {
        log.errors += 1;
    }
    let index = |name: &str| names.iter().position(|n| n == name.trim());
    match kind {
        BalancerKind::Nginx => {
            // `a, b : c` — a comma between attempts, a colon between
            // internal redirects; the statuses line up the same way.
            let split = |s: &str| -> Vec<String> {
                s.split([',', ' '])
                    .filter(|t| !t.is_empty() && *t != ":")
                    .map(str::to_string)
                    .collect()
            };
            let addrs = split(upstream);
            let statuses = split(middle);
            if addrs.len() > 1 {
                log.retried += 1;
            }
            for (i, addr) in addrs.iter().enumerate() {
                let Some(instance) = index(addr) else {
                    continue;
                };
                log.attempts[instance] += 1;
                let ok = statuses
                    .get(i)
                    .and_then(|s| s.parse::<u16>().ok())
                    .is_some_and(|s| s < 500);
                if !ok {
                    log.failed_attempts += 1;
                }
            }
        }
        BalancerKind::Haproxy => {
            let retries: u64 = middle.trim_start_matches('+').parse().unwrap_or(0);
            if retries > 0 {
                log.retried += 1;
                log.failed_attempts += retries;
            }
            if let Some(instance) = index(upstream) {
                log.attempts[instance] += 1;
                if status >= 500 {
                    log.failed_attempts += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(kind: BalancerKind, balance: Balance, retries: bool) -> Setup {
        Setup {
            kind,
            balance,
            retries,
            port: 5000,
            instances: vec![5001, 5002],
        }
    }

    #[test]
    fn nginx_hashes_the_whole_address_and_retries_only_when_asked() {
        let dir = Path::new("/tmp/run");
        let text = setup(BalancerKind::Nginx, Balance::Hash, false).config(dir);
        assert!(text.contains("hash $remote_addr consistent;"), "{text}");
        assert!(!text.contains("ip_hash"), "{text}");
        assert!(text.contains("proxy_next_upstream off;"), "{text}");
        assert!(text.contains("server 127.0.0.1:5002 max_fails=1"), "{text}");
        assert!(text.contains("listen 127.0.0.1:5000;"), "{text}");
        assert!(
            text.contains("access_log /tmp/run/access.log lab;"),
            "{text}"
        );
        let text = setup(BalancerKind::Nginx, Balance::LeastConn, true).config(dir);
        assert!(text.contains("least_conn;"), "{text}");
        assert!(
            text.contains("proxy_next_upstream error timeout;"),
            "{text}"
        );
    }

    #[test]
    fn haproxy_checks_every_instance_and_redispatches_only_when_asked() {
        let text = setup(BalancerKind::Haproxy, Balance::RoundRobin, true).config(Path::new("/x"));
        assert!(text.contains("balance roundrobin"), "{text}");
        assert!(text.contains("retries 2\n  option redispatch 1"), "{text}");
        assert!(
            text.contains("server instance1 127.0.0.1:5002 check"),
            "{text}"
        );
        let text = setup(BalancerKind::Haproxy, Balance::Hash, false).config(Path::new("/x"));
        assert!(text.contains("balance source"), "{text}");
        assert!(text.contains("retries 0"), "{text}");
        assert!(!text.contains("redispatch"), "{text}");
    }

    #[test]
    fn nginx_lines_count_every_attempt_and_each_failure() {
        let s = setup(BalancerKind::Nginx, Balance::RoundRobin, true);
        let names = s.upstream_names();
        let mut log = BalancerLog {
            attempts: vec![0, 0],
            ..BalancerLog::default()
        };
        for line in [
            "127.0.0.1:5001|200|200",
            "127.0.0.1:5002, 127.0.0.1:5001|502, 200|200",
            "127.0.0.1:5002|502|502",
            "app|502|502",
            "garbage",
        ] {
            fold_line(BalancerKind::Nginx, &names, line, &mut log);
        }
        assert_eq!(log.requests, 4);
        assert_eq!(log.attempts, vec![2, 2]);
        assert_eq!(log.failed_attempts, 2);
        assert_eq!(log.retried, 1);
        assert_eq!(log.errors, 2);
    }

    #[test]
    fn haproxy_lines_count_retries_and_skip_notices() {
        let s = setup(BalancerKind::Haproxy, Balance::RoundRobin, true);
        let names = s.upstream_names();
        let mut log = BalancerLog {
            attempts: vec![0, 0],
            ..BalancerLog::default()
        };
        for line in [
            "instance0|0|200",
            "instance1|+1|200",
            "<NOSRV>|0|503",
            "Server app/instance0 is DOWN, reason: Layer4 connection problem",
        ] {
            fold_line(BalancerKind::Haproxy, &names, line, &mut log);
        }
        assert_eq!(log.requests, 3);
        assert_eq!(log.attempts, vec![1, 1]);
        assert_eq!(log.failed_attempts, 1);
        assert_eq!(log.retried, 1);
        assert_eq!(log.errors, 1);
    }
}
