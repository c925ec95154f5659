'use strict';
// worker_threads_worker.js — the code that runs inside each Worker.
//
// What it shows a learner: a Worker is a second JavaScript thread with its
// own event loop and heap, in the same process. It talks to its parent in
// one of two ways:
//
// - messages: `parentPort.postMessage()`, each value copied (structured
//   clone) and queued for the parent's event loop;
// - shared memory: a `SharedArrayBuffer` both threads see, written with
//   `Atomics.store` — no copies and no messages at all; the parent reads
//   it when it likes (it polls).
//
// A spawned Worker gets its task in `workerData` and does it at once; a
// pool Worker waits for tasks on `parentPort` and stays for the next one.

const { parentPort, workerData } = require('worker_threads');

// One row of the shared board per worker: 64-bit slots, then the result.
// worker_threads.js reads the same layout.
const Slot = {
  READY: 0, // 1 once the worker has its task
  READY_AT_NS: 1, // when, by process.hrtime (one monotonic clock for all threads)
  TID: 2,
  DONE: 3, // steps done …
  TOTAL: 4, // … of this many
  CPU_US: 5, // the thread's CPU time for the task
  FINISHED_AT_NS: 6,
  RESULT: 7, // primes count or slept ms; a digest takes 4 slots (32 bytes)
  FINISHED: 11, // 1 once everything above is written: written last
};
const ROW_SLOTS = 12;

// A spawned Worker's first word comes before it loads anything else (the
// workloads live in common.js): the parent times spawn → first message,
// which is what starting a Worker costs, not what loading our code costs.
let greeted = false;
function greet(task) {
  const ownTid = Number(require('fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (task.sharing === 'messages') {
    parentPort.postMessage({ type: 'ready', tid: ownTid });
  } else {
    const slots = new BigInt64Array(task.board, task.row * ROW_SLOTS * 8, ROW_SLOTS);
    Atomics.store(slots, Slot.TID, BigInt(ownTid));
    Atomics.store(slots, Slot.READY_AT_NS, process.hrtime.bigint());
    Atomics.store(slots, Slot.READY, 1n); // last: a reader that sees READY sees the rest
  }
  greeted = true;
}

/** Do one task and report through messages or the shared board. */
async function perform(task) {
  const { Share, threadCpuUs, tid, hrNs, throttle } = require('./common');
  const { work, worker, workers, sharing, progress_every_ms: every, row } = task;
  const share = new Share(work, worker, workers);
  const alreadyGreeted = greeted;
  greeted = false;

  if (sharing === 'messages') {
    if (!alreadyGreeted) parentPort.postMessage({ type: 'ready', tid: tid() });
    const cpuBefore = threadCpuUs();
    // Every message is a copy queued for the parent: throttled here, so the
    // count the parent reports is what really crossed.
    const progress = throttle(every, (done, total) =>
      parentPort.postMessage({ type: 'progress', done, total }));
    const result = work.kind === 'sleep' ? await share.runAsync(progress) : share.run(progress);
    parentPort.postMessage({ type: 'done', result, cpu_us: threadCpuUs() - cpuBefore });
    return;
  }

  // Shared memory: write our row with Atomics; post nothing.
  const slots = new BigInt64Array(task.board, row * ROW_SLOTS * 8, ROW_SLOTS);
  const put = (slot, value) => Atomics.store(
    slots, slot, typeof value === 'bigint' ? value : BigInt(Math.round(value)),
  );
  put(Slot.TOTAL, share.totalSteps());
  if (!alreadyGreeted) {
    put(Slot.TID, tid());
    put(Slot.READY_AT_NS, hrNs());
    put(Slot.READY, 1); // after the rest: a reader that sees READY sees them
  }
  const cpuBefore = threadCpuUs();
  // Writing a number to shared memory costs next to nothing: every step.
  const progress = (done) => put(Slot.DONE, done);
  const result = work.kind === 'sleep' ? await share.runAsync(progress) : share.run(progress);
  put(Slot.CPU_US, threadCpuUs() - cpuBefore);
  if (result.kind === 'sha256_chain') {
    const bytes = new Uint8Array(task.board, (row * ROW_SLOTS + Slot.RESULT) * 8, 32);
    Buffer.from(result.digests[0], 'hex').forEach((b, i) => Atomics.store(bytes, i, b));
  } else {
    put(Slot.RESULT, result.kind === 'primes' ? result.count : result.ms);
  }
  put(Slot.FINISHED_AT_NS, hrNs());
  put(Slot.FINISHED, 1);
}

module.exports = { Slot, ROW_SLOTS };

// Loaded as a Worker (not required by the parent for the layout above).
if (parentPort) {
  if (workerData && workerData.task) {
    // spawn: the task came with the Worker; the thread ends when it is done.
    greet(workerData.task);
    perform(workerData.task);
  } else {
    // pool: wait for tasks; the 'message' listener keeps the thread alive.
    parentPort.on('message', (msg) => {
      if (msg.type === 'task') {
        perform(msg.task);
      } else if (msg.type === 'warm_up') {
        // A pool that has been around has handled messages before (the
        // first one a Worker receives is markedly slower). Answer through a
        // flag rather than a message: warming up is not part of any task.
        const flags = new Int32Array(msg.loaded);
        Atomics.store(flags, msg.index, 1);
      }
    });
  }
}
