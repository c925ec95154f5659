'use strict';
// main_thread.js — the job runs ON the event loop.
//
// What it shows a learner: Node runs all your JavaScript on one thread.
// While a handler computes (primes, a SHA-256 chain) or blocks
// (`Atomics.wait`), nothing else on the loop runs: the heartbeat timer
// fires late, `/ping` goes unanswered, and `monitorEventLoopDelay` records
// the stall. A job that *waits* with `await` on a timer (sleep) leaves the
// loop free, and the heartbeat keeps its pace.
//
// pool_hash is the other half of the story: `crypto.pbkdf2` with a
// callback runs on libuv's thread pool, not on the loop. All the calls
// start at once; the pool (UV_THREADPOOL_SIZE threads, 4 unless the server
// set it before Node started) takes them in waves, and each finish is
// reported as it happens while the heartbeat keeps its pace.
//
// Run at home:  node main_thread.js '{"run":1,"spec":{"runtime":"node",
//   "model":{"kind":"main_thread"},"workload":{"kind":"primes","below":3000000},
//   "workers":1},"tick_ms":20,"calm_ms":300,"progress_every_ms":50}' 3>&1

const crypto = require('crypto');
const http = require('http');
const { monitorEventLoopDelay } = require('perf_hooks');
const {
  begin, startClock, emit, nowUs, nowMs, sleep, threadCpuUs, processCpuUs, tid, throttle, Share,
  runFinished,
} = require('./common');

async function main() {
  const plan = begin();
  startClock();
  const tickMs = plan.tick_ms ?? 20;
  const calmMs = plan.calm_ms ?? 300;
  const work = plan.spec.workload;

  // A tiny HTTP server the lab's server probes from outside: its answers
  // stop while the loop is blocked, like every other request would.
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/ping') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('pong');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  emit({ type: 'listening', port: server.address().port });

  // Node's own measure of the loop's delay, sampled every 10 ms.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();

  // The heartbeat: a timer that should fire every tick_ms. How late it
  // runs is how long the loop was busy with something else. Each tick is
  // scheduled from *now*, as a setTimeout chain does, so a stall shows up
  // as one late tick rather than a burst of catch-up ticks.
  let maxLagUs = 0;
  let timer = null;
  const schedule = () => {
    const due = performance.now() + tickMs;
    timer = setTimeout(() => {
      const lagUs = Math.max(0, Math.round((performance.now() - due) * 1000));
      maxLagUs = Math.max(maxLagUs, lagUs);
      emit({ type: 'heartbeat', at_ms: nowMs(), lag_us: lagUs });
      schedule();
    }, tickMs);
  };
  schedule();

  // A calm loop first, so the learner sees a steady pulse.
  await sleep(calmMs);

  // The "worker" is the main thread itself: nothing to start.
  emit({
    type: 'worker_spawned',
    worker: 0,
    start_latency_us: 0,
    pid: process.pid,
    tid: tid(),
    at_us: nowUs(),
  });
  const share = new Share(work, 0, 1);
  const progress = throttle(plan.progress_every_ms ?? 50, (done, total) =>
    emit({ type: 'progress', worker: 0, done, total }));
  const started = performance.now();
  const cpuBefore = (work.kind === 'pool_hash' ? processCpuUs : threadCpuUs)();
  let result;
  let cpuOf = threadCpuUs;
  if (work.kind === 'pool_hash') {
    // The hashing happens on the pool's threads, so count the process's
    // CPU, not just this thread's (which stays near zero).
    cpuOf = processCpuUs;
    result = await poolHash(work.calls, progress);
  } else if (work.kind === 'sleep') {
    // Waiting the Node way: each step awaits a timer, the loop stays free.
    result = await share.runAsync(progress);
  } else {
    // primes and sha256_chain compute synchronously; blocking_wait sleeps
    // in Atomics.wait. Either way the loop is frozen until this returns.
    result = share.run(progress);
  }
  const wallUs = Math.round((performance.now() - started) * 1000);
  const cpuUs = cpuOf() - cpuBefore;
  emit({
    type: 'worker_finished',
    worker: 0,
    wall_us: wallUs,
    cpu_us: cpuUs,
    memory: null,
    messages: null,
    result,
    at_us: nowUs(),
  });

  // Let the heartbeat beat calmly again before the end.
  await sleep(calmMs);
  clearTimeout(timer);
  delay.disable();

  // The histogram counts nanoseconds.
  const us = (ns) => Math.round(ns / 1000);
  emit({
    type: 'loop_delay',
    p50_us: us(delay.percentile(50)),
    p99_us: us(delay.percentile(99)),
    max_us: us(delay.max),
  });
  runFinished({ wall_us: wallUs, cpu_us: cpuUs, result, main_loop_lag_us: maxLagUs });
  // Open keep-alive connections would keep close() waiting: just leave.
  server.close();
  process.exit(0);
}

// One hash: PBKDF2-SHA512 at this many iterations takes ~70 ms of one core
// on the 2-core machine the site was measured on.
const POOL_HASH_ITERATIONS = 100000;

/**
 * Start `calls` asynchronous pbkdf2 hashes at once and resolve when all
 * are done, reporting each as it finishes (in µs since they were started).
 */
function poolHash(calls, progress) {
  const t0 = performance.now();
  let done = 0;
  return new Promise((resolve, reject) => {
    for (let task = 0; task < calls; task++) {
      crypto.pbkdf2('spawnlab', `salt-${task}`, POOL_HASH_ITERATIONS, 64, 'sha512', (err) => {
        if (err) {
          reject(err);
          return;
        }
        done += 1;
        emit({
          type: 'pool_task',
          task,
          finished_us: Math.round((performance.now() - t0) * 1000),
        });
        progress(done, calls);
        if (done === calls) resolve({ kind: 'hashed', calls });
      });
    }
  });
}

main();
