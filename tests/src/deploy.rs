//! The shipped `deploy/` files, run for real on loopback: nginx with
//! `deploy/nginx/spawnlab.conf` rewritten for a test's ports ([`NginxSite`],
//! [`Nginx`]), HAProxy with `deploy/haproxy/spawnlab.cfg` ([`Haproxy`]), a
//! throw-away certificate, a folder that removes itself, and
//! WebSocket upgrades from a chosen source address with chosen headers.
//! Everything here stops or removes itself on drop.

use crate::procs::{children_of, signal};
use crate::server::workspace_root;
use crate::ws::WsClient;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use protocol::ServerEvent;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `name` on `PATH`, or in /usr/sbin (where Debian puts nginx and
/// HAProxy, often not on a user's `PATH`).
pub fn program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A temporary folder, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Result<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "spawnlab-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        // nginx's workers run as another user when the tests run as root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate and its key (PEM) in `dir`, made by `openssl`;
/// `None` if `openssl` is not installed.
pub fn self_signed(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    let Some(openssl) = program("openssl") else {
        return Ok(None);
    };
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=spawnlab.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "openssl could not make a certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Some((cert, key)))
}

/// `deploy/nginx/spawnlab.conf` rewritten for loopback: the test's
/// instances in the upstream, its ports in place of 80 and 443, its site
/// folder under `/pkg/`, no IPv6 listeners, and TLS either kept (pointed at
/// a throw-away certificate) or taken out (the tests' clients speak plain
/// HTTP). Everything else is the shipped file, line for line. Each rewrite
/// must find its line, so a change to the shipped file that the tests no
/// longer match fails loudly instead of testing something else.
#[derive(Debug, Clone)]
pub struct NginxSite {
    pub instances: Vec<u16>,
    /// In place of `listen 443 ssl http2;`: the site.
    pub port: u16,
    /// In place of `listen 80;`: the redirect to HTTPS.
    pub redirect_port: u16,
    /// The certificate and key; `None` serves the site over plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub site_dir: PathBuf,
    /// In place of the lab socket's `proxy_read_timeout 90s;`.
    pub socket_timeout: Option<String>,
    /// Listen on Unix sockets in this folder instead of the ports: for
    /// `nginx -t`, which binds its listeners too, and must not race other
    /// tests for a port.
    pub unix_dir: Option<PathBuf>,
}

impl NginxSite {
    /// Plain HTTP on free ports in front of `instances`, the built site.
    pub fn plain(instances: &[u16]) -> Self {
        NginxSite {
            instances: instances.to_vec(),
            port: free_port(),
            redirect_port: free_port(),
            tls: None,
            site_dir: crate::server::site_dir(),
            socket_timeout: None,
            unix_dir: None,
        }
    }

    /// What a `listen` names: `127.0.0.1:<port>`, or a Unix socket.
    fn listen(&self, port: u16) -> String {
        match &self.unix_dir {
            Some(dir) => format!("unix:{}/{port}.sock", dir.display()),
            None => format!("127.0.0.1:{port}"),
        }
    }

    /// The shipped file.
    pub fn shipped() -> Result<String> {
        let path = deploy_dir().join("nginx/spawnlab.conf");
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The shipped file, rewritten.
    pub fn render(&self) -> Result<String> {
        let shipped = Self::shipped()?;
        let mut out = String::new();
        let mut found = std::collections::BTreeMap::<&str, usize>::new();
        let mut servers_written = false;
        for line in shipped.lines() {
            let t = line.trim();
            let indent = &line[..line.len() - line.trim_start().len()];
            let mut hit = |rule: &'static str| *found.entry(rule).or_default() += 1;
            let replaced = if t.starts_with("listen [::]") {
                hit("listen [::]");
                None
            } else if t == "listen 80;" {
                hit("listen 80;");
                Some(format!("listen {};", self.listen(self.redirect_port)))
            } else if t == "listen 443 ssl http2;" {
                hit("listen 443 ssl http2;");
                Some(match self.tls {
                    Some(_) => format!("listen {} ssl http2;", self.listen(self.port)),
                    None => format!("listen {};", self.listen(self.port)),
                })
            } else if t.starts_with("ssl_certificate_key ") {
                hit("ssl_certificate_key");
                self.tls
                    .as_ref()
                    .map(|(_, key)| format!("ssl_certificate_key {};", key.display()))
            } else if t.starts_with("ssl_certificate ") {
                hit("ssl_certificate");
                self.tls
                    .as_ref()
                    .map(|(cert, _)| format!("ssl_certificate {};", cert.display()))
            } else if t.starts_with("ssl_") {
                self.tls.as_ref().map(|_| t.to_string())
            } else if let Some(rest) = t.strip_prefix("server 127.0.0.1:") {
                hit("server 127.0.0.1:");
                let options = rest.split_once(' ').map_or(";", |(_, o)| o);
                if servers_written {
                    None
                } else {
                    servers_written = true;
                    Some(
                        self.instances
                            .iter()
                            .map(|p| format!("server 127.0.0.1:{p} {options}"))
                            .collect::<Vec<_>>()
                            .join(&format!("\n{indent}")),
                    )
                }
            } else if t == "root /opt/spawnlab/site;" {
                hit("root /opt/spawnlab/site;");
                Some(format!("root {};", self.site_dir.display()))
            } else if t == "proxy_read_timeout 90s;" {
                hit("proxy_read_timeout 90s;");
                Some(match &self.socket_timeout {
                    Some(timeout) => format!("proxy_read_timeout {timeout};"),
                    None => t.to_string(),
                })
            } else {
                Some(t.to_string())
            };
            if let Some(text) = replaced {
                if text.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("{indent}{text}\n"));
                }
            }
        }
        for rule in [
            "listen [::]",
            "listen 80;",
            "listen 443 ssl http2;",
            "ssl_certificate",
            "ssl_certificate_key",
            "server 127.0.0.1:",
            "root /opt/spawnlab/site;",
            "proxy_read_timeout 90s;",
        ] {
            if !found.contains_key(rule) {
                bail!(
                    "deploy/nginx/spawnlab.conf has no `{rule}` line any more: update the \
                     tests' rewrite of it (tests/src/deploy.rs)"
                );
            }
        }
        Ok(out)
    }
}

/// The nginx.conf around a site: nginx in the foreground, everything it
/// writes in `dir`, an access log naming the instance that served each
/// request (`-` when nginx served it itself).
fn nginx_main(dir: &Path) -> String {
    let d = dir.display();
    let types = if Path::new("/etc/nginx/mime.types").is_file() {
        "include /etc/nginx/mime.types;".to_string()
    } else {
        "types { text/html html; text/css css; application/javascript js; \
         application/wasm wasm; }"
            .to_string()
    };
    format!(
        "# Written by spawnlab's tests around deploy/nginx/spawnlab.conf.\n\
daemon off;\n\
master_process on;\n\
worker_processes 1;\n\
pid {d}/nginx.pid;\n\
events {{ worker_connections 1024; }}\n\
http {{\n\
  {types}\n\
  default_type application/octet-stream;\n\
  log_format deploy '$remote_addr \"$request\" $status upstream=$upstream_addr';\n\
  access_log {d}/access.log deploy;\n\
  client_body_temp_path {d}/body;\n\
  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n\
  uwsgi_temp_path {d}/uwsgi;\n\
  scgi_temp_path {d}/scgi;\n\
  include {d}/spawnlab.conf;\n\
}}\n"
    )
}

/// Write `site` and the nginx.conf around it into `dir`; the path of the
/// nginx.conf.
fn write_nginx(dir: &Path, site: &NginxSite) -> Result<PathBuf> {
    std::fs::write(dir.join("spawnlab.conf"), site.render()?)?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_main(dir))?;
    Ok(conf)
}

fn nginx_binary() -> Result<PathBuf> {
    program("nginx").context("nginx is not installed: `make balancers` installs nginx-light")
}

/// `nginx -t` on `site`: its output, or an error holding it.
pub fn nginx_check(site: &NginxSite) -> Result<String> {
    let dir = TempDir::new("nginx-check")?;
    let site = NginxSite {
        unix_dir: Some(dir.path().to_path_buf()),
        ..site.clone()
    };
    let conf = write_nginx(dir.path(), &site)?;
    let out = Command::new(nginx_binary()?)
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("nginx -t refused deploy/nginx/spawnlab.conf:\n{text}");
    }
    Ok(text)
}

/// A real nginx running the shipped site, in a process group of its own;
/// stopped (the whole group) on drop.
pub struct Nginx {
    child: Child,
    dir: TempDir,
    pub site: NginxSite,
}

impl Nginx {
    /// Start nginx on `site` and wait until its ports answer. A port taken
    /// meanwhile (free when chosen, bound by another test before nginx
    /// could) is replaced by another, up to three times.
    pub fn start(mut site: NginxSite) -> Result<Nginx> {
        let mut attempt = 0;
        loop {
            match Self::start_once(site.clone()) {
                Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {
                    attempt += 1;
                    (site.port, site.redirect_port) = (free_port(), free_port());
                }
                other => return other,
            }
        }
    }

    fn start_once(site: NginxSite) -> Result<Nginx> {
        let dir = TempDir::new("nginx")?;
        let conf = write_nginx(dir.path(), &site)?;
        let child = Command::new(nginx_binary()?)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting nginx")?;
        let mut nginx = Nginx { child, dir, site };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = [nginx.site.port, nginx.site.redirect_port]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            // Its worker too, so that [`Nginx::pids`] lists it.
            if up && !children_of(nginx.child.id()).is_empty() {
                return Ok(nginx);
            }
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited ({status}): {}", nginx.error_log());
            }
            if Instant::now() > deadline {
                bail!("nginx does not answer after 10 s: {}", nginx.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where the site is: `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.site.port))
    }

    /// Where the HTTP→HTTPS redirect listens.
    pub fn redirect_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.site.redirect_port))
    }

    /// `ws://127.0.0.1:<port>/ws?learner=<token>`.
    pub fn ws_url(&self, learner: &str) -> String {
        format!(
            "ws://{}{}?learner={learner}",
            self.addr(),
            protocol::WS_PATH
        )
    }

    /// The master's pid and its workers'.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        pids.extend(children_of(master).iter().map(|p| p.pid));
        pids
    }

    /// The access log so far: one line per finished request,
    /// `<client> "<request>" <status> upstream=<instance or ->`.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Stop nginx (SIGTERM to its group, SIGKILL after 5 s) and reap it.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        stop_group(&mut self.child)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `deploy/haproxy/spawnlab.cfg` rewritten to run unprivileged on
/// loopback: the test's instances as its servers, its ports in place of 80
/// and 443, TLS taken out, and the `global` lines that need root or a
/// system logger (chroot, user, group, daemon, the stats socket, syslog)
/// left out. Everything else (checks, balancing, retries, timeouts) is the
/// shipped file, line for line; each rewrite must find its line.
pub fn haproxy_config(instances: &[u16], port: u16, redirect_port: u16) -> Result<String> {
    let path = deploy_dir().join("haproxy/spawnlab.cfg");
    let shipped =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = String::new();
    let mut found = std::collections::BTreeSet::new();
    let mut servers_written = false;
    for line in shipped.lines() {
        let t = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let dropped = [
            "log /dev/log",
            "chroot ",
            "stats ",
            "user ",
            "group ",
            "daemon",
        ];
        let replaced = if dropped.iter().any(|d| t.starts_with(d)) {
            found.insert("global");
            None
        } else if t.starts_with("bind :::") {
            None
        } else if t == "bind :80" {
            found.insert("bind :80");
            Some(format!("bind 127.0.0.1:{redirect_port}"))
        } else if t.starts_with("bind :443 ssl crt ") {
            found.insert("bind :443");
            Some(format!("bind 127.0.0.1:{port}"))
        } else if t.starts_with("server instance") {
            found.insert("server");
            let options = t.splitn(4, ' ').nth(3).unwrap_or_default();
            (!std::mem::replace(&mut servers_written, true)).then(|| {
                instances
                    .iter()
                    .map(|p| format!("server instance{p} 127.0.0.1:{p} {options}"))
                    .collect::<Vec<_>>()
                    .join(&format!("\n{indent}"))
            })
        } else {
            Some(t.to_string())
        };
        if let Some(text) = replaced {
            out.push_str(&format!("{indent}{text}\n"));
        }
    }
    for rule in ["global", "bind :80", "bind :443", "server"] {
        if !found.contains(rule) {
            bail!(
                "deploy/haproxy/spawnlab.cfg has no `{rule}` line any more: update the \
                 tests' rewrite of it (tests/src/deploy.rs)"
            );
        }
    }
    Ok(out)
}

/// A real HAProxy running the shipped configuration ([`haproxy_config`]) in
/// the foreground, in a process group of its own; stopped on drop.
pub struct Haproxy {
    child: Child,
    _dir: TempDir,
    pub port: u16,
}

impl Haproxy {
    /// Start HAProxy in front of `instances` and wait until it answers; on
    /// a port taken meanwhile, again on others (up to three times).
    pub fn start(instances: &[u16]) -> Result<Haproxy> {
        let mut attempt = 0;
        loop {
            match Self::start_once(instances) {
                Err(e) if attempt < 3 && e.to_string().contains("cannot bind socket") => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(instances: &[u16]) -> Result<Haproxy> {
        let binary =
            program("haproxy").context("HAProxy is not installed: `make balancers` installs it")?;
        let dir = TempDir::new("haproxy")?;
        let (port, redirect_port) = (free_port(), free_port());
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(instances, port, redirect_port)?)?;
        let log = std::fs::File::create(dir.path().join("haproxy.log"))?;
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting haproxy")?;
        let mut haproxy = Haproxy {
            child,
            _dir: dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(haproxy);
            }
            let log = || std::fs::read_to_string(haproxy._dir.path().join("haproxy.log"));
            if let Some(status) = haproxy.child.try_wait()? {
                bail!("haproxy exited ({status}): {}", log().unwrap_or_default());
            }
            if Instant::now() > deadline {
                bail!(
                    "haproxy does not answer after 10 s: {}",
                    log().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ws://127.0.0.1:<port>/ws?learner=<token>`.
    pub fn ws_url(&self, learner: &str) -> String {
        format!(
            "ws://127.0.0.1:{}{}?learner={learner}",
            self.port,
            protocol::WS_PATH
        )
    }

    /// Its pid (HAProxy runs its threads in one process with `-db`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop it (SIGTERM to its group, SIGKILL after 5 s) and reap it.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        stop_group(&mut self.child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// SIGTERM to `child`'s process group, SIGKILL after 5 s; reap `child`.
fn stop_group(child: &mut Child) -> Result<std::process::ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let group = -(child.id() as i32);
    signal(group, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait()? {
            // Anything of the group that outlived its leader.
            signal(group, Signal::SIGKILL);
            return Ok(status);
        }
        if Instant::now() > deadline {
            signal(group, Signal::SIGKILL);
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a WebSocket upgrade went.
pub enum Upgrade {
    /// Accepted: the client, and the first event (`hello`).
    Open(Box<WsClient>, ServerEvent),
    /// Refused before the upgrade: the status and the body.
    Refused(u16, String),
}

impl Upgrade {
    /// The client, or an error naming the refusal.
    pub fn open(self) -> Result<(WsClient, ServerEvent)> {
        match self {
            Upgrade::Open(client, hello) => Ok((*client, hello)),
            Upgrade::Refused(status, body) => bail!("the upgrade was refused: {status} {body}"),
        }
    }

    /// The refusal, or an error if the upgrade was accepted.
    pub fn refused(self) -> Result<(u16, String)> {
        match self {
            Upgrade::Refused(status, body) => Ok((status, body)),
            Upgrade::Open(..) => bail!("the upgrade was accepted"),
        }
    }
}

/// Open `ws://<addr><path>` from the loopback address `source` (any of
/// 127.0.0.0/8: a learner at another address, as the balancer and the
/// server see it) with extra request `headers`.
pub async fn upgrade_from(
    source: Ipv4Addr,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Upgrade> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::from((source, 0)))
        .with_context(|| format!("binding {source}"))?;
    let stream = socket.connect(addr).await?;
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes())?,
            http::HeaderValue::from_str(value)?,
        );
    }
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => {
            let mut client = WsClient::from_socket(socket);
            let hello = client.next().await?;
            Ok(Upgrade::Open(Box::new(client), hello))
        }
        Err(Error::Http(response)) => Ok(Upgrade::Refused(
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(other) => Err(other.into()),
    }
}
