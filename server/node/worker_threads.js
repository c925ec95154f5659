'use strict';
// worker_threads.js — the job split across Worker threads.
//
// What it shows a learner:
//
// - what a Worker costs to start (`new Worker()` → its first message) and
//   in memory (each has its own V8 isolate and event loop), against handing
//   a task to a pool of Workers started in advance, as Node's docs advise;
// - two ways to hear back: `postMessage` (every value copied; the parent
//   counts the messages) or a `SharedArrayBuffer` written with `Atomics`
//   that the parent polls (no messages at all);
// - the speedup, measured: the same job on one Worker afterwards.
//
// Run at home:  node worker_threads.js '{"run":1,"spec":{"runtime":"node",
//   "model":{"kind":"threads","strategy":"spawn","sharing":"messages"},
//   "workload":{"kind":"primes","below":3000000},"workers":2},
//   "progress_every_ms":50}' 3>&1

const path = require('path');
const { Worker } = require('worker_threads');
const {
  begin, startClock, emit, fail, nowUs, hrNs, sleep, memory, throttle,
  runFinished, baselineWallUs, passSummary,
} = require('./common');
const { Slot, ROW_SLOTS } = require('./worker_threads_worker');

const WORKER_FILE = path.join(__dirname, 'worker_threads_worker.js');
const BOARD_POLL_MS = 5;

const plan = begin();
const strategy = plan.spec.model.strategy || 'spawn';
const sharing = plan.spec.model.sharing || 'messages';
const workers = plan.spec.workers;
const work = plan.spec.workload;
const progressEveryMs = plan.progress_every_ms ?? 50;

// Every Worker this script started, to end them all at the end.
const started = [];
let ending = false;

/** Start a Worker; `pooled` ones are meant to stay until the end. */
function newWorker(options, { pooled = false } = {}) {
  const worker = new Worker(WORKER_FILE, options);
  // An exception in a Worker arrives here; the run cannot go on without it.
  worker.on('error', (err) => fail(`a worker thread failed: ${err.message}`));
  // A spawned Worker ends by itself once its task is done (code 0); a pool
  // Worker should not end before we end it.
  worker.once('exit', (code) => {
    if (!ending && (code !== 0 || pooled)) fail(`a worker thread exited with code ${code}`);
  });
  started.push(worker);
  return worker;
}

/** A pool: `size` Workers started, loaded and warmed up before any task
 *  exists. Each raises its flag in `loaded` once it has run its script and
 *  handled a first message. */
async function startPool(size) {
  const loaded = new SharedArrayBuffer(size * 4);
  const flags = new Int32Array(loaded);
  const pool = [];
  for (let i = 0; i < size; i++) {
    const worker = newWorker(undefined, { pooled: true });
    worker.postMessage({ type: 'warm_up', loaded, index: i });
    pool.push(worker);
  }
  while (!flags.every((_, i) => Atomics.load(flags, i) === 1)) await sleep(1);
  return pool;
}

/**
 * One pass: the job on `n` workers. `live` passes report every worker
 * (worker_spawned, progress, worker_finished); the baseline reports nothing.
 * Resolves with the pass's wall time, CPU time and results.
 */
function runPass(n, { live, pool, memBefore }) {
  return new Promise((resolve) => {
    const board = sharing === 'shared_memory'
      ? new SharedArrayBuffer(n * ROW_SLOTS * 8)
      : null;
    const state = [];
    let ready = 0;
    let finished = 0;
    let perWorkerMemory = null;
    const pendingFinishes = [];

    const onReady = (i, latencyUs, tid) => {
      if (live) {
        emit({
          type: 'worker_spawned',
          worker: i,
          start_latency_us: latencyUs,
          pid: process.pid,
          tid,
          at_us: nowUs(),
        });
      }
      ready += 1;
      if (ready === n && memBefore) {
        // Threads share the process: what one costs is the process's
        // growth since before the first Worker, split between them.
        const after = memory();
        const grown = (key) => Math.max(0, Math.round((after[key] - memBefore[key]) / n));
        perWorkerMemory = { rss_bytes: grown('rss_bytes'), anon_bytes: grown('anon_bytes') };
        pendingFinishes.splice(0).forEach((f) => f());
      }
    };

    const onDone = (i, { result, cpuUs, doneAt, messages }) => {
      const s = state[i];
      Object.assign(s, { result, cpuUs, doneAt });
      const report = () => {
        if (live) {
          emit({
            type: 'worker_finished',
            worker: i,
            wall_us: Math.round((doneAt - s.startedAt) * 1000),
            cpu_us: cpuUs,
            memory: perWorkerMemory,
            messages,
            result,
            at_us: nowUs(),
          });
        }
        finished += 1;
        if (finished === n) {
          clearInterval(poller);
          const first = Math.min(...state.map((st) => st.startedAt));
          const last = Math.max(...state.map((st) => st.doneAt));
          resolve({
            wallUs: Math.round((last - first) * 1000),
            cpuUs: state.reduce((sum, st) => sum + st.cpuUs, 0),
            results: state.map((st) => st.result),
          });
        }
      };
      // Memory is read once every worker is up; a very quick worker may
      // finish before that, so its report waits for the reading.
      if (perWorkerMemory === null && memBefore) pendingFinishes.push(report);
      else report();
    };

    for (let i = 0; i < n; i++) {
      const task = {
        work, worker: i, workers: n, sharing, progress_every_ms: progressEveryMs, board, row: i,
      };
      const s = { startedAt: performance.now(), startedNs: hrNs(), messages: 0 };
      state.push(s);
      if (pool) {
        // Hand-off: the pool Worker is already running and waiting.
        s.worker = pool[i];
        s.worker.postMessage({ type: 'task', task });
      } else {
        s.worker = newWorker({ workerData: { task } });
      }
      if (sharing === 'messages') {
        const onMessage = (msg) => {
          s.messages += 1;
          if (msg.type === 'ready') {
            onReady(i, Math.round((performance.now() - s.startedAt) * 1000), msg.tid);
          } else if (msg.type === 'progress') {
            if (live) emit({ type: 'progress', worker: i, done: msg.done, total: msg.total });
          } else if (msg.type === 'done') {
            // A pool Worker stays; this pass stops listening to it.
            s.worker.off('message', onMessage);
            onDone(i, {
              result: msg.result,
              cpuUs: msg.cpu_us,
              doneAt: performance.now(),
              messages: s.messages,
            });
          }
        };
        s.worker.on('message', onMessage);
      }
    }

    // Shared memory: nobody sends anything; read the board every few ms.
    let poller = null;
    if (board) {
      const rows = state.map((_, i) => new BigInt64Array(board, i * ROW_SLOTS * 8, ROW_SLOTS));
      // The workers stamp times with process.hrtime, the monotonic clock
      // every thread of the process shares: ms since worker i's start.
      const sinceStart = (i, ns) => Math.max(0, Number(ns - state[i].startedNs) / 1e6);
      const progress = state.map((_, i) => throttle(progressEveryMs, (done, total) =>
        emit({ type: 'progress', worker: i, done, total })));
      poller = setInterval(() => {
        state.forEach((s, i) => {
          const row = rows[i];
          const get = (slot) => Atomics.load(row, slot);
          if (s.finished || get(Slot.READY) !== 1n) return;
          if (!s.ready) {
            s.ready = true;
            s.total = Number(get(Slot.TOTAL));
            s.done = 0;
            const latencyUs = Math.round(sinceStart(i, get(Slot.READY_AT_NS)) * 1000);
            onReady(i, latencyUs, Number(get(Slot.TID)));
          }
          // A spawned Worker says it is ready before it has loaded the
          // workload's code, so its total of steps may come a little later.
          if (!s.total) s.total = Number(get(Slot.TOTAL));
          const isFinished = get(Slot.FINISHED) === 1n;
          const done = Number(get(Slot.DONE));
          if (done > s.done && s.total > 0) {
            s.done = done;
            if (live) progress[i](done, s.total);
          }
          if (!isFinished) return;
          s.finished = true;
          let result;
          if (work.kind === 'sha256_chain') {
            const bytes = new Uint8Array(board, (i * ROW_SLOTS + Slot.RESULT) * 8, 32);
            const digest = Buffer.from(bytes.map((_, k) => Atomics.load(bytes, k)));
            result = { kind: 'sha256_chain', digests: [digest.toString('hex')] };
          } else {
            const value = Number(get(Slot.RESULT));
            result = work.kind === 'primes'
              ? { kind: 'primes', count: value }
              : { kind: 'slept', ms: value };
          }
          onDone(i, {
            result,
            cpuUs: Number(get(Slot.CPU_US)),
            doneAt: s.startedAt + sinceStart(i, get(Slot.FINISHED_AT_NS)),
            messages: 0,
          });
        });
      }, BOARD_POLL_MS);
    }
  });
}

async function main() {
  // Before any Worker exists, so the growth is theirs.
  const memBefore = memory();
  // A pool is there before the work arrives: its warm-up is not counted.
  const pool = strategy === 'pool' ? await startPool(workers) : null;
  startClock();

  const pass = await runPass(workers, { live: true, pool, memBefore });

  // The same job on one worker of the same kind.
  const baseline = await baselineWallUs(workers, pass, () => runPass(1, { live: false, pool, memBefore: null }));
  runFinished(passSummary(pass, baseline));
  ending = true;
  await Promise.all(started.map((w) => w.terminate()));
  process.exit(0);
}

main();
