//! Past one machine: several clusters behind a real load balancer, what a
//! balancer does that a cluster cannot, and the lab that breaks them.
//!
//! The text quotes no figures: every number on this page comes from the
//! learner's own runs, in the lab and its table of runs.

use crate::lab::ScalingLab;
use crate::topics::Listing;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// The `/scaling` page.
#[component]
pub fn ScalingPage() -> AnyView {
    view! {
        <Title text="Beyond one machine — spawnlab"/>
        <article class="model-page">
            <h1>"Beyond one machine: a load balancer"</h1>
            <p class="lede">
                "A cluster fills the cores of one machine. Past that, you run more copies of the "
                "whole server — instances — and put a load balancer in front, which spreads the "
                "requests over them and stops sending to the ones that fail."
            </p>
            <h2>"What a cluster cannot do"</h2>
            <ul>
                <li>
                    <strong>"Survive its machine."</strong>" Every worker of a cluster shares one "
                    "kernel, one power supply, one network link and one deploy. When the machine "
                    "goes, the whole cluster goes with it, primary included, and nothing is left to "
                    "restart anything. One machine is one failure; two instances on two machines "
                    "behind a balancer is the smallest setup that stays up when one of them does not."
                </li>
                <li>
                    <strong>"Grow past its cores."</strong>" One worker per core is as far as a "
                    "cluster goes. Adding machines — scaling horizontally — needs something in "
                    "front that knows them all and sends each one its share."
                </li>
                <li>
                    <strong>"Tell a live server from a useful one."</strong>" A cluster's primary "
                    "replaces a worker that exits, and only because your code says so. A worker that "
                    "hangs, or a whole instance that cannot reach its database, stays in rotation. "
                    "A balancer's health checks take it out."
                </li>
            </ul>
            <h2>"What this server does"</h2>
            <p>
                "The lab below starts a real nginx — or HAProxy, where this server has it — on a "
                "loopback port, with a configuration written for your run, in front of several "
                "instances. Each instance is a whole cluster, as in the "
                <A href="/cluster">"cluster lab"</A>": a primary and its workers, on a loopback "
                "port of its own. The server's load generator sends every request to the "
                "balancer, from several loopback addresses ("<code>"127.0.1.x"</code>"), so a "
                "balancer that hashes by client address has different clients to tell apart. "
                "Each answer says which instance and which worker served it; the balancer's "
                "access log says which instance it tried for every request — a retried request "
                "appears there once for each attempt. Break a worker, an instance or the "
                "balancer while the load runs, and compare the two accounts."
            </p>
            <p>
                "All the instances share this server's cores, with the balancer and the load "
                "generator. So this lab shows what a balancer does when things fail, and how it "
                "spreads the work; it cannot show more machines adding CPU, because there is only "
                "one (see "<a href="#capacity">"what more instances can add here"</a>")."
            </p>
            <div class="side-by-side">
                <figure>
                    <figcaption>"nginx: a minimal configuration for two instances"</figcaption>
                    <Listing code=NGINX_CONF label="Code: nginx configuration"/>
                </figure>
                <figure>
                    <figcaption>"HAProxy: the same, with active health checks"</figcaption>
                    <Listing code=HAPROXY_CONF label="Code: HAProxy configuration"/>
                </figure>
            </div>
            <ScalingLab/>
            <h2>"What to try"</h2>
            <ul>
                <li>
                    "The buttons need a load that lasts long enough to press them: raise the "
                    "requests, or the wait per request. For runs you want to compare, plan the "
                    "fault in the form instead (“During the load, plan to…”): it then strikes "
                    "after the same number of answers every time."
                </li>
                <li>
                    "Plan “Kill one whole instance” with retries on, then the same run with "
                    "retries off. Set the failures the client saw against the failed attempts in "
                    "the balancer's log, in the table of your runs: with retries, the balancer "
                    "absorbs what it can, and the access log is the only witness."
                </li>
                <li>
                    "Kill an instance by hand, then press “Bring instance back”, and watch when "
                    "its count of attempts starts to move again. nginx only learns from real "
                    "requests, so it tries the instance again once its "<code>"fail_timeout"</code>
                    " is over; HAProxy probes it and takes it back when its check passes."
                </li>
                <li>
                    "Kill one worker instead of the instance. Its primary starts a replacement, "
                    "and with two or more workers per instance the balancer may never notice: "
                    "that failure stays inside the cluster."
                </li>
                <li>
                    "Compare round robin with hash by client address. Hashing keeps each client "
                    "on its instance, so the shares follow how the addresses happened to hash, not "
                    "the instances' load. Kill an instance under hashing: only its clients move."
                </li>
                <li>
                    "Turn keep-alive off: every request becomes a new connection to the balancer. "
                    "Compare requests per second and p99 with the run before."
                </li>
                <li>
                    "Run “wait on every request” with 2 instances of 1 worker, then 4; then the "
                    "same with “burn CPU on every request”. The next section says what to expect "
                    "and why; your runs table says what this server did."
                </li>
                <li>
                    "Kill the balancer. From then on every request fails, whatever the instances "
                    "do: the balancer is now the one failure that takes everything down, which is "
                    "why production runs it redundantly too (two balancers sharing a floating "
                    "address, several addresses in DNS, or a cloud balancer that is itself spread "
                    "over machines)."
                </li>
            </ul>
            <h2 id="capacity">"What more instances can add here"</h2>
            <p>
                "More instances on one machine cannot add CPU. Which ceiling you meet first "
                "depends on the work each request does:"
            </p>
            <ul>
                <li>
                    <strong>"Waiting (“wait on every request”)."</strong>" A request that waits "
                    "holds a socket and a little memory, not a core, so the cores are not the "
                    "ceiling. Requests per second follow how many are in flight divided by how long "
                    "each waits, until the balancer's and the load generator's own work per request "
                    "fills the cores. This is the load where capacity still grows on one machine — "
                    "with more requests in flight, and with more instances wherever each instance "
                    "can hold only so many at once (a database pool per process, a thread per "
                    "request). One Node.js event loop holds thousands of waits by itself, so here "
                    "the number in flight matters more than the number of instances."
                </li>
                <li>
                    <strong>"Computing (“burn CPU on every request”)."</strong>" A request that "
                    "computes needs a core for all of its time. Once every core is busy — on a "
                    "2-core machine, two instances of one worker already do it — a third or fourth "
                    "instance only takes turns on the same cores: requests per second stay where "
                    "they were, and the latency grows instead. On separate machines each instance "
                    "brings its own cores, and CPU-bound work grows with them too."
                </li>
            </ul>
            <h2>"Health checks: how a balancer learns an instance is gone"</h2>
            <p>
                <strong>"nginx (open source) checks passively."</strong>" It learns from real "
                "requests: a refused connection, a reset or a timeout counts as a failure, and "
                "after "<code>"max_fails"</code>" failures within "<code>"fail_timeout"</code>
                " it leaves that server out for "<code>"fail_timeout"</code>", then tries it "
                "again with a real request. The request that discovered the failure goes to the "
                "next server if "<code>"proxy_next_upstream"</code>" allows it (by default, on an "
                "error or a timeout), or comes back to the client as an error. Active checks, "
                "probing a server before any client needs it, are in the commercial NGINX Plus "
                "("<code>"health_check"</code>")."
            </p>
            <p>
                <strong>"HAProxy checks actively."</strong>" With "<code>"check"</code>" on a "
                "server line it probes each server on its own schedule, every "<code>"inter"</code>
                ", marks it down after "<code>"fall"</code>" failed probes and up again after "
                <code>"rise"</code>" good ones — so it can find a dead instance before a client "
                "does, and see it come back without risking real traffic on it. "
                <code>"retries"</code>" tries a failed connection again, and "
                <code>"option redispatch"</code>" lets a retry go to another server instead of "
                "the same one."
            </p>
            <p>
                "Retrying has limits. A request that was already being served when its instance "
                "died can only be sent again if repeating it is harmless and nothing of the answer "
                "has reached the client. nginx will not pass a "<code>"POST"</code>", "
                <code>"PATCH"</code>" or "<code>"LOCK"</code>" to another server once it was sent "
                "to one, unless told to with "<code>"non_idempotent"</code>": a second attempt "
                "could charge a card twice."
            </p>
            <h2>"Sticky sessions, and why WebSockets need them"</h2>
            <p>
                "Round robin sends one client's requests to different instances. That is fine "
                "while the instances keep nothing of the client in memory — sessions in Redis or "
                "a database, as a cluster's workers already need. Some protocols need one "
                "instance, though. Socket.IO opens a session with plain HTTP requests before it "
                "upgrades to a WebSocket, and each of them must reach the process that holds the "
                "session; its documentation requires sticky sessions whenever it runs in more "
                "than one process, unless the client skips the HTTP step and opens the "
                "WebSocket at once."
            </p>
            <p>
                "A balancer makes a client sticky by its address (nginx "<code>"ip_hash"</code>
                " or "<code>"hash $remote_addr consistent"</code>", HAProxy "
                <code>"balance source"</code>") or by a cookie it sets (HAProxy's "
                <code>"cookie"</code>"; in nginx, "<code>"sticky"</code>" is an NGINX Plus "
                "directive). Hashing by address is coarse: everyone behind one office's NAT lands "
                "on one instance — and "<code>"ip_hash"</code>" keys on only the first three "
                "octets of an IPv4 address, so the lab's clients, all in "<code>"127.0.1.x"</code>
                ", would all land on one; it hashes the whole address instead. Consistent "
                "hashing moves only the clients of an instance that leaves, not everyone."
            </p>
            <p>
                "And no balancer moves a live socket. A WebSocket is one long TCP connection; the "
                "balancer picks an instance once, at the upgrade, and the connection stays there "
                "until it closes. When that instance dies, its connections die with it and the "
                "clients must reconnect — possibly elsewhere. A new instance receives none of the "
                "connections already open."
            </p>
            <h2>"Long-lived connections defeat round robin"</h2>
            <p>
                "A balancer that chooses per connection spreads connections, not work. With "
                "keep-alive one connection carries many requests; a WebSocket may last hours. "
                "Round robin then balances the connections opened, and an instance that comes back "
                "after a restart gets only the new ones while the old ones stay where they were — "
                "the "<A href="/cluster">"cluster lab"</A>" shows it with cluster's own round "
                "robin. Least connections sends new connections to the emptiest instance; some "
                "services also close long connections after a while so their clients reconnect "
                "and spread out again. An HTTP balancer (nginx's proxy, HAProxy in "
                <code>"mode http"</code>") picks an instance for each request instead, even on a "
                "kept-alive client connection — compare the shares here with keep-alive on and "
                "off."
            </p>
            <h2>"Layer 4 or layer 7"</h2>
            <p>
                <strong>"Layer 4"</strong>" (TCP: nginx's "<code>"stream"</code>" module, HAProxy "
                <code>"mode tcp"</code>", a cloud “network” load balancer) forwards the bytes of "
                "a connection without reading them. It chooses once per connection, cannot see "
                "paths, headers or cookies, cannot retry a request because it does not know where "
                "one ends, and passes TLS through to the instances untouched. It is cheap and "
                "works for any protocol."
            </p>
            <p>
                <strong>"Layer 7"</strong>" (HTTP: nginx's "<code>"http"</code>" proxy, HAProxy "
                <code>"mode http"</code>", a cloud “application” load balancer) reads every "
                "request. It can route by host or path, add "<code>"X-Forwarded-For"</code>", "
                "choose per request, retry, keep clients sticky with a cookie, and answer errors "
                "itself (502, 503, 504). It costs more per request, and it must terminate TLS to "
                "see inside."
            </p>
            <h2>"Why a proxy, even on one machine"</h2>
            <ul>
                <li>
                    <strong>"TLS termination."</strong>" The proxy holds the certificate, does the "
                    "handshakes and speaks HTTP/2 to browsers, then plain HTTP to the app over "
                    "loopback: one well-tested program configured once, instead of the same work "
                    "in every Node.js process."
                </li>
                <li>
                    <strong>"Buffering slow clients."</strong>" By default nginx reads a request's "
                    "whole body before passing it on, and reads the app's answer as fast as the "
                    "app writes it, then feeds it to the client at the client's pace. A phone on a "
                    "poor link, or a client sending its headers a byte at a time, ties up the "
                    "proxy, which is built for that, and not the app's connection and memory."
                </li>
                <li>
                    <strong>"The rest of the edge."</strong>" Static files, compression, limits on "
                    "header and body sizes, rate limits, one access log — and a restart of the app "
                    "behind it without closing the port the world connects to."
                </li>
            </ul>
            <h2>"Draining: deploying without dropping requests"</h2>
            <p>
                "“Kill instance” in the lab drops whatever that instance was doing. A deploy does "
                "the same job gently, one instance at a time: take it out of the balancer's "
                "rotation first, so no new requests arrive (HAProxy: "
                <code>"set server app/a state drain"</code>" on its runtime API; nginx open source: "
                "mark the server "<code>"down"</code>" and run "<code>"nginx -s reload"</code>", "
                "whose old workers finish their requests before they exit); let the requests in "
                "flight finish (in Node.js, "<code>"server.close()"</code>" stops accepting and "
                "waits; a cluster worker's "<code>"disconnect()"</code>" does it for you); stop "
                "it, deploy, start it, wait for its health check to pass, put it back, and move to "
                "the next. Long-lived connections need a deadline, and clients that reconnect."
            </p>
            <h2>"Containers: one process each, instead of cluster"</h2>
            <p>
                "Under an orchestrator such as Kubernetes, the usual unit is a container running "
                "one Node.js process, with no cluster inside. The orchestrator does for the whole "
                "fleet what a primary does for its workers: it starts the replicas, restarts those "
                "that die, probes their health (is it alive, is it ready for traffic), and a "
                "service or ingress balances across them. Scaling means more replicas, each with "
                "its own CPU and memory limits, and a crash is visible to the orchestrator. A "
                "cluster inside the container repeats that work, hides crashes from it, and may "
                "count CPUs the container is not allowed to use."
            </p>
        </article>
    }
    .into_any()
}

const NGINX_CONF: &str = r#"upstream app {
    # Round robin by default; or one of:
    #   least_conn;
    #   hash $remote_addr consistent;

    # Passive health checks: after max_fails failed
    # attempts within fail_timeout, leave the server
    # out for fail_timeout, then try it again.
    server 127.0.0.1:3001 max_fails=1 fail_timeout=10s;
    server 127.0.0.1:3002 max_fails=1 fail_timeout=10s;

    keepalive 16;   # reuse connections to the instances
}

server {
    listen 127.0.0.1:8080;
    location / {
        proxy_pass http://app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # On an error or a timeout, try the next
        # server (the default); "off" never retries.
        proxy_next_upstream error timeout;
    }
}"#;

const HAPROXY_CONF: &str = r#"defaults
    mode http
    timeout connect 1s
    timeout client  30s
    timeout server  30s
    # Try a failed connection again, up to 3 times;
    # redispatch lets a retry go to another server.
    retries 3
    option redispatch

frontend web
    bind 127.0.0.1:8080
    default_backend app

backend app
    balance roundrobin   # or: leastconn, source
    # Active health checks: a request every 500 ms;
    # 2 failures take a server out, 1 success back in.
    option httpchk GET /health
    server a 127.0.0.1:3001 check inter 500ms fall 2 rise 1
    server b 127.0.0.1:3002 check inter 500ms fall 2 rise 1"#;
