//! The sections each model's page adds beyond its lab: what a Node.js
//! developer needs next (the libuv pool, partitioning work, Worker and
//! child_process details, running a cluster in production).

use crate::quoted::Q;
use leptos::prelude::*;
use leptos_router::components::A;

/// A code listing. It may be wider than the column, so it scrolls inside
/// its own box, which the keyboard can reach (a focusable, named region).
#[component]
pub fn Listing(code: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <pre tabindex="0" role="region" aria-label=label>
            <code>{code}</code>
        </pre>
    }
}

/// "Node is single-threaded", corrected: libuv's thread pool, what uses it,
/// what a full one looks like, and what never goes near it.
#[component]
pub fn LibuvPool() -> impl IntoView {
    view! {
        <section class="topic" aria-labelledby="topic-libuv-pool">
            <h2 id="topic-libuv-pool">"Single-threaded? Only your JavaScript"</h2>
            <p>
                "“Node.js is single-threaded” is half true. Your JavaScript runs on one thread, "
                "around one event loop. Underneath, libuv, the C library that runs that loop, "
                "keeps a pool of threads for work the operating system cannot do "
                "asynchronously. Node.js sends it:"
            </p>
            <ul>
                <li>
                    "every "<code>"fs"</code>" call, except the "<code>"*Sync"</code>
                    " ones and the file watchers;"
                </li>
                <li>
                    <code>"dns.lookup()"</code>", which calls the system's blocking resolver ("
                    <code>"dns.resolve*()"</code>" asks DNS servers over the network instead);"
                </li>
                <li>
                    "the asynchronous forms of the expensive crypto calls: "
                    <code>"crypto.pbkdf2()"</code>", "<code>"crypto.scrypt()"</code>", "
                    <code>"crypto.randomBytes()"</code>", "<code>"crypto.randomFill()"</code>", "
                    <code>"crypto.generateKeyPair()"</code>";"
                </li>
                <li>"every "<code>"zlib"</code>" call, except the synchronous ones."</li>
            </ul>
            <p>
                "The pool has 4 threads by default. "<code>"UV_THREADPOOL_SIZE"</code>" raises "
                "it, up to 1024, but only if it is set before the pool is first used, and "
                "Node.js may use it before your code runs: set it in the environment that starts "
                <code>"node"</code>", not with "<code>"process.env"</code>" from inside the program."
            </p>
            <h3>"What a full pool looks like"</h3>
            <p>
                "The pool is a queue in front of a fixed number of threads. Start 8 "
                <code>"crypto.pbkdf2"</code>" calls at once on the default 4 threads of a "
                "machine with four cores or more, and they finish in two waves: four together, "
                "then the other four, about as long again. The event loop stays free all along, "
                "but everything else that needs the pool waits in the same queue: an "
                <code>"fs.readFile"</code>" of a tiny file, or the "<code>"dns.lookup"</code>
                " behind an outgoing HTTP request, waits behind the hashing."
            </p>
            <p>
                "A bigger pool helps when the queue is the problem. It does not add cores: on a "
                "machine with two, at most two hashes run at any moment however wide the pool, "
                "so the waves blur and the last hash is done no sooner. The lab above shows it "
                "on this server: run 8 hashes on a pool of 1, then 4, then 8 threads, and "
                "compare when the last one finished with the server's cores."
            </p>
            <h3>"What never uses it"</h3>
            <p>
                "Network I/O. Sockets (TCP, UDP, pipes, and so HTTP) are watched from the loop's "
                "own thread with the operating system's readiness mechanisms: epoll on Linux, "
                "kqueue on macOS and the BSDs, I/O completion ports on Windows. That is how one "
                "process holds thousands of connections with a pool of four. Nor does your own "
                "JavaScript: it stays on the main thread unless you move it to a Worker."
            </p>
            <Listing code=PBKDF2_WAVES label="Code: four hashes, then a fifth"/>
        </section>
    }
}

const PBKDF2_WAVES: &str = r#"const crypto = require('node:crypto');

// 8 hashes at once; the pool has 4 threads by default.
const start = performance.now();
for (let i = 1; i <= 8; i++) {
  crypto.pbkdf2('secret', 'salt', 500_000, 64, 'sha512', (err) => {
    if (err) throw err;
    const ms = Math.round(performance.now() - start);
    console.log(`hash ${i} done after ${ms} ms`);
  });
}
// On 4+ cores: four similar times, then four at about twice that.
// Compare: UV_THREADPOOL_SIZE=8 node waves.js"#;

/// Partitioning with setImmediate, when to offload instead, and the other
/// things that block the loop.
#[component]
pub fn Partitioning() -> impl IntoView {
    view! {
        <section class="topic" aria-labelledby="topic-partitioning">
            <h2 id="topic-partitioning">"Other ways to keep the loop free"</h2>
            <p>
                "A Worker is one answer to a blocked loop. Node's guide “Don't Block the Event "
                "Loop” describes another: partitioning. Cut the job into chunks and give the loop "
                "a turn between them, so requests, timers and I/O run after each chunk instead "
                "of after the whole job."
            </p>
            <p>
                "Yield with "<code>"setImmediate"</code>": its callback runs after the loop has "
                "polled for I/O. "<code>"process.nextTick"</code>" and "<code>"await"</code>
                " on a promise that is already resolved do not yield: both run before the loop "
                "moves on, so the I/O keeps waiting."
            </p>
            <Listing code=CHUNKED_SUM label="Code: a sum in chunks that yield"/>
            <h3>"Partition or offload?"</h3>
            <p>
                "Partitioning suits work made of many small, even steps: summing a large array, "
                "walking many records. It needs no other thread, but the job finishes later, "
                "sharing the thread with everything else. A computation you cannot cut up (one "
                "big sort, an image resize in JavaScript), or one that would hog the loop anyway, "
                "belongs on a Worker, as the guide advises."
            </p>
            <aside class="misconception" aria-label="Common misconception">
                <h3>"Common misconception: “a Worker makes the job faster”"</h3>
                <p>
                    "Offloading keeps the loop responsive; it does not speed the job up. The job "
                    "takes as long on a Worker as on the main thread, a little longer counting the "
                    "Worker's start and the messages: counting primes on one Worker took "
                    <Q id="one_worker_slower"/>" longer than on the main thread on a 2-core VM "
                    "with Node.js v20.20.2. Only splitting the job over several Workers on free cores makes it "
                    "finish sooner."
                </p>
            </aside>
            <h3>"Other things that block the loop"</h3>
            <ul>
                <li>
                    <strong>"A catastrophic regular expression."</strong>" A pattern with nested "
                    "quantifiers such as "<code>"/(a+)+$/"</code>" can backtrack for an "
                    "exponentially long time on an input that almost matches: one crafted request "
                    "stalls the process (ReDoS). Keep such patterns away from user input, or use "
                    "an engine that does not backtrack, such as RE2."
                </li>
                <li>
                    <strong>"A large "<code>"JSON.parse"</code>" or "<code>"JSON.stringify"</code>
                    "."</strong>" Both are synchronous, and their time grows with the input: cap request "
                    "bodies, or parse big documents off the loop."
                </li>
                <li>
                    <strong>"Any "<code>"*Sync"</code>" call"</strong>" — "
                    <code>"fs.readFileSync"</code>", "<code>"child_process.execSync"</code>", "
                    <code>"crypto.pbkdf2Sync"</code>" and the rest. Fine at start-up; in a "
                    "request handler, the whole process waits for them."
                </li>
                <li>
                    <strong><code>"Atomics.wait"</code>" on the main thread."</strong>" It puts "
                    "the thread to sleep: no CPU used, and the loop frozen all the same, as "
                    <A href="/main-thread">"the main-thread lab"</A>" shows."
                </li>
            </ul>
        </section>
    }
}

const CHUNKED_SUM: &str = r#"const { setImmediate: nextTurn } = require('node:timers/promises');

// Sum a huge array without freezing the server.
async function sumInChunks(values, chunk = 10_000) {
  let sum = 0;
  for (let start = 0; start < values.length; start += chunk) {
    const end = Math.min(start + chunk, values.length);
    for (let i = start; i < end; i++) sum += values[i];
    await nextTurn(); // requests, timers and I/O run here
  }
  return sum;
}"#;

/// worker_threads beyond `new Worker()`: transfers, shared memory, channels,
/// limits, errors, pools, and what a Worker cannot be handed.
#[component]
pub fn WorkerDetails() -> impl IntoView {
    view! {
        <section class="topic" aria-labelledby="topic-worker-details">
            <h2 id="topic-worker-details">"Worker threads in practice"</h2>
            <h3>"Moving data instead of copying it"</h3>
            <p>
                <code>"postMessage"</code>" copies its value with the structured-clone "
                "algorithm. For a large binary payload, list its "<code>"ArrayBuffer"</code>
                " in the transfer list: the memory moves to the receiver uncopied, and the "
                "sender's buffer is detached, its length zero, unusable. Transfer a plain "
                <code>"Uint8Array"</code>" or a "<code>"Buffer.alloc"</code>" result: small "
                "Buffers cut from Node's shared pool cannot be transferred."
            </p>
            <Listing code=TRANSFER label="Code: transferring a buffer to a Worker"/>
            <h3>"Sharing memory, and talking directly"</h3>
            <p>
                "A "<code>"SharedArrayBuffer"</code>" is the only memory two threads see at "
                "once. Coordinate through "<code>"Atomics"</code>" (atomic adds, "
                "compare-and-exchange, "<code>"wait"</code>" and "<code>"notify"</code>"), or "
                "the threads race. "<code>"new MessageChannel()"</code>" makes two linked "
                <code>"MessagePort"</code>"s: post one to each of two Workers, each in its "
                "transfer list, and they talk to each other without the main thread relaying."
            </p>
            <h3>"Limits, errors and endings"</h3>
            <ul>
                <li>
                    <code>"resourceLimits"</code>" caps a Worker's JavaScript heap ("
                    <code>"maxOldGenerationSizeMb"</code>", "<code>"maxYoungGenerationSizeMb"</code>
                    ") and stack. A Worker whose heap reaches its limit is stopped with an "
                    <code>"ERR_WORKER_OUT_OF_MEMORY"</code>" error. The limits do not count "
                    <code>"ArrayBuffer"</code>"s or other memory outside the heap."
                </li>
                <li>
                    "An exception the Worker does not catch ends it and arrives as "
                    <code>"'error'"</code>" on the "<code>"Worker"</code>" object. Listen for "
                    "it: an "<code>"'error'"</code>" event nobody listens to is thrown in the "
                    "main thread and takes the process down."
                </li>
                <li>
                    <code>"'exit'"</code>" comes last, with the exit code, however the Worker "
                    "ended. "<code>"process.exit()"</code>" inside a Worker ends only that thread."
                </li>
                <li>
                    <code>"worker.terminate()"</code>" stops a Worker as soon as possible, even "
                    "one stuck in a loop that would never read a message, and returns a promise "
                    "of its exit code."
                </li>
            </ul>
            <h3>"Why a pool"</h3>
            <p>
                "Each new Worker builds a V8 isolate and loads your code, which takes "
                "milliseconds ("<A href="/compare">"measured on this server"</A>"). So the "
                "docs advise a pool: Workers started once and reused, a queue of tasks in front, "
                "and a cap on how many run at once (about one per core for CPU work), so a burst "
                "of requests queues instead of starting threads without end. piscina is a widely "
                "used one."
            </p>
            <h3>"Servers, but not sockets"</h3>
            <p>
                "A Worker can run an HTTP server of its own, on its own port. What it cannot do "
                "is receive a socket or a server from the main thread: unlike a child process, a "
                "Worker cannot be handed one. Spread connections with processes (cluster), "
                "computation with Workers."
            </p>
        </section>
    }
}

const TRANSFER: &str = r#"const { Worker } = require('node:worker_threads');

const worker = new Worker('./digest.js');
worker.on('error', (err) => console.error('worker failed:', err));
worker.on('exit', (code) => console.log('worker exited with', code));
worker.once('message', (hex) => {
  console.log('sha256:', hex);
  worker.terminate();
});

const bytes = new Uint8Array(16 * 1024 * 1024);
// ... fill bytes ...
worker.postMessage({ bytes }, [bytes.buffer]); // moved, not copied
console.log(bytes.byteLength); // 0: this side can no longer use it

// digest.js
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ bytes }) => {
  parentPort.postMessage(createHash('sha256').update(bytes).digest('hex'));
});"#;

/// child_process beyond the lab: exec against execFile and spawn, the shell
/// and injection, fork's channel and its serialization, handles, background
/// processes, and the events to handle.
#[component]
pub fn ChildDetails() -> impl IntoView {
    view! {
        <section class="topic" aria-labelledby="topic-child-details">
            <h2 id="topic-child-details">"Starting other programs, safely"</h2>
            <p>
                "Four functions, two differences: is there a shell, and where does the output go?"
            </p>
            <ul>
                <li>
                    <code>"exec(command)"</code>" hands a command line to a shell and collects "
                    "stdout and stderr in memory for your callback. Past "<code>"maxBuffer"</code>
                    ", the child is killed and the output cut short."
                </li>
                <li>
                    <code>"execFile(file, args)"</code>" runs a program directly from an argument "
                    "vector, no shell, and collects its output the same way."
                </li>
                <li>
                    <code>"spawn(command, args)"</code>" uses no shell either and streams stdout "
                    "and stderr, for output that is large or endless. Read them or ignore them: "
                    "a pipe nobody reads fills up and the child stalls."
                </li>
                <li>
                    <code>"fork(module)"</code>" is "<code>"spawn"</code>" for Node.js scripts, "
                    "plus a message channel."
                </li>
            </ul>
            <p>
                "Starting a small program is cheap; starting another Node.js is not. In one "
                <code>"spawnlab bench"</code>" run, "<code>"execFile('true')"</code>" came back "
                "in "<Q id="exec_file"/>", "<code>"exec('true')"</code>", through the shell, in "
                <Q id="exec_shell"/>", and a "<code>"fork()"</code>" took "
                <Q id="fork_start_bench"/>" to its first message: most of a fork is a second "
                "runtime booting. Run "<code>"spawnlab bench"</code>" to measure them on your "
                "machine, beside the Rust engine's "<code>"Command"</code>"."
            </p>
            <p>
                "The shell is the risk: it gives meaning to "<code>";"</code>", "<code>"|"</code>
                ", "<code>"$(…)"</code>" and quotes, so a command line built from user input "
                "lets the user write part of your command. "<code>"execFile"</code>" and "
                <code>"spawn"</code>" pass each argument untouched. "<code>"shell: true"</code>
                " brings the shell back, and the injection risk with it: the docs warn never to "
                "give it unsanitized input. Put "<code>"--"</code>" before user-supplied "
                "arguments, so one starting with a dash is not read as an option."
            </p>
            <Listing code=EXEC_FILE label="Code: execFile with an argument list"/>
            <h3>"fork and its channel"</h3>
            <p>
                <code>"fork()"</code>" opens an IPC channel of its own, separate from the "
                "child's stdin and stdout. Messages are JSON by default, which mangles anything "
                "but plain data: a "
                <code>"Map"</code>" arrives as an empty object, a "<code>"Uint8Array"</code>
                " as an object with one key per byte, and a "<code>"BigInt"</code>" cannot be "
                "sent at all. With "<code>"serialization: 'advanced'"</code>" the channel uses "
                "structured clone: typed arrays, "<code>"Map"</code>", "<code>"Set"</code>", "
                <code>"BigInt"</code>" and more arrive intact."
            </p>
            <p>
                "Use "<code>"'advanced'"</code>" for binary payloads: on a 2-core VM with Node.js v20.20.2, "
                "a mebibyte "<code>"Uint8Array"</code>" to a child and back took "
                <Q id="mib_ipc_json"/>" as JSON, "<Q id="mib_ipc_advanced"/>" with "
                <code>"'advanced'"</code>". That was raw bytes; objects cost more either way, "
                "and for small plain ones the docs note "<code>"'advanced'"</code>" may be no "
                "faster. "<A href="/child-process">"The child-process lab"</A>" runs both."
            </p>
            <p>
                <code>"subprocess.send(message, handle)"</code>" can also hand the child a "
                "listening server or a connected socket to serve itself."
            </p>
            <h3>"Background processes, and failures"</h3>
            <p>
                "To outlive the parent: "<code>"detached: true"</code>
                " (a process group of its own), "<code>"stdio: 'ignore'"</code>" (no pipes "
                "to the parent) and "<code>"child.unref()"</code>" (the parent's loop stops "
                "waiting for it). Always handle "<code>"'error'"</code>" (the program could not "
                "be started or killed; unhandled, it crashes the parent) and "<code>"'exit'"</code>
                ", with the exit code or the signal."
            </p>
        </section>
    }
}

const EXEC_FILE: &str = r#"const { execFile } = require('node:child_process');

// `name` came from a user: it may contain anything.
execFile('wc', ['-l', '--', name], (err, stdout) => {
  if (err) return console.error('wc failed:', err.message);
  console.log(stdout.trim());
});

// Not this: a shell parses the line, so a name such as
// "notes.txt; cat /etc/passwd" runs a second command.
// exec(`wc -l ${name}`, callback);"#;

/// Running a cluster in production: respawning with care, graceful and
/// rolling restarts, what cluster does not do, process managers,
/// containers, and reusePort.
#[component]
pub fn ClusterOps() -> impl IntoView {
    view! {
        <section class="topic" aria-labelledby="topic-cluster-ops">
            <h2 id="topic-cluster-ops">"Running a cluster for real"</h2>
            <h3>"Nobody replaces a dead worker but you"</h3>
            <p>
                "When a worker dies, the primary emits "<code>"'exit'"</code>" and nothing more. "
                "Respawning is your code, with two checks: "
                <code>"worker.exitedAfterDisconnect"</code>" is true when you asked the worker "
                "to go ("<code>"disconnect()"</code>" or "<code>"kill()"</code>"), so a planned "
                "stop is not taken for a crash; and a back-off, so a worker that dies at start-up "
                "is not forked again in a tight loop that keeps every core busy starting Node.js."
            </p>
            <Listing code=RESPAWN label="Code: a primary that replaces dead workers"/>
            <h3>"Graceful and rolling restarts"</h3>
            <p>
                <code>"worker.disconnect()"</code>" is the graceful stop: the worker closes its "
                "servers, takes no new connections, finishes the requests in flight and exits. "
                "A long-lived connection such as a WebSocket can hold it open indefinitely, so "
                "set a deadline, then "<code>"kill()"</code>" it. To deploy with no downtime, "
                "restart one worker at a time: fork a replacement, wait for its "
                <code>"'listening'"</code>" event, disconnect one old worker, repeat."
            </p>
            <h3>"What cluster does not do"</h3>
            <ul>
                <li>
                    <strong>"Sticky sessions."</strong>" A client's next connection may reach "
                    "another worker, with other memory. State that must agree across workers "
                    "(sessions, rate limits, WebSocket rooms) lives outside them, in Redis or a "
                    "database. A per-worker cache is fine if a miss is only slower, never wrong."
                </li>
                <li>
                    <strong>"Round robin for UDP."</strong>" The workers of a cluster share one "
                    <code>"dgram"</code>" socket, and the operating system picks which worker reads "
                    "each datagram, often very unevenly (nodejs/node#39428)."
                </li>
            </ul>
            <h3>"Process managers and containers"</h3>
            <p>
                "pm2's cluster mode drives Node's cluster and adds "
                "restarts, logs and rolling reloads. systemd can run one unit per instance ("
                <code>"app@1"</code>", "<code>"app@2"</code>", …) and restart each; the "
                "instances then need a port each behind a reverse proxy, or "
                <code>"reusePort"</code>". Containers usually run one Node.js process each: the "
                "orchestrator restarts it, checks its health, and scales by running more "
                "containers behind a load balancer. A cluster inside a container repeats that "
                "work, hides crashes from the orchestrator, and may count CPUs the container "
                "cannot use."
            </p>
            <h3><code>"reusePort"</code></h3>
            <p>
                "Since Node.js v22.12 and v23.1, "<code>"server.listen({ port, reusePort: true })"</code>
                " lets independent processes bind one port; the kernel spreads new connections "
                "among them, no primary in between. It needs Linux, a few BSDs or another "
                "platform the docs list; elsewhere the listen fails (nodejs/node#61018). Older "
                "versions ignore the option silently: separate processes get "
                <code>"EADDRINUSE"</code>", cluster workers fall back to cluster's sharing. One "
                "catch: each process has its own queue of pending connections, dropped if it "
                "dies; a single shared listening socket, as in cluster, keeps them."
            </p>
        </section>
    }
}

const RESPAWN: &str = r#"const cluster = require('node:cluster');
const { availableParallelism } = require('node:os');

if (cluster.isPrimary) {
  let delay = 0;     // wait before the next respawn
  let lastCrash = 0;

  for (let i = 0; i < availableParallelism(); i++) cluster.fork();

  cluster.on('exit', (worker, code, signal) => {
    // A planned stop: whoever stopped it decides what comes next.
    if (worker.exitedAfterDisconnect) return;

    console.error(`worker ${worker.process.pid} died:`, signal || code);
    // Crashing again soon after the last crash: wait twice as
    // long each time, up to a cap; after a calm spell, start over.
    const now = Date.now();
    delay = now - lastCrash < 60_000 ? Math.min(delay * 2 || 100, 30_000) : 0;
    lastCrash = now;
    setTimeout(() => cluster.fork(), delay);
  });
} else {
  require('./server.js'); // every worker listens on the same port
}"#;
