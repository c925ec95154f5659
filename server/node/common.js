'use strict';
// common.js — what every lab script shares.
//
// A learner reading the lab scripts should only see the model they are
// about; everything else lives here:
//
// - the event pipe: one JSON object per line on file descriptor 3, written
//   synchronously, so events still get out while a CPU-bound job blocks the
//   event loop (an async write would wait for the loop, i.e. for the job);
// - clocks, and CPU and memory readings from /proc (the same sources the
//   Rust engine reads, so the two runtimes' figures compare);
// - the workloads, cut into steps exactly as the Rust engine cuts them
//   (server/src/engine/catalogue.rs), so both runtimes compute the same
//   results bit for bit.

// Read first, before anything else loads: the time from process start to
// the top of the lab's script is the runtime's boot cost.
const BOOT_MS = performance.now();

const fs = require('fs');
const crypto = require('crypto');

// ---------------------------------------------------------------- the plan

let thePlan = null;

/** The plan the server passed as argv[2] (parsed once). */
function plan() {
  if (thePlan === null) thePlan = JSON.parse(process.argv[2]);
  return thePlan;
}

// ---------------------------------------------------------------- events

const EVENT_FD = 3;

/** Write one event line to fd 3, stamped with the plan's run id. */
function emit(event) {
  const line = JSON.stringify({ run: plan().run, ...event }) + '\n';
  fs.writeSync(EVENT_FD, line);
}

/**
 * Report a failure as the protocol's `error` event and exit 1. Any process
 * this script started goes with it: children and cluster workers leave when
 * their IPC channel closes, threads end with the process.
 */
function fail(err) {
  const message = err instanceof Error ? err.message : String(err);
  let run = null;
  try {
    run = plan().run;
  } catch (_) {
    // the plan itself was unreadable: the error names no run
  }
  try {
    fs.writeSync(
      EVENT_FD,
      JSON.stringify({ type: 'error', run, code: 'run_failed', field: null, message }) + '\n',
    );
  } catch (e) {
    // No event pipe: most likely run by hand without `3>&1`. Say so where
    // a person will see it.
    const hint = e.code === 'EBADF' ? ' (fd 3 is not open: run with 3>&1 to see the events)' : '';
    process.stderr.write(`${message}${hint}\n`);
  }
  process.exit(1);
}

/**
 * A lab script's first action: read the plan, say the runtime is up
 * (`runtime_ready`), and turn any uncaught error into an `error` event.
 * The caller starts the run clock right after (`startClock()`), except a
 * worker pool, which warms up first: its start-up is not the model's cost.
 */
function begin() {
  let p;
  try {
    p = plan();
  } catch (e) {
    fail(new Error(`the plan on argv[2] is not JSON: ${e.message}`));
  }
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  emit({
    type: 'runtime_ready',
    runtime: 'node',
    version: process.version,
    boot_us: Math.round(BOOT_MS * 1000),
    pid: process.pid,
  });
  return p;
}

// ---------------------------------------------------------------- clocks

let t0 = performance.now();

/** Start the run clock: `at_us` / `at_ms` count from here. */
function startClock() {
  t0 = performance.now();
}

/** Microseconds since `startClock()`. */
function nowUs() {
  return Math.max(0, Math.round((performance.now() - t0) * 1000));
}

/** Milliseconds since `startClock()`. */
function nowMs() {
  return Math.floor(nowUs() / 1000);
}

/** A monotonic nanosecond clock, for timing tiny things (round trips). */
function hrNs() {
  return process.hrtime.bigint();
}

/** Wait `ms` on a timer: the event loop stays free meanwhile. */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- readings

/** CPU time of the calling thread, in µs. Works in a Worker too: the kernel
 *  keeps a clock per thread, and /proc/thread-self is the caller's own. */
function threadCpuUs() {
  const text = fs.readFileSync('/proc/thread-self/schedstat', 'utf8');
  return Math.round(Number(text.split(' ')[0]) / 1000);
}

/** CPU time of the whole process (all its threads), user + system, in µs. */
function processCpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** This process's resident and anonymous memory, in bytes. */
function memory() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (name) => {
    const m = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss_bytes: kb('VmRSS'), anon_bytes: kb('RssAnon') };
}

/** The calling thread's kernel thread id (the main thread's equals the pid). */
function tid() {
  const link = fs.readlinkSync('/proc/thread-self'); // "PID/task/TID"
  return Number(link.slice(link.lastIndexOf('/') + 1));
}

/** CPU time of another process (user + system) from /proc/<pid>/stat, in
 *  µs, or null once it is gone. The kernel counts in ticks of 1/100 s. */
function cpuUsOfPid(pid) {
  let stat;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (_) {
    return null;
  }
  // The command name (field 2) may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return ticks * 10000;
}

/** Nearest-rank percentile of an ascending array (0 for an empty one). */
function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

/**
 * A progress reporter that passes on at most one report every `everyMs`,
 * and always the last one (done === total), so a progress bar ends full.
 */
function throttle(everyMs, send) {
  let last = -Infinity;
  return (done, total) => {
    const now = performance.now();
    if (done === total || now - last >= everyMs) {
      last = now;
      send(done, total);
    }
  };
}

// ---------------------------------------------------------------- workloads

// Steps a whole workload is cut into (catalogue.rs: STEPS_PER_WORKLOAD).
const STEPS_PER_WORKLOAD = 256;
// Longest single sleep step, in ms (catalogue.rs: SLEEP_STEP).
const SLEEP_STEP_MS = 10;

/** `total` cut into `parts` near-equal pieces; the first `total % parts`
 *  pieces are one larger. */
function splitEvenly(total, part, parts) {
  return Math.floor(total / parts) + (part < total % parts ? 1 : 0);
}

/** Largest r with r*r <= n. */
function isqrt(n) {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r -= 1;
  while ((r + 1) * (r + 1) <= n) r += 1;
  return r;
}

/** The primes up to and including `limit`, by a plain sieve: the divisors
 *  trial division needs (a few thousand at most). */
function smallPrimes(limit) {
  const composite = new Uint8Array(limit + 1);
  const primes = [];
  for (let i = 2; i <= limit; i++) {
    if (!composite[i]) {
      primes.push(i);
      for (let j = i * i; j <= limit; j += i) composite[j] = 1;
    }
  }
  return Int32Array.from(primes);
}

/** Count the primes in [lo, hi) by trial division. Deliberately CPU-bound:
 *  this is the kind of loop that freezes an event loop. */
function countPrimesIn(lo, hi, divisors) {
  let count = 0;
  for (let n = Math.max(lo, 2); n < hi; n++) {
    let prime = true;
    for (let i = 0; i < divisors.length; i++) {
      const p = divisors[i];
      if (p * p > n) break;
      if (n % p === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest();

/** The first state of worker `w`'s chain: SHA-256 of "spawnlab:<w>". */
function chainSeed(w) {
  return sha256(`spawnlab:${w}`);
}

/** Hash `state` `rounds` times, each round hashing the previous digest. */
function sha256Rounds(state, rounds) {
  for (let i = 0; i < rounds; i++) state = sha256(state);
  return state;
}

/**
 * One worker's part of a workload: worker `worker` of `workers`.
 *
 * The workload is cut into steps dealt out like cards (worker i takes steps
 * i, i+n, i+2n, …), so the expensive high primes spread evenly instead of
 * landing on the last worker; progress is reported after each step.
 *
 * `work` is the protocol's workload: {kind:'primes', below},
 * {kind:'sha256_chain', rounds}, {kind:'sleep', ms} or
 * {kind:'blocking_wait', ms} (a sleep that blocks the thread).
 */
class Share {
  constructor(work, worker, workers) {
    this.work = work;
    this.workers = Math.max(1, workers);
    this.worker = Math.min(worker, this.workers - 1);
  }

  /** Steps of the whole workload, across all workers. */
  stepCount() {
    const { work, worker, workers } = this;
    switch (work.kind) {
      case 'primes':
        return Math.max(1, Math.min(STEPS_PER_WORKLOAD, work.below));
      case 'sha256_chain': {
        const mine = splitEvenly(work.rounds, worker, workers);
        const per = Math.floor(STEPS_PER_WORKLOAD / workers);
        return Math.min(Math.max(per, 1), Math.max(mine, 1)) * workers;
      }
      case 'sleep':
      case 'blocking_wait': {
        const mine = splitEvenly(work.ms, worker, workers);
        return Math.max(1, Math.ceil(mine / SLEEP_STEP_MS)) * workers;
      }
      default:
        throw new Error(`${work.kind} is not a workload a worker computes`);
    }
  }

  /** The step indices this worker owns. */
  mySteps() {
    const count = this.stepCount();
    const steps = [];
    for (let s = this.worker; s < count; s += this.workers) steps.push(s);
    return steps;
  }

  /** How many steps this worker reports progress for. */
  totalSteps() {
    return this.mySteps().length;
  }

  /** The work as a list of step functions, each returning nothing; the
   *  result is read from `finish()` afterwards. Shared by the sync and
   *  async runners so they cannot drift apart. */
  steps() {
    const { work, worker, workers } = this;
    if (work.kind === 'primes') {
      // B ≤ 50,000,000 and steps ≤ 256: B*s stays far below 2^53, so plain
      // Numbers and Math.floor give exactly the Rust engine's integer edges.
      const below = work.below;
      const steps = this.stepCount();
      const divisors = smallPrimes(isqrt(below));
      const edge = (s) => Math.floor((below * s) / steps);
      let count = 0;
      return {
        steps: this.mySteps().map((s) => () => {
          count += countPrimesIn(edge(s), edge(s + 1), divisors);
        }),
        finish: () => ({ kind: 'primes', count }),
      };
    }
    if (work.kind === 'sha256_chain') {
      const mine = splitEvenly(work.rounds, worker, workers);
      const total = this.totalSteps();
      let state = chainSeed(this.worker);
      const steps = [];
      for (let d = 0; d < total; d++) {
        steps.push(() => {
          state = sha256Rounds(state, splitEvenly(mine, d, total));
        });
      }
      return {
        steps,
        finish: () => ({ kind: 'sha256_chain', digests: [state.toString('hex')] }),
      };
    }
    throw new Error(`${work.kind} has no compute steps`);
  }

  /** My part of a sleep, in ms. */
  sleepMs() {
    return splitEvenly(this.work.ms, this.worker, this.workers);
  }

  /**
   * Compute synchronously (primes, sha256_chain, or a blocking sleep):
   * nothing else runs on this thread's event loop until it returns.
   * `progress(done, total)` is called after each step.
   */
  run(progress = () => {}) {
    if (this.work.kind === 'sleep' || this.work.kind === 'blocking_wait') {
      return this.runBlocking(progress);
    }
    const { steps, finish } = this.steps();
    steps.forEach((step, i) => {
      step();
      progress(i + 1, steps.length);
    });
    return finish();
  }

  /**
   * Sleep by blocking the thread: `Atomics.wait` on a tiny shared buffer
   * nobody ever notifies. It uses no CPU, yet on the main thread the event
   * loop is frozen for as long as it lasts — timers, I/O, everything.
   */
  runBlocking(progress = () => {}) {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    return this.sleepSteps(progress, (ms) => {
      Atomics.wait(cell, 0, 0, ms);
    });
  }

  /**
   * Do the work without holding the event loop for more than one step:
   * a sleep awaits a timer per step (the loop is free meanwhile), compute
   * steps yield to the loop between steps, so messages and a closed IPC
   * channel are still noticed.
   */
  async runAsync(progress = () => {}) {
    if (this.work.kind === 'sleep') {
      return this.sleepSteps(progress, (ms) => sleep(ms));
    }
    if (this.work.kind === 'blocking_wait') return this.runBlocking(progress);
    const { steps, finish } = this.steps();
    for (let i = 0; i < steps.length; i++) {
      steps[i]();
      progress(i + 1, steps.length);
      await new Promise(setImmediate);
    }
    return finish();
  }

  /** The sleep loop shared by both kinds of waiting; `wait(ms)` may return
   *  a promise (awaited) or block (then the whole loop runs synchronously). */
  sleepSteps(progress, wait) {
    const mine = this.sleepMs();
    const total = this.totalSteps();
    const started = performance.now();
    const left = () => mine - (performance.now() - started);
    const result = () => ({ kind: 'slept', ms: Math.floor(performance.now() - started) });
    let done = 0;
    // One step: wait at most SLEEP_STEP_MS; the last step waits out the rest,
    // since timers may fire a fraction of a millisecond early.
    const step = () => {
      const last = done + 1 === total;
      const ms = last ? left() : Math.min(left(), SLEEP_STEP_MS);
      return ms > 0 ? wait(ms) : undefined;
    };
    const after = () => {
      if (done + 1 === total && left() > 0) return false; // woke early: again
      done += 1;
      progress(done, total);
      return true;
    };
    // Run synchronously while `wait` blocks; switch to async as soon as it
    // hands back a promise.
    while (done < total) {
      const pending = step();
      if (pending && typeof pending.then === 'function') {
        return (async () => {
          await pending;
          after();
          while (done < total) {
            await step();
            after();
          }
          return result();
        })();
      }
      after();
    }
    return result();
  }
}

/** Put the workers' results together, in worker order (catalogue.rs's
 *  `combine`: counts add up, digests line up, mismatches are incomplete). */
function combine(results) {
  if (results.length === 0) return { kind: 'incomplete' };
  return results.slice(1).reduce((acc, next) => {
    if (acc.kind !== next.kind) return { kind: 'incomplete' };
    switch (acc.kind) {
      case 'primes':
        return { kind: 'primes', count: acc.count + next.count };
      case 'sha256_chain':
        return { kind: 'sha256_chain', digests: acc.digests.concat(next.digests) };
      case 'slept':
        return { kind: 'slept', ms: acc.ms + next.ms };
      case 'requests':
        return { kind: 'requests', served: acc.served + next.served };
      default:
        return { kind: 'incomplete' };
    }
  }, results[0]);
}

/** Say the run is over: `summary`, with what a model has no figure for
 *  (baseline, speedup, loop lag) left null. */
function runFinished(summary) {
  emit({
    type: 'run_finished',
    summary: {
      outcome: 'completed',
      baseline_wall_us: null,
      speedup: null,
      main_loop_lag_us: null,
      ...summary,
    },
  });
}

/** The same job on one worker, when the pass had more (`runOne` runs it):
 *  its wall time, or the pass's own for a pass of one. The speedup is
 *  measured, not assumed. */
async function baselineWallUs(workers, pass, runOne) {
  if (workers <= 1) return pass.wallUs;
  emit({ type: 'baseline_started' });
  const one = await runOne();
  emit({ type: 'baseline_finished', wall_us: one.wallUs, cpu_us: one.cpuUs });
  return one.wallUs;
}

/** A pass of CPU-bound workers in a summary, against its baseline. */
function passSummary(pass, baselineUs) {
  return {
    wall_us: pass.wallUs,
    cpu_us: pass.cpuUs,
    result: combine(pass.results),
    baseline_wall_us: baselineUs,
    speedup: pass.wallUs > 0 ? baselineUs / pass.wallUs : null,
  };
}

module.exports = {
  plan,
  runFinished,
  baselineWallUs,
  passSummary,
  emit,
  fail,
  begin,
  startClock,
  nowUs,
  nowMs,
  hrNs,
  sleep,
  threadCpuUs,
  processCpuUs,
  memory,
  tid,
  cpuUsOfPid,
  percentile,
  throttle,
  Share,
  combine,
  // exported for the tests
  splitEvenly,
  isqrt,
  chainSeed,
  sha256Rounds,
};
