//! The site's pages. Text is server-rendered, so every page reads fine with
//! JavaScript off; only the labs need the browser to run.
//!
//! The four models of one machine are here; [`scaling`] holds the page past
//! it, the load balancer's.

mod scaling;

pub use scaling::ScalingPage;

use crate::compare::BreakEvenFromPass;
use crate::lab::{ChildProcessLab, ClusterLab, MainThreadLab, ThreadsLab};
use crate::quoted::Q;
use crate::topics::{ChildDetails, ClusterOps, LibuvPool, Listing, Partitioning, WorkerDetails};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// The three models side by side, and where to start.
#[component]
pub fn HomePage() -> AnyView {
    view! {
        <Title text="spawnlab — how Node.js spreads work, measured"/>
        <section class="hero">
            <h1>"How Node.js spreads work — measured, not guessed"</h1>
            <p class="lede">
                "Node.js runs your JavaScript on one thread, around one event loop. When one loop is not "
                "enough, Node gives you three tools: start another program ("<code>"child_process"</code>
                "), run several copies of your server behind one port ("<code>"cluster"</code>"), or "
                "run JavaScript on more threads inside one process ("<code>"worker_threads"</code>"). "
                "This site explains what each one really does, and its labs run real workloads — on "
                "real Node.js, and on a Rust engine that shows what the operating system itself "
                "costs — on the server you are reading this from. A lab's figures are measured when "
                "you press Run; the comparison's are measured once and kept for a few minutes, with "
                "the time they were taken; figures quoted from elsewhere name their source and date."
            </p>
        </section>
        <section class="models" aria-label="The three models">
            <article class="model">
                <h2><code>"child_process"</code></h2>
                <p class="analogy">
                    "Like sending a job to a contractor's workshop: separate premises, separate tools, "
                    "and you talk by passing notes."
                </p>
                <p>
                    "A new operating-system process. "<code>"spawn"</code>" and "<code>"execFile"</code>
                    " run any program; "<code>"fork"</code>" starts another Node.js process with a message "
                    "channel to its parent. Nothing of the parent's memory is shared."
                </p>
                <p class="when">
                    <strong>"Reach for it"</strong>" to run another program, or to isolate work that might crash or leak. "
                    <A href="/child-process">"Try the child-process lab"</A>"."
                </p>
            </article>
            <article class="model">
                <h2><code>"cluster"</code></h2>
                <p class="analogy">
                    "Like a shop with one door and several tills: customers come in one way and are "
                    "sent to whichever till is next."
                </p>
                <p>
                    "A primary process forks several worker processes that all serve the same port. By "
                    "default (except on Windows) the primary accepts each connection and hands it to the "
                    "next worker in turn."
                </p>
                <p class="when">
                    <strong>"Reach for it"</strong>" to use every core of one machine for an HTTP server. "
                    <A href="/cluster">"Try the cluster lab"</A>"."
                </p>
            </article>
            <article class="model">
                <h2><code>"worker_threads"</code></h2>
                <p class="analogy">
                    "Like a second cook in the same kitchen with their own bench and knives: same "
                    "building, but they only share what you deliberately put on the pass."
                </p>
                <p>
                    "More threads in the same process, each with its own JavaScript engine instance, "
                    "event loop and heap. Messages are copied; only "<code>"SharedArrayBuffer"</code>
                    " memory is truly shared."
                </p>
                <p class="when">
                    <strong>"Reach for it"</strong>" to crunch numbers without freezing the event loop. "
                    <A href="/threads">"Try the worker-threads lab"</A>"."
                </p>
            </article>
        </section>
        <p class="compare-link">
            "Want the numbers first? The "<A href="/compare">"comparison table"</A>" puts all "
            "three side by side, its figures measured on this server."
        </p>
        <DecisionHelper/>
        <section class="why">
            <h2>"First, the problem: one loop"</h2>
            <p>
                "Every callback in a Node.js process runs on the same thread. While one of them "
                "computes, no other request is answered, no timer fires. "
                <A href="/main-thread">"See the loop freeze"</A>
                ", then see how each model gets the work off it."
            </p>
        </section>
        <section class="why">
            <h2>"Why a load balancer is still needed"</h2>
            <p>
                "All three tools stop at the edge of one machine. A cluster can fill every core of "
                "a server, but it cannot survive that server going down, and it cannot add a second "
                "one. Past one machine, a load balancer (nginx, HAProxy, a cloud balancer) spreads "
                "connections across several servers, each of which may itself run a cluster. "
                <A href="/scaling">"The scaling lab"</A>" puts a real nginx in front of several "
                "clusters on this server, and lets you break them while the load runs."
            </p>
        </section>
    }
    .into_any()
}

/// The needs a learner may come with, and where each one leads.
const NEEDS: [(&str, &str, &str, &str); 5] = [
    (
        "program",
        "Run another program (a shell tool, a Python script)",
        "A child process: spawn or execFile it with an argument list. Avoid exec with anything a user typed: it goes through a shell.",
        "/child-process",
    ),
    (
        "isolate",
        "Keep a crash or a leak away from the server",
        "A child process (fork): its memory and its crashes are its own, and you talk to it by messages.",
        "/child-process",
    ),
    (
        "http",
        "Use every core of one machine for an HTTP server",
        "A cluster: one process per core sharing the port, with the primary handing out connections.",
        "/cluster",
    ),
    (
        "crunch",
        "Crunch numbers without freezing the server",
        "Worker threads, from a pool: the computation leaves the event loop, and a Worker starts faster than a forked process, though in Node.js both take milliseconds (the comparison measures them on this server).",
        "/threads",
    ),
    (
        "machines",
        "Serve more than one machine can",
        "A load balancer (nginx, HAProxy) in front of several instances — on several machines — each of which may run a cluster. The scaling lab runs a real one in front of clusters on this server.",
        "/scaling",
    ),
];

/// Asks what the learner needs and points to the model and its lab: the
/// answer to the chosen need shows under it. Plain HTML and CSS (a checked
/// radio shows the answer beside it), so it costs the browser's bundle
/// nothing and works without JavaScript.
#[component]
fn DecisionHelper() -> impl IntoView {
    view! {
        <section class="helper" aria-labelledby="helper-title">
            <h2 id="helper-title">"Which one do I need?"</h2>
            <fieldset>
                <legend>"What are you trying to do?"</legend>
                {NEEDS
                    .iter()
                    .map(|(id, question, answer, href)| {
                        let input = format!("need-{id}");
                        view! {
                            <div class="need">
                                <input type="radio" name="need" id=input.clone() value=*id/>
                                " "
                                <label class="choice" for=input>{*question}</label>
                                <p class="answer" data-need=*id>
                                    {*answer} " " <a href=*href>"Open its lab"</a>
                                </p>
                            </div>
                        }
                    })
                    .collect_view()}
            </fieldset>
        </section>
    }
}

/// Worker threads: what they are, what they are not, and the lab.
#[component]
pub fn ThreadsPage() -> AnyView {
    view! {
        <Title text="Worker threads — spawnlab"/>
        <article class="model-page">
            <h1>"Worker threads"</h1>
            <p class="lede">
                "A worker thread runs JavaScript on another thread of the same process, so a long "
                "computation no longer stops the main event loop from answering everything else."
            </p>
            <h2>"What Node.js does"</h2>
            <p>
                <code>"new Worker(file)"</code>" starts a thread with its own V8 isolate, its own event "
                "loop and its own JavaScript heap. The threads talk with "<code>"postMessage"</code>
                ": values are copied with the structured-clone algorithm, an "<code>"ArrayBuffer"</code>
                " named in the transfer list is moved instead of copied, and a "
                <code>"SharedArrayBuffer"</code>" is the one kind of memory both sides see at once "
                "(coordinated with "<code>"Atomics"</code>"). Node's documentation advises a pool of "
                "workers rather than one per task, because creating a worker costs more than a small "
                "task saves."
            </p>
            <aside class="misconception" aria-label="Common misconception">
                <h3>"Common misconception: “worker threads share memory”"</h3>
                <p>
                    "They share a process, not a heap. An object you post to a worker arrives as a "
                    "copy; change it there and the original does not move. Only "
                    <code>"SharedArrayBuffer"</code>" memory is shared."
                </p>
                <p class="source">
                    "Measured on a 2-core VM with Node.js v20.20.2 (2026-11-26): each idle Worker "
                    "added about "<Q id="worker_memory"/>" — its own heap among it — and a 1 MiB "
                    <code>"Uint8Array"</code>" took "<Q id="mib_clone"/>" to post there and back by "
                    "structured clone, against "<Q id="mib_transfer"/>" moved in a transfer list and "
                    <Q id="mib_shared"/>" handed over as a "<code>"SharedArrayBuffer"</code>". An "
                    "object graph costs more to clone than a flat typed array. This server's own "
                    "figures are in "<code>"spawnlab bench"</code>" and on the "
                    <A href="/compare">"comparison"</A>"."
                </p>
            </aside>
            <h2>"What this server does"</h2>
            <p>
                "On Node.js (the lab's default), the server runs our script "
                <a href="/node/worker_threads.js"><code>"worker_threads.js"</code></a>
                ": one "<code>"new Worker()"</code>" per worker you ask for, or tasks handed to a "
                "pool of Workers started before the run (compare their start latencies). Each "
                "Worker reports through "<code>"postMessage"</code>" — a first message as soon as "
                "it runs, then progress, then its result — or writes into a "
                <code>"SharedArrayBuffer"</code>" with "<code>"Atomics"</code>" and posts nothing "
                "at all. CPU time is each thread's own clock, memory the process's growth per "
                "Worker. On the Rust engine, the same lab runs operating-system threads inside "
                "this server, reporting over a channel or a board of atomics: what a thread costs "
                "without a JavaScript runtime in it. Either way, when more than one worker ran, the "
                "same job then runs on one, so the speedup you see is measured, not assumed. "
                "Press “Run on both” to see the two side by side with their ratio."
            </p>
            <CodePair node=NODE_SNIPPET rust=RUST_SNIPPET/>
            <ThreadsLab/>
            <h2>"Where a second worker starts to pay"</h2>
            <p>
                "The same job, counting the primes below N, on two workers and on one, for N from "
                "a thousand to ten million, on each runtime. Below the line a second worker made "
                "the job slower: its start cost more than the half of the job it took over."
            </p>
            <BreakEvenFromPass/>
            <h2>"What to try"</h2>
            <ul>
                <li>
                    "Count the primes below 20,000,000 on 1 thread, then on 2. On a machine with two "
                    "idle cores the second run should take about half as long."
                </li>
                <li>
                    "Now ask for 8 threads. With only as many cores as the host reports, the extra "
                    "threads take turns: the job gets no faster."
                </li>
                <li>
                    "Do not reach for threads to wait. A Node.js process runs thousands of waits "
                    "at once on its one loop, with no thread at all — that is what the loop is "
                    "for — and Node's documentation says Workers do not help much with I/O. Try "
                    "“wait on a timer” on the main-thread lab: the loop stays free the whole time."
                </li>
                <li>
                    "Shrink the job and find where the second worker stops paying for its start: "
                    "the break-even chart above measured it on this server for both runtimes: "
                    "compare where it sits on Node.js and on the Rust engine."
                </li>
                <li>
                    "Run one job with workers reporting through messages, then the same job through "
                    "shared memory. The table of your runs puts them side by side: the shared board "
                    "sends no messages at all, and the job's time barely moves, because a count of "
                    "primes reports little. Copying only costs when there is a lot to copy."
                </li>
                <li>
                    "Run 4 threads from the pool twice, then 4 fresh threads: compare the median "
                    "start in your runs. A pooled thread is already running and only has to be "
                    "handed the work."
                </li>
            </ul>
            <p class="source">
                "For comparison, on a 2-core VM with Node.js v20.20.2 (2026-11-26): "
                <code>"new Worker()"</code>" took a median "<Q id="worker_start"/>" to its first "
                "message; counting the primes below 5,000,000 ("<Q id="job_5m"/>" on the main "
                "thread) was "<Q id="one_worker_slower"/>" slower on one Worker and "
                <Q id="one_fork_slower"/>" slower in one forked child, while two workers still ran "
                <Q id="speedup_5m_threads"/>" (Workers) and "<Q id="speedup_5m_fork"/>" (forks) "
                "faster; below 20,000,000, two Workers ran "<Q id="speedup_20m_threads"/>" faster. "
                "Run the lab on both runtimes to see what a Rust thread costs to start on this server."
            </p>
            <WorkerDetails/>
        </article>
    }
    .into_any()
}

const NODE_SNIPPET: &str = r#"// main.js
const { Worker } = require('node:worker_threads');
const started = performance.now();
const w = new Worker('./count.js', { workerData: { lo, hi } });
w.once('message', () =>
  console.log('ready after', performance.now() - started, 'ms'));
w.on('message', (m) => { if (m.count !== undefined) total += m.count; });

// count.js
const { parentPort, workerData } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.postMessage({ count: countPrimes(workerData.lo, workerData.hi) });"#;

const RUST_SNIPPET: &str = r#"let (tx, rx) = std::sync::mpsc::channel();
let started = Instant::now();
let handle = std::thread::spawn(move || {
    tx.send(Msg::Ready).unwrap();          // first message
    let count = count_primes(lo, hi);
    tx.send(Msg::Done { count }).unwrap();
});
for msg in rx {                            // ends when tx is dropped
    match msg {
        Msg::Ready => println!("ready after {:?}", started.elapsed()),
        Msg::Done { count } => total += count,
    }
}
handle.join().unwrap();"#;

/// The blocked main loop: why any of the three models is needed.
#[component]
pub fn MainThreadPage() -> AnyView {
    view! {
        <Title text="The blocked main thread — spawnlab"/>
        <article class="model-page">
            <h1>"The main thread, blocked"</h1>
            <p class="lede">
                "A Node.js process runs all of your JavaScript on one thread, around one event "
                "loop. That is why it handles thousands of waiting connections cheaply — and why "
                "one slow computation stops all of them."
            </p>
            <h2>"What Node.js does"</h2>
            <p>
                "The event loop takes one callback at a time and runs it to the end. Waiting — for "
                "the network, a file, a timer — happens outside JavaScript, so while a request "
                "waits the loop serves others: thousands of waits run at once on one loop, with no "
                "thread per wait. Computing happens inside it: a handler that counts primes for "
                <Q id="blocked_job"/>" (measured below) keeps every other request, timer and "
                "heartbeat waiting for all of it. So does a synchronous wait — "<code>"Atomics.wait"</code>", "
                <code>"execSync"</code>", any "<code>"*Sync"</code>" call — though it uses no CPU. "
                "Node's guide calls this blocking the event loop."
            </p>
            <aside class="misconception" aria-label="Common misconception">
                <h3>"Common misconception: “async code never blocks”"</h3>
                <p>
                    "Wrapping a loop in an "<code>"async"</code>" function or a promise does not "
                    "move it off the thread. Only the waiting is asynchronous; the computing still "
                    "runs on the loop, start to finish."
                </p>
                <p class="source">
                    "Measured on a 2-core VM with Node.js v20.20.2 (2026-11-26): while a "
                    <Q id="blocked_job"/>" computation ran in a handler, a trivial "
                    <code>"/ping"</code>" waited a median "<Q id="blocked_ping_p50"/>" — longer than "
                    "the job, because two clients kept the heavy route busy and a ping often queued "
                    "behind more than one job. With the computation moved to a pool of one Worker, "
                    "the same "<code>"/ping"</code>" took "<Q id="offloaded_ping"/>". Offloading "
                    "kept the loop answering; it did not make the heavy job itself any faster."
                </p>
            </aside>
            <h2>"What this server does"</h2>
            <p>
                "On Node.js, the server starts our script "
                <a href="/node/main_thread.js"><code>"main_thread.js"</code></a>
                " in a process of its own: a heartbeat due every "<Q id="tick"/>", "
                <code>"perf_hooks.monitorEventLoopDelay"</code>", and a tiny HTTP server whose "
                <code>"/ping"</code>" the server requests from outside every "<Q id="ping_every"/>
                ", as other users would. After a calm "<Q id="calm"/>" the job runs on that loop; "
                "every tick and every ping "
                "that falls due meanwhile has to wait. On the Rust engine, the same lab runs on "
                "a single-threaded async runtime of its own, with the same heartbeat and "
                <code>"/ping"</code>". Compare the waits: "<strong>"wait on a timer"</strong>" is "
                <code>"await"</code>", and the loop stays free; "<strong>"wait synchronously"</strong>
                " ("<code>"Atomics.wait"</code>") uses no CPU at all and freezes the loop anyway. "
                "The last workload, "<strong>"hash on libuv's thread pool"</strong>", runs on "
                "Node.js alone: it starts that many asynchronous "<code>"crypto.pbkdf2"</code>
                " calls at once, with "<code>"UV_THREADPOOL_SIZE"</code>" set to the pool you "
                "choose, and draws when each one finished (see below: the loop is not the "
                "only thread)."
            </p>
            <CodePair node=BLOCKING_NODE rust=BLOCKING_RUST/>
            <MainThreadLab/>
            <p class="source">
                "In the lab, one job runs at a time, so a ping waits at most for the one job: "
                "compare your runs' ping latencies with the job's own time. The quoted "
                <Q id="blocked_ping_p50"/>" median ("<Q id="blocked_ping_p99"/>" at p99) came from "
                "two clients keeping the heavy route queued."
            </p>
            <LibuvPool/>
            <Partitioning/>
        </article>
    }
    .into_any()
}

/// Child processes: another program, or another Node.js.
#[component]
pub fn ChildProcessPage() -> AnyView {
    view! {
        <Title text="Child processes — spawnlab"/>
        <article class="model-page">
            <h1>"Child processes"</h1>
            <p class="lede">
                "A child process is a whole new program running beside yours: its own memory, "
                "its own event loop, its own crash."
            </p>
            <h2>"What Node.js does"</h2>
            <p>
                <code>"spawn"</code>" and "<code>"execFile"</code>" start any program from an "
                "argument list; "<code>"exec"</code>" runs a command line through a shell, which "
                "the Node.js documentation warns against with unsanitized input. "
                <code>"fork(file)"</code>" starts another Node.js process running "<code>"file"</code>
                " and opens an IPC channel to it: messages are serialized (JSON by default) on "
                "one side and parsed on the other. A parent can even pass a server or socket "
                "handle to a child with "<code>"subprocess.send(message, handle)"</code>"."
            </p>
            <aside class="misconception" aria-label="Common misconception">
                <h3>"Common misconception: “fork() copies the parent, like in C”"</h3>
                <p>
                    "Node's "<code>"fork()"</code>" is not POSIX "<code>"fork()"</code>". Nothing "
                    "of the parent's memory is copied: the child is a fresh Node.js that loads "
                    "its module from scratch and talks to the parent only through messages. The "
                    "start-up cost is a whole new runtime, which is why it is measured below."
                </p>
                <p class="source">
                    "Measured on a 2-core VM with Node.js v20.20.2 (2026-11-26): "
                    <code>"fork()"</code>" to the child's first message took a median "
                    <Q id="fork_start"/>", against "<Q id="worker_start"/>" for "
                    <code>"new Worker()"</code>"; on a second VM of the same size, "
                    <Q id="fork_start_b"/>" against "<Q id="worker_start_b"/>". In Node.js a Worker "
                    "is not much cheaper to start than a process; the compare page measures both "
                    "on the Rust engine too, where the gap is far wider."
                </p>
            </aside>
            <h2>"What this server does"</h2>
            <p>
                "On Node.js, the server runs our script "
                <a href="/node/child_process.js"><code>"child_process.js"</code></a>
                ", which "<code>"fork()"</code>"s one child per worker with an IPC channel, JSON "
                "or "<code>"serialization: 'advanced'"</code>" as you choose. Each child says "
                "“ready” as soon as it runs — that is its start latency — answers a ping-pong of "
                "small messages to time the channel, does its share of the work, and reports its "
                "own CPU time and memory. Other programs run with "<code>"execFile"</code>" from a "
                "fixed list, from an argument vector, never through a shell. On the Rust engine, "
                "the server instead re-executes its own program in a hidden worker mode, talking "
                "to it over its standard input and output (one JSON object per line) — unlike "
                <code>"fork()"</code>", whose IPC channel is a channel of its own beside them. The "
                "“anonymous” memory is what one more worker really adds; the rest of its resident "
                "memory is the program file, shared with every other copy."
            </p>
            <CodePair node=FORK_NODE rust=FORK_RUST/>
            <ChildProcessLab/>
            <p class="source">
                "For comparison, on a 2-core VM with Node.js v20.20.2 (2026-11-26): an idle forked "
                "child held "<Q id="fork_rss"/>" resident, of which "<Q id="fork_private"/>" was "
                "its own; a small IPC round trip took "<Q id="ipc_round_trip"/>"; and a 1 MiB "
                <code>"Uint8Array"</code>" took "<Q id="mib_ipc_json"/>" there and back as JSON, "
                "the default, against "<Q id="mib_ipc_advanced"/>" with "
                <code>"serialization: 'advanced'"</code>" — use it for binary data. An old Node.js "
                "guideline said to assume at least "<Q id="guideline_ms"/>" and "
                <Q id="guideline_mb"/>" per new process (nodejs/node-v0.x-archive#9223)."
            </p>
            <ChildDetails/>
        </article>
    }
    .into_any()
}

/// Cluster: one port, several processes, and the limit of one machine.
#[component]
pub fn ClusterPage() -> AnyView {
    view! {
        <Title text="Cluster — spawnlab"/>
        <article class="model-page">
            <h1>"Cluster"</h1>
            <p class="lede">
                "A cluster is several copies of your server, each a separate process, sharing "
                "one port, so one machine's cores all answer requests."
            </p>
            <h2>"What Node.js does"</h2>
            <p>
                "The primary process forks workers with "<code>"child_process.fork"</code>". "
                "When a worker listens on a port, the primary is involved in one of two ways. "
                "By default (on every platform except Windows) the primary itself listens, "
                "accepts each connection and hands it to the next worker in turn: round robin. "
                "The alternative ("<code>"SCHED_NONE"</code>") gives the listening socket to "
                "the workers, which accept directly. Choose with "
                <code>"cluster.schedulingPolicy"</code>" or "<code>"NODE_CLUSTER_SCHED_POLICY"</code>"."
            </p>
            <aside class="misconception" aria-label="Common misconception">
                <h3>"Common misconception: “letting workers accept is faster”"</h3>
                <p>
                    "Node's documentation calls the shared-socket method faster in theory, and warns "
                    "that in practice distribution tends to be very unbalanced: loads have been "
                    "observed where over "<Q id="docs_70"/>" of all connections ended up in just two "
                    "of eight processes, because of how the operating system schedules them. Run "
                    "both below and compare the shares. Note also that round robin balances "
                    "connections, not requests: with keep-alive, a connection's every request goes "
                    "to the worker that got the connection."
                </p>
                <p class="source">
                    "Measured with wrk on a 2-core VM, Node.js v20.20.2, 64 keep-alive connections "
                    "(2026-11-26): under "<code>"SCHED_NONE"</code>" the busier of two workers "
                    "answered "<Q id="busiest_none"/>" of the requests; under round robin, "
                    <Q id="busiest_rr"/>"."
                </p>
            </aside>
            <h2>"What this server does"</h2>
            <p>
                "On Node.js, the server runs our script "
                <a href="/node/cluster.js"><code>"cluster.js"</code></a>
                ": a "<code>"cluster"</code>" primary forks the workers, each running "
                <code>"http.createServer"</code>". Round robin is "<code>"SCHED_RR"</code>"; shared "
                "socket is "<code>"SCHED_NONE"</code>"; "<code>"SO_REUSEPORT"</code>" is "
                <code>"listen({ reusePort: true })"</code>", which only Node.js v22.12 and v23.1 "
                "and newer have, on Linux and a few BSDs — older versions ignore the option "
                "silently, so the server tries a real double bind at start-up and offers it only "
                "where it works. Each worker then owns a socket of its own, and connections "
                "already queued on a worker's socket when it dies are dropped with it: a shared "
                "listening socket does not have that problem. On the Rust "
                "engine, a primary process of the server's own passes each connection's file "
                "descriptor to the next worker over a Unix socket, or the listening socket itself, "
                "or lets each worker bind the port with "<code>"SO_REUSEPORT"</code>". Either way "
                "the server's own load generator sends the requests and counts, from a response "
                "header, which worker answered each one. Kill a worker mid-load: the server sends "
                "it SIGKILL, and the primary's "<code>"'exit'"</code>" handler forks a replacement."
            </p>
            <CodePair node=CLUSTER_NODE rust=CLUSTER_RUST/>
            <ClusterLab/>
            <h2>"What to try"</h2>
            <ul>
                <li>
                    "Send 20,000 hello requests under each policy and compare the shares: round "
                    "robin splits nearly evenly, while workers racing in "<code>"accept"</code>
                    " can leave one doing most of the work."
                </li>
                <li>
                    "Pick “wait on every request”, start a load, and press a worker's Kill button "
                    "while it runs. Its lane on the timeline turns red until the primary's "
                    "replacement is up, the throughput line dips, and the requests that worker held "
                    "fail. Look at the shares afterwards: round robin hands out connections, not "
                    "requests, so with keep-alive the connections that fled to the survivor stay "
                    "there and the newcomer gets only what reconnects later."
                </li>
                <li>
                    "Turn keep-alive off: every request is a new connection that the primary must "
                    "accept and pass on, and the requests per second fall accordingly."
                </li>
                <li>
                    "Burn a few milliseconds of CPU per request on 1 worker, then on 2: the second "
                    "core roughly doubles what the cluster can answer. With hello, the load "
                    "generator on the same cores is the limit instead."
                </li>
            </ul>
            <h2>"Why a load balancer is still needed"</h2>
            <p>
                "A cluster ends at the machine's edge: it cannot survive that machine failing, "
                "and it cannot add a second one. A load balancer such as nginx or HAProxy in "
                "front of several machines, each running its own cluster, takes over from there. "
                "Workers share nothing: a per-worker cache is fine, but state that must agree "
                "across workers (sessions, rate limits, who is in which chat room) belongs outside "
                "them, since Node's cluster has no sticky sessions of its own. "
                <A href="/scaling">"The scaling lab"</A>" puts several clusters behind a real "
                "nginx or HAProxy, and lets you kill a worker, an instance or the balancer "
                "while the load runs."
            </p>
            <p class="source">
                "Why Node's own figures here vary: the load generator runs on the same two cores as "
                "the cluster, so it takes a share of the CPU the workers would use. Measured with "
                "wrk (which needs far less CPU per request than this server's load generator), "
                "64 keep-alive connections, Node.js v20.20.2, on two 2-core VMs: one process "
                "answered "<Q id="hello_one_a"/>" and "<Q id="hello_one_b"/>" requests/s; a "
                "round-robin cluster of two, "<Q id="hello_rr_a"/>" and "<Q id="hello_rr_b"/>"; "
                <code>"SCHED_NONE"</code>", "<Q id="hello_none_a"/>" on the first. With a new "
                "connection per request, the round-robin cluster fell to "<Q id="close_rr"/>
                " against "<Q id="close_one"/>" for one process alone: its primary accepts every "
                "connection and passes it on."
            </p>
            <ClusterOps/>
        </article>
    }
    .into_any()
}

/// A Node.js snippet and what the engine does instead, side by side (one
/// above the other on a narrow screen).
#[component]
fn CodePair(node: &'static str, rust: &'static str) -> impl IntoView {
    view! {
        <div class="side-by-side">
            <figure>
                <figcaption>"Node.js"</figcaption>
                <Listing code=node label="Code: Node.js"/>
            </figure>
            <figure>
                <figcaption>"Rust, as the engine does it"</figcaption>
                <Listing code=rust label="Code: Rust, as the engine does it"/>
            </figure>
        </div>
    }
}

const BLOCKING_NODE: &str = r#"const http = require('node:http');

setInterval(() => console.log('tick'), 20);

http.createServer((req, res) => {
  if (req.url === '/primes') {
    // Runs on the loop: no tick, no other
    // request, until it returns.
    res.end(String(countPrimes(5_000_000)));
  } else {
    res.end('ok');
  }
}).listen(8000);"#;

const BLOCKING_RUST: &str = r#"// One single-threaded loop, as Node has.
let rt = tokio::runtime::Builder::new_current_thread()
    .enable_time()
    .build()?;
rt.block_on(async {
    let beat = tokio::spawn(async {
        loop {
            let due = Instant::now() + TICK;
            tokio::time::sleep_until(due).await;
            let lag = Instant::now() - due; // streamed
        }
    });
    // The work, on the loop itself: the heartbeat
    // task cannot run until this returns.
    let count = count_primes(5_000_000);
    beat.abort();
});"#;

const FORK_NODE: &str = r#"// main.js
const { fork } = require('node:child_process');

// A new Node.js process running child.js,
// with an IPC channel to this one.
const child = fork('./child.js');
child.on('message', ({ count }) => {
  console.log('the child counted', count);
});
child.send({ below: 10_000_000 }); // serialized

// child.js
process.on('message', ({ below }) => {
  // send() is asynchronous: exiting right after it can
  // lose the message. Leave once it has gone out.
  process.send({ count: countPrimes(below) }, () => {
    process.disconnect();
  });
});"#;

const FORK_RUST: &str = r#"// This very binary, started again in its
// hidden worker mode, its stdio as the channel.
let mut child = Command::new(std::env::current_exe()?)
    .arg("__child")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()?;
let mut to_child = child.stdin.take().unwrap();
let from_child = BufReader::new(child.stdout.take().unwrap());

// One JSON object per line, both ways.
let work = ToChild::Work { workload, worker: 0, workers: 1 };
writeln!(to_child, "{}", serde_json::to_string(&work)?)?;
for line in from_child.lines() {
    if let FromChild::Done { result: Some(count), .. } = serde_json::from_str(&line?)? {
        println!("the child counted {count:?}");
    }
}
child.wait()?;"#;

const CLUSTER_NODE: &str = r#"const cluster = require('node:cluster');
const http = require('node:http');
const { availableParallelism } = require('node:os');

if (cluster.isPrimary) {
  for (let i = 0; i < availableParallelism(); i++) {
    cluster.fork();
  }
  // The primary restarts nothing by itself: this
  // is your code. Skip workers you stopped on purpose,
  // and back off so a crash loop cannot fork-bomb.
  let delay = 100;
  cluster.on('exit', (worker) => {
    if (worker.exitedAfterDisconnect) return;
    setTimeout(() => cluster.fork(), delay);
    delay = Math.min(delay * 2, 10_000);
  });
} else {
  // Every worker "listens" on 8000; the primary
  // owns the socket and hands connections out.
  http.createServer((req, res) => {
    res.end(`hello from ${process.pid}
`);
  }).listen(8000);
}"#;

const CLUSTER_RUST: &str = r#"// The primary: it alone accepts, then passes each
// connection's file descriptor to the next live
// worker over a Unix socket (SCM_RIGHTS).
let listener = TcpListener::bind("127.0.0.1:0")?;
let mut next = 0;
for stream in listener.incoming() {
    let stream = stream?;
    let worker = &workers[next % workers.len()];
    next += 1;
    worker.channel.send(&ToWorker::Connection, Some(stream.as_fd()))?;
    // our copy of the fd closes here
}

// Each worker: receive the message and the fd
// that came with it, and serve HTTP on it.
while let Some((ToWorker::Connection, Some(fd))) = channel.recv()? {
    serve(service.clone(), TcpStream::from(fd));
}"#;

/// Anything else.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found — spawnlab"/>
        <h1>"There is no page here"</h1>
        <p><A href="/">"Back to the start"</A></p>
    }
}
