'use strict';
// child_process.js — the job split across forked child processes, or an
// external program run with execFile.
//
// What it shows a learner:
//
// - `fork()` starts a whole new `node` process: slower to start and
//   heavier in memory than a Worker, but fully isolated (a crash or a
//   leak stays in the child);
// - messages over the IPC channel are serialized and cross a pipe: the
//   ping-pongs measure that round trip, as JSON (the default) or with
//   `serialization: 'advanced'` (structured clone);
// - `execFile()` runs a program directly from an argument vector, never
//   through a shell, so nothing in an argument can become a command.
//
// Run at home:  node child_process.js '{"run":1,"spec":{"runtime":"node",
//   "model":{"kind":"child_process","round_trips":100,"serialization":"json"},
//   "workload":{"kind":"primes","below":3000000},"workers":2},
//   "progress_every_ms":50}' 3>&1

const path = require('path');
const { fork, execFile } = require('child_process');
const {
  begin, startClock, emit, fail, nowUs, hrNs, cpuUsOfPid, percentile, combine,
  runFinished, baselineWallUs, passSummary,
} = require('./common');

const CHILD_FILE = path.join(__dirname, 'child_process_child.js');
// Most bytes of a program's output that are kept (stdout, then stderr).
const OUTPUT_CAP = 4096;
// execFile buffers what a program prints and stops it beyond this; the
// allow-listed programs print a few hundred bytes.
const MAX_BUFFER = 1024 * 1024;
// How often a running program's CPU time is read from /proc.
const CPU_POLL_MS = 5;

const plan = begin();
startClock();
const roundTrips = plan.spec.model.round_trips ?? 0;
const serialization = plan.spec.model.serialization || 'json';
const workers = plan.spec.workers;
const work = plan.spec.workload;
const progressEveryMs = plan.progress_every_ms ?? 50;

/** Time `count` ping-pongs with one child, one at a time. */
async function pingPong(child, count, nextPong) {
  const samples = [];
  for (let seq = 0; seq < count; seq++) {
    const sent = hrNs();
    child.send({ type: 'ping', seq });
    await nextPong();
    samples.push(Number(hrNs() - sent));
  }
  return samples.sort((a, b) => a - b);
}

/**
 * One pass: `n` children, each forked, pinged `pings` times, then given its
 * share. `live` passes report every child; the baseline reports nothing.
 * Resolves once every child has reported and exited.
 */
function runPass(n, { live, pings }) {
  return new Promise((resolve) => {
    const state = [];
    let settled = 0;
    const maybeResolve = () => {
      settled += 1;
      if (settled < 2 * n) return; // a 'done' and an 'exit' per child
      const first = Math.min(...state.map((s) => s.startedAt));
      const last = Math.max(...state.map((s) => s.doneAt));
      resolve({
        wallUs: Math.round((last - first) * 1000),
        cpuUs: state.reduce((sum, s) => sum + s.cpuUs, 0),
        results: state.map((s) => s.result),
      });
    };

    for (let i = 0; i < n; i++) {
      const s = { startedAt: performance.now(), doneAt: null };
      state.push(s);
      const child = fork(CHILD_FILE, [], {
        serialization,
        // The child's stdout and stderr are ours; fd 3 is the IPC channel.
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      let pongWaiter = null;
      const nextPong = () => new Promise((r) => { pongWaiter = r; });

      child.on('error', (err) => fail(`child ${i}: ${err.message}`));
      child.on('exit', (code, signal) => {
        if (s.doneAt === null) {
          fail(`child ${i} (pid ${child.pid}) ended by ${signal || `exit code ${code}`} before it finished`);
        }
        maybeResolve();
      });
      child.on('message', async (msg) => {
        if (msg.type === 'ready') {
          const latencyUs = Math.round((performance.now() - s.startedAt) * 1000);
          if (live) {
            emit({
              type: 'worker_spawned',
              worker: i,
              start_latency_us: latencyUs,
              pid: child.pid,
              tid: null,
              at_us: nowUs(),
            });
          }
          if (pings > 0) {
            const rtt = await pingPong(child, pings, nextPong);
            if (live) {
              emit({
                type: 'round_trips',
                worker: i,
                count: pings,
                p50_ns: percentile(rtt, 50),
                p99_ns: percentile(rtt, 99),
                max_ns: rtt[rtt.length - 1],
                at_us: nowUs(),
              });
            }
          }
          child.send({
            type: 'work', work, worker: i, workers: n, progress_every_ms: progressEveryMs,
          });
        } else if (msg.type === 'failed') {
          fail(`child ${i} (pid ${child.pid}) failed: ${msg.message}`);
        } else if (msg.type === 'pong') {
          pongWaiter();
        } else if (msg.type === 'progress') {
          if (live) emit({ type: 'progress', worker: i, done: msg.done, total: msg.total });
        } else if (msg.type === 'done') {
          s.doneAt = performance.now();
          s.cpuUs = msg.cpu_us;
          s.result = msg.result;
          if (live) {
            emit({
              type: 'worker_finished',
              worker: i,
              wall_us: Math.round((s.doneAt - s.startedAt) * 1000),
              cpu_us: msg.cpu_us,
              memory: msg.memory,
              messages: null,
              result: msg.result,
              at_us: nowUs(),
            });
          }
          maybeResolve();
        }
      });
    }
  });
}

/** Run the allow-listed program once as worker `i`. */
function runProgram(i, file, args) {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let cpuUs = 0;
    let poll = null;
    const child = execFile(file, args, { encoding: 'buffer', maxBuffer: MAX_BUFFER },
      (err, stdout, stderr) => {
        clearInterval(poll);
        const doneAt = performance.now();
        let result;
        if (err && typeof err.code === 'string' && !child.pid) {
          // It never started: ENOENT means there is no such program here.
          result = {
            kind: 'program',
            exit_code: null,
            output: err.code === 'ENOENT'
              ? `${file} is not installed on this server`
              : `${file} could not be started: ${err.message}`,
            truncated: false,
          };
        } else {
          const all = Buffer.concat([stdout, stderr]);
          result = {
            kind: 'program',
            exit_code: child.exitCode, // null when a signal ended it
            output: all.subarray(0, OUTPUT_CAP).toString('utf8'),
            truncated: all.length > OUTPUT_CAP
              || (err !== null && err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'),
          };
        }
        const wallUs = Math.round((doneAt - startedAt) * 1000);
        emit({
          type: 'worker_finished',
          worker: i,
          wall_us: wallUs,
          cpu_us: cpuUs,
          memory: null,
          messages: null,
          result,
          at_us: nowUs(),
        });
        resolve({ startedAt, doneAt, cpuUs, result });
      });
    child.on('spawn', () => {
      emit({
        type: 'worker_spawned',
        worker: i,
        start_latency_us: Math.round((performance.now() - startedAt) * 1000),
        pid: child.pid,
        tid: null,
        at_us: nowUs(),
      });
      // The program's own CPU time, from /proc while it runs: once it has
      // exited and been reaped, there is nothing left to read.
      const read = () => {
        const us = cpuUsOfPid(child.pid);
        if (us !== null) cpuUs = us;
      };
      read();
      poll = setInterval(read, CPU_POLL_MS);
    });
  });
}

async function main() {
  if (work.kind === 'program') {
    const { file, args } = plan.program;
    const runs = [];
    for (let i = 0; i < workers; i++) runs.push(runProgram(i, file, args));
    const done = await Promise.all(runs);
    const first = Math.min(...done.map((d) => d.startedAt));
    const last = Math.max(...done.map((d) => d.doneAt));
    runFinished({
      wall_us: Math.round((last - first) * 1000),
      cpu_us: done.reduce((sum, d) => sum + d.cpuUs, 0),
      result: combine(done.map((d) => d.result)),
    });
    process.exit(0);
  }

  const pass = await runPass(workers, { live: true, pings: roundTrips });
  // The same job in one child.
  const baseline = await baselineWallUs(workers, pass, () => runPass(1, { live: false, pings: 0 }));
  runFinished(passSummary(pass, baseline));
  process.exit(0);
}

main();
