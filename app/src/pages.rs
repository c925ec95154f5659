//! The site's pages. Text is server-rendered, so every page reads fine with
//! JavaScript off; only the labs need the browser to run.

use crate::lab::ThreadsLab;
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
                "This site explains what each one really does, and its labs run real workloads on the "
                "server you are reading this from, so every figure you see was measured a moment ago."
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
                <p class="when"><strong>"Reach for it"</strong>" to run another program, or to isolate work that might crash or leak."</p>
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
                <p class="when"><strong>"Reach for it"</strong>" to use every core of one machine for an HTTP server."</p>
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
        <section class="why">
            <h2>"Why a load balancer is still needed"</h2>
            <p>
                "All three tools stop at the edge of one machine. A cluster can fill every core of "
                "a server, but it cannot survive that server going down, and it cannot add a second "
                "one. Past one machine, a load balancer (nginx, HAProxy, a cloud balancer) spreads "
                "connections across several servers, each of which may itself run a cluster."
            </p>
        </section>
    }
    .into_any()
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
            </aside>
            <h2>"What this server does"</h2>
            <p>
                "The lab below starts real operating-system threads inside this server's process, "
                "one per worker you ask for. Each thread sends a first message as soon as it runs "
                "(that is the start latency shown), then progress, then its result, over a channel. "
                "CPU time is read from each thread's own CPU clock. When more than one thread ran, "
                "the server then runs the same job on a single thread, so the speedup you see is "
                "measured, not assumed."
            </p>
            <div class="side-by-side">
                <figure>
                    <figcaption>"Node.js"</figcaption>
                    <pre><code>{NODE_SNIPPET}</code></pre>
                </figure>
                <figure>
                    <figcaption>"Rust, as the engine does it"</figcaption>
                    <pre><code>{RUST_SNIPPET}</code></pre>
                </figure>
            </div>
            <ThreadsLab/>
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
                    "Try the sleep workload with 8 threads: waiting needs no core, so it splits "
                    "well past the number of CPUs."
                </li>
                <li>"Shrink the job to primes below 10,000 and watch start-up cost eat the gain."</li>
            </ul>
            <p class="source">
                "For comparison, on a 2-core virtual machine of the kind this site was built on, "
                "Node.js v20.20.2 took a median 14.9 ms from "<code>"new Worker()"</code>" to the "
                "first message, and counting primes below 20,000,000 on 2 workers ran 1.95× faster "
                "than on the main thread (measured 2026-11-26). A native thread starts in tens of "
                "microseconds: compare with the start latencies the lab reports."
            </p>
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
