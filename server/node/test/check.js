'use strict';
// test/check.js — runs every lab script for real and checks what it says.
//
//   node server/node/test/check.js          (or: bash server/node/test/run.sh)
//
// Each script is started as the server starts it: `node <script> '<plan>'`
// with fd 3 a pipe for the events and stdin a pipe for commands. The
// harness checks every event line against the protocol's shapes
// (app/protocol/src/lib.rs), the results against known answers, the
// behaviour each lab is about (a frozen or a free loop, respawns), and
// that nothing is printed on stdout and no process is left behind.

const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const DIR = path.join(__dirname, '..');
const common = require(path.join(DIR, 'common.js'));

const CHAIN_0_1000 = 'b5c6dbf0ba223224e48d88bdba4af91377f904c1a5f3365a47265e8827962694';

// ------------------------------------------------------------ event shapes

const u64 = (v) => Number.isInteger(v) && v >= 0;
const i32 = (v) => Number.isInteger(v);
const nullable = (check) => (v) => v === null || check(v);
const str = (v) => typeof v === 'string';
const num = (v) => typeof v === 'number' && Number.isFinite(v);

function isMemory(m) {
  return m !== null && typeof m === 'object' && u64(m.rss_bytes) && u64(m.anon_bytes);
}

function isResult(r) {
  if (r === null || typeof r !== 'object') return false;
  switch (r.kind) {
    case 'primes': return u64(r.count);
    case 'sha256_chain': return Array.isArray(r.digests) && r.digests.every((d) => /^[0-9a-f]{64}$/.test(d));
    case 'slept': return u64(r.ms);
    case 'program': return nullable(i32)(r.exit_code) && str(r.output) && typeof r.truncated === 'boolean';
    case 'requests': return u64(r.served);
    case 'hashed': return u64(r.calls);
    case 'incomplete': return true;
    default: return false;
  }
}

function isSummary(s) {
  return s !== null && typeof s === 'object'
    && ['completed', 'cancelled', 'deadline_exceeded', 'failed'].includes(s.outcome)
    && u64(s.wall_us) && u64(s.cpu_us) && isResult(s.result)
    && nullable(u64)(s.baseline_wall_us) && nullable(num)(s.speedup)
    && nullable(u64)(s.main_loop_lag_us);
}

// Every field each event must have, and what it must hold.
const SHAPES = {
  runtime_ready: { runtime: (v) => v === 'node', version: str, boot_us: u64, pid: u64 },
  listening: { port: (v) => u64(v) && v > 0 && v < 65536 },
  loop_delay: { p50_us: u64, p99_us: u64, max_us: u64 },
  worker_spawned: {
    worker: u64, start_latency_us: u64, pid: u64, tid: nullable(u64), at_us: nullable(u64),
  },
  progress: { worker: u64, done: u64, total: u64 },
  round_trips: {
    worker: u64, count: u64, p50_ns: u64, p99_ns: u64, max_ns: u64, at_us: nullable(u64),
  },
  heartbeat: { at_ms: u64, lag_us: u64 },
  pool_task: { task: u64, finished_us: u64 },
  worker_finished: {
    worker: u64,
    wall_us: u64,
    cpu_us: u64,
    memory: nullable(isMemory),
    messages: nullable(u64),
    result: isResult,
    at_us: nullable(u64),
  },
  baseline_started: {},
  baseline_finished: { wall_us: u64, cpu_us: u64 },
  worker_exited: {
    worker: u64, pid: u64, signal: nullable(i32), exit_code: nullable(i32), at_ms: u64,
  },
  worker_respawned: { worker: u64, pid: u64, downtime_us: u64, at_ms: u64 },
  run_finished: { summary: isSummary },
  error: {
    code: (v) => v === 'run_failed', field: (v) => v === null, message: str,
  },
};

/** Check one parsed event: its type, its run, its fields, its worker. */
function checkShape(ev, run, workers) {
  const shape = SHAPES[ev.type];
  assert.ok(shape, `unknown event type ${ev.type}`);
  assert.strictEqual(ev.run, run, `${ev.type} names run ${ev.run}`);
  for (const [field, ok] of Object.entries(shape)) {
    assert.ok(field in ev, `${ev.type} lacks ${field}: ${JSON.stringify(ev)}`);
    assert.ok(ok(ev[field]), `${ev.type}.${field} is wrong: ${JSON.stringify(ev)}`);
  }
  if ('worker' in ev) assert.ok(ev.worker < workers, `worker ${ev.worker} out of range`);
}

// ------------------------------------------------------------ running

let nextRun = 100;

/**
 * Start `script` with a plan, read its events from fd 3. `onEvent(ev, ctl)`
 * may act on the run (ctl.child, ctl.stdin). Resolves when it exits.
 */
function runScript(script, planFields, { onEvent = () => {}, timeoutMs = 20000, env = {} } = {}) {
  const run = nextRun++;
  const plan = {
    run, tick_ms: 20, calm_ms: 150, progress_every_ms: 50, ...planFields,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(DIR, script), JSON.stringify(plan)], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const events = [];
    const ctl = {
      child,
      stdin: child.stdin,
      events,
      fail: (e) => {
        child.kill('SIGKILL');
        reject(e);
      },
    };
    let stdout = '';
    let stderr = '';
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} run ${run} timed out; events: ${events.map((e) => e.type).join(' ')}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdio[3].setEncoding('utf8');
    child.stdio[3].on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        assert.ok(line.length < 64 * 1024, 'an event line over 64 KiB');
        let ev;
        try {
          ev = JSON.parse(line);
        } catch (e) {
          reject(new Error(`not JSON on fd 3: ${line}`));
          return;
        }
        events.push(ev);
        try {
          onEvent(ev, ctl);
        } catch (e) {
          reject(e);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setTimeout(() => {
        child.stdin.destroy();
        resolve({
          run, plan, events, stdout, stderr, code, signal, pid: child.pid,
        });
      }, 20);
    });
  });
}

/** The common checks on a finished run. */
function checkRun(r, { workers = 1, expectError = false } = {}) {
  assert.ok(r.events.length > 0, 'no events');
  r.events.forEach((ev) => checkShape(ev, r.run, workers));
  assert.strictEqual(r.events[0].type, 'runtime_ready', 'the first event is not runtime_ready');
  const last = r.events[r.events.length - 1];
  assert.strictEqual(r.stdout, '', `something printed on stdout: ${r.stdout}`);
  if (expectError) {
    assert.strictEqual(last.type, 'error', `the last event is ${last.type}`);
    assert.strictEqual(r.code, 1);
  } else {
    assert.strictEqual(last.type, 'run_finished', `the last event is ${last.type}: ${JSON.stringify(last)}`);
    assert.strictEqual(r.code, 0, `exit code ${r.code}, stderr: ${r.stderr}`);
    assert.strictEqual(r.stderr, '', `stderr: ${r.stderr}`);
    // progress ends full, once per worker, and never goes backwards
    const seen = new Map();
    for (const ev of r.events.filter((e) => e.type === 'progress')) {
      const before = seen.get(ev.worker) || 0;
      assert.ok(ev.done > before && ev.done <= ev.total, `progress ${JSON.stringify(ev)}`);
      seen.set(ev.worker, ev.done);
    }
    for (const ev of r.events.filter((e) => e.type === 'worker_finished' && e.result.kind !== 'program')) {
      const p = r.events.filter((e) => e.type === 'progress' && e.worker === ev.worker).pop();
      if (p) assert.strictEqual(p.done, p.total, `worker ${ev.worker}'s progress did not end full`);
    }
  }
  return last;
}

const byType = (r, type) => r.events.filter((e) => e.type === type);

/** Processes whose command line mentions the scripts' folder (ours excluded),
 *  that are not zombies waiting for a reaper. */
function leftovers() {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes(DIR) && !l.includes('test/check.js'))
    .filter((l) => !/^\d+\s+Z/.test(l));
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch (_) {
    return false;
  }
}

async function waitGone(pids, ms = 3000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (pids.every((p) => !alive(p))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`still running: ${pids.filter(alive).join(' ')}`);
}

async function noLeftovers() {
  const until = Date.now() + 2000;
  let left = leftovers();
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    left = leftovers();
  }
  assert.deepStrictEqual(left, [], 'processes left behind');
}

function get(port, urlPath = '/') {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1', port, path: urlPath, agent: false,
    }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** `count` requests, `concurrency` at a time. */
async function load(port, count, concurrency = 8) {
  const answers = [];
  let sent = 0;
  const lane = async () => {
    while (sent < count) {
      sent += 1;
      answers.push(await get(port));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return answers;
}

// ------------------------------------------------------------ the checks

const spec = (model, workload, workers = 1) => ({
  spec: {
    runtime: 'node', model, workload, workers,
  },
});

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('workload arithmetic matches the Rust engine', async () => {
  const all = (work, n) => common.combine(
    Array.from({ length: n }, (_, w) => new common.Share(work, w, n).run()),
  );
  assert.deepStrictEqual(all({ kind: 'primes', below: 1000000 }, 1), { kind: 'primes', count: 78498 });
  for (const n of [1, 2, 3, 7, 16]) {
    assert.deepStrictEqual(all({ kind: 'primes', below: 100000 }, n), { kind: 'primes', count: 9592 });
  }
  for (const [below, count] of [[0, 0], [1, 0], [2, 0], [3, 1], [10, 4], [100, 25], [101, 25], [102, 26]]) {
    assert.deepStrictEqual(all({ kind: 'primes', below }, 1), { kind: 'primes', count }, `below ${below}`);
  }
  assert.deepStrictEqual(all({ kind: 'sha256_chain', rounds: 1000 }, 1).digests, [CHAIN_0_1000]);
  const two = all({ kind: 'sha256_chain', rounds: 2001 }, 2).digests;
  assert.deepStrictEqual(two, [
    common.sha256Rounds(common.chainSeed(0), 1001).toString('hex'),
    common.sha256Rounds(common.chainSeed(1), 1000).toString('hex'),
  ]);
  for (const work of [{ kind: 'primes', below: 50000 }, { kind: 'sha256_chain', rounds: 500 }, { kind: 'sleep', ms: 30 }]) {
    const share = new common.Share(work, 1, 3);
    const seen = [];
    share.run((d, t) => seen.push([d, t]));
    assert.strictEqual(seen.length, share.totalSteps(), work.kind);
    assert.deepStrictEqual(seen[seen.length - 1], [share.totalSteps(), share.totalSteps()], work.kind);
  }
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepStrictEqual([50, 99, 100].map((p) => common.percentile(sorted, p)), [50, 99, 100]);
  assert.strictEqual(common.percentile([7], 99), 7);
  assert.strictEqual(common.percentile([], 50), 0);
  return 'primes, sha256 vector, splits, percentiles';
});

test('detect.js: a real double bind tells whether reusePort works', async () => {
  const out = execFileSync(process.execPath, [path.join(DIR, 'detect.js')], { encoding: 'utf8' });
  const lines = out.trim().split('\n');
  assert.strictEqual(lines.length, 1);
  const found = JSON.parse(lines[0]);
  assert.strictEqual(found.version, process.version);
  assert.strictEqual(typeof found.reuse_port, 'boolean');
  const major = Number(process.version.slice(1).split('.')[0]);
  if (major <= 20) assert.strictEqual(found.reuse_port, false);
  assert.strictEqual(found.monitor_event_loop_delay, true);
  return lines[0];
});

test('main thread: primes block the loop, /ping answers', async () => {
  let port = null;
  let pinged = null;
  const r = await runScript('main_thread.js', spec({ kind: 'main_thread' }, { kind: 'primes', below: 1000000 }), {
    onEvent: (ev) => {
      if (ev.type === 'listening') {
        port = ev.port;
        pinged = Promise.all([get(port, '/ping'), get(port, '/nope')]);
      }
    },
  });
  const last = checkRun(r);
  assert.deepStrictEqual(last.summary.result, { kind: 'primes', count: 78498 });
  const [pong, nope] = await pinged;
  assert.strictEqual(pong.status, 200);
  assert.strictEqual(pong.body, 'pong');
  assert.strictEqual(nope.status, 404);
  const spawned = byType(r, 'worker_spawned')[0];
  assert.strictEqual(spawned.tid, r.pid, 'the main thread\'s tid is the pid');
  assert.strictEqual(byType(r, 'loop_delay').length, 1);
  const wall = last.summary.wall_us;
  assert.ok(last.summary.main_loop_lag_us > wall * 0.5, `lag ${last.summary.main_loop_lag_us} vs job ${wall}`);
  return `job ${(wall / 1000).toFixed(0)} ms, max heartbeat lag ${(last.summary.main_loop_lag_us / 1000).toFixed(0)} ms`;
});

test('main thread: an awaited sleep keeps the heartbeat going', async () => {
  const r = await runScript('main_thread.js', spec({ kind: 'main_thread' }, { kind: 'sleep', ms: 400 }));
  const last = checkRun(r);
  assert.ok(last.summary.result.ms >= 400, `slept ${last.summary.result.ms}`);
  const spawned = byType(r, 'worker_spawned')[0];
  const finished = byType(r, 'worker_finished')[0];
  const during = byType(r, 'heartbeat').filter((h) => h.at_ms * 1000 > spawned.at_us && h.at_ms * 1000 < finished.at_us);
  assert.ok(during.length >= 10, `only ${during.length} heartbeats during the sleep`);
  // Free, not frozen: no tick waited anything like the sleep (a busy
  // machine may delay one by tens of milliseconds).
  assert.ok(last.summary.main_loop_lag_us < 200000, `max lag ${last.summary.main_loop_lag_us} µs`);
  return `${during.length} heartbeats during the sleep, max lag ${(last.summary.main_loop_lag_us / 1000).toFixed(1)} ms`;
});

test('main thread: blocking_wait freezes the heartbeat', async () => {
  const r = await runScript('main_thread.js', spec({ kind: 'main_thread' }, { kind: 'blocking_wait', ms: 400 }));
  const last = checkRun(r);
  assert.ok(last.summary.result.ms >= 400, `slept ${last.summary.result.ms}`);
  const lag = last.summary.main_loop_lag_us;
  assert.ok(lag >= 350000, `max lag ${lag} µs`);
  // Waiting, not spinning: far less CPU than the 400 ms it blocked.
  assert.ok(last.summary.cpu_us < 200000, `blocking used ${last.summary.cpu_us} µs of CPU`);
  const spawned = byType(r, 'worker_spawned')[0];
  const finished = byType(r, 'worker_finished')[0];
  const during = byType(r, 'heartbeat').filter((h) => h.at_ms * 1000 > spawned.at_us + 5000 && h.at_ms * 1000 < finished.at_us - 5000);
  assert.strictEqual(during.length, 0, 'heartbeats during a blocking wait');
  const delay = byType(r, 'loop_delay')[0];
  assert.ok(delay.max_us >= 350000, `loop_delay max ${delay.max_us}`);
  return `max lag ${(lag / 1000).toFixed(0)} ms, loop_delay max ${(delay.max_us / 1000).toFixed(0)} ms, cpu ${(last.summary.cpu_us / 1000).toFixed(1)} ms`;
});

test('main thread: pool_hash on a pool of 1 finishes in start order, the loop stays free', async () => {
  const calls = 4;
  const r = await runScript(
    'main_thread.js',
    spec({ kind: 'main_thread' }, { kind: 'pool_hash', calls, pool_threads: 1 }),
    { env: { UV_THREADPOOL_SIZE: '1' } },
  );
  const last = checkRun(r);
  assert.deepStrictEqual(last.summary.result, { kind: 'hashed', calls });
  const tasks = byType(r, 'pool_task');
  // libuv's pool takes work first come, first served: with one thread
  // the hashes can only finish in the order they were started.
  assert.deepStrictEqual(tasks.map((t) => t.task), [0, 1, 2, 3]);
  const spawned = byType(r, 'worker_spawned')[0];
  const finished = byType(r, 'worker_finished')[0];
  const during = byType(r, 'heartbeat').filter((h) => h.at_ms * 1000 > spawned.at_us && h.at_ms * 1000 < finished.at_us);
  assert.ok(during.length >= 3, `only ${during.length} heartbeats while the pool hashed`);
  // The pool's threads did the hashing: the process used CPU for it (a
  // share of the wall time only, on a machine other work shares).
  assert.ok(last.summary.cpu_us >= 0.1 * tasks[tasks.length - 1].finished_us, `cpu ${last.summary.cpu_us} µs`);
  const at = tasks.map((t) => (t.finished_us / 1000).toFixed(0)).join('/');
  return `finished at ${at} ms, ${during.length} heartbeats meanwhile, max lag ${(last.summary.main_loop_lag_us / 1000).toFixed(1)} ms`;
});

for (const strategy of ['spawn', 'pool']) {
  for (const sharing of ['messages', 'shared_memory']) {
    test(`worker_threads ${strategy} + ${sharing}: 78,498 primes on 2 threads`, async () => {
      const r = await runScript('worker_threads.js', spec({ kind: 'threads', strategy, sharing }, { kind: 'primes', below: 1000000 }, 2));
      const last = checkRun(r, { workers: 2 });
      assert.deepStrictEqual(last.summary.result, { kind: 'primes', count: 78498 });
      const spawned = byType(r, 'worker_spawned');
      const finished = byType(r, 'worker_finished');
      assert.deepStrictEqual(spawned.map((e) => e.worker).sort(), [0, 1]);
      assert.deepStrictEqual(finished.map((e) => e.worker).sort(), [0, 1]);
      spawned.forEach((e) => {
        assert.strictEqual(e.pid, r.pid);
        assert.ok(e.tid !== r.pid, 'a worker thread has its own tid');
      });
      finished.forEach((e) => {
        assert.ok(e.memory !== null, 'threads report their share of the growth');
        if (sharing === 'shared_memory') assert.strictEqual(e.messages, 0);
        else assert.ok(e.messages >= 3, `${e.messages} messages`);
      });
      assert.strictEqual(byType(r, 'baseline_started').length, 1);
      assert.strictEqual(byType(r, 'baseline_finished').length, 1);
      assert.ok(last.summary.baseline_wall_us > 0 && last.summary.speedup > 0);
      const lat = spawned.map((e) => (e.start_latency_us / 1000).toFixed(1)).join('/');
      return `start ${lat} ms, wall ${(last.summary.wall_us / 1000).toFixed(0)} ms, speedup ${last.summary.speedup.toFixed(2)}`;
    });
  }
}

test('worker_threads: SHA-256 vector, and a sleep on 1 thread is its own baseline', async () => {
  const r = await runScript('worker_threads.js', spec({ kind: 'threads', strategy: 'spawn', sharing: 'shared_memory' }, { kind: 'sha256_chain', rounds: 1000 }));
  assert.deepStrictEqual(checkRun(r).summary.result.digests, [CHAIN_0_1000]);
  const m = await runScript('worker_threads.js', spec({ kind: 'threads', strategy: 'pool', sharing: 'messages' }, { kind: 'sha256_chain', rounds: 2001 }, 2));
  assert.strictEqual(checkRun(m, { workers: 2 }).summary.result.digests[0], common.sha256Rounds(common.chainSeed(0), 1001).toString('hex'));
  const s = await runScript('worker_threads.js', spec({ kind: 'threads' }, { kind: 'sleep', ms: 100 }));
  const last = checkRun(s);
  assert.ok(last.summary.result.ms >= 100);
  assert.strictEqual(last.summary.baseline_wall_us, last.summary.wall_us);
  assert.strictEqual(last.summary.speedup, 1);
  assert.strictEqual(byType(s, 'baseline_started').length, 0);
  return 'chain digests match; 1 worker: speedup 1, no baseline pass';
});

for (const serialization of ['json', 'advanced']) {
  test(`child_process ${serialization}: 78,498 primes on 2 children, round trips`, async () => {
    const r = await runScript('child_process.js', spec({ kind: 'child_process', round_trips: 50, serialization }, { kind: 'primes', below: 1000000 }, 2));
    const last = checkRun(r, { workers: 2 });
    assert.deepStrictEqual(last.summary.result, { kind: 'primes', count: 78498 });
    const spawned = byType(r, 'worker_spawned');
    spawned.forEach((e) => {
      assert.notStrictEqual(e.pid, r.pid);
      assert.strictEqual(e.tid, null);
    });
    const rt = byType(r, 'round_trips');
    assert.strictEqual(rt.length, 2);
    rt.forEach((e) => {
      assert.strictEqual(e.count, 50);
      assert.ok(e.p50_ns > 0 && e.p50_ns <= e.p99_ns && e.p99_ns <= e.max_ns);
    });
    byType(r, 'worker_finished').forEach((e) => {
      assert.ok(e.memory && e.memory.rss_bytes > 0);
      assert.strictEqual(e.messages, null);
    });
    assert.strictEqual(byType(r, 'baseline_finished').length, 1);
    await waitGone(spawned.map((e) => e.pid));
    return `start ${spawned.map((e) => (e.start_latency_us / 1000).toFixed(0)).join('/')} ms, round trip p50 ${(rt[0].p50_ns / 1000).toFixed(0)} µs, speedup ${last.summary.speedup.toFixed(2)}`;
  });
}

test('child_process: the SHA-256 vector in a child', async () => {
  const r = await runScript('child_process.js', spec({ kind: 'child_process' }, { kind: 'sha256_chain', rounds: 1000 }));
  assert.deepStrictEqual(checkRun(r).summary.result.digests, [CHAIN_0_1000]);
  assert.strictEqual(byType(r, 'round_trips').length, 0);
  return 'ok';
});

test('child_process: execFile uname -a, and a missing program', async () => {
  const r = await runScript('child_process.js', {
    ...spec({ kind: 'child_process' }, { kind: 'program', program: 'uname' }),
    program: { file: 'uname', args: ['-a'] },
  });
  const last = checkRun(r);
  const expected = execFileSync('uname', ['-a'], { encoding: 'utf8' });
  assert.deepStrictEqual(last.summary.result, {
    kind: 'program', exit_code: 0, output: expected, truncated: false,
  });
  assert.strictEqual(last.summary.baseline_wall_us, null);
  assert.strictEqual(last.summary.speedup, null);
  assert.strictEqual(byType(r, 'worker_spawned').length, 1);

  const m = await runScript('child_process.js', {
    ...spec({ kind: 'child_process' }, { kind: 'program', program: 'python_version' }),
    program: { file: 'spawnlab-no-such-program', args: ['--version'] },
  });
  assert.deepStrictEqual(checkRun(m).summary.result, {
    kind: 'program', exit_code: null, output: 'spawnlab-no-such-program is not installed on this server', truncated: false,
  });

  // No shell between: what a shell would split, substitute or expand
  // reaches the program as it was written.
  const literal = ['a;b', '$(id)', '*', '"q"'];
  const e = await runScript('child_process.js', {
    ...spec({ kind: 'child_process' }, { kind: 'program', program: 'uname' }),
    program: { file: 'echo', args: literal },
  });
  assert.strictEqual(checkRun(e).summary.result.output, `${literal.join(' ')}\n`);

  // Output past 4096 bytes is cut and flagged; a failing exit code is kept.
  const big = await runScript('child_process.js', {
    ...spec({ kind: 'child_process' }, { kind: 'program', program: 'list_public' }),
    program: { file: 'ls', args: ['-l', '/usr/bin', '/spawnlab-missing'] },
  });
  const res = checkRun(big).summary.result;
  assert.strictEqual(Buffer.byteLength(res.output) <= 4096 + 3, true);
  assert.strictEqual(res.truncated, true);
  assert.notStrictEqual(res.exit_code, 0);
  return `uname: "${expected.trim().slice(0, 40)}…"`;
});

test('child_process: children leave when their parent is SIGKILLed', async () => {
  const pids = [];
  const r = await runScript('child_process.js', spec({ kind: 'child_process' }, { kind: 'primes', below: 50000000 }, 2), {
    onEvent: (ev, ctl) => {
      if (ev.type === 'worker_spawned') pids.push(ev.pid);
      if (pids.length === 2 && ev.type === 'progress') ctl.child.kill('SIGKILL');
    },
  });
  assert.strictEqual(r.signal, 'SIGKILL');
  assert.strictEqual(pids.length, 2);
  await waitGone(pids);
  return 'both children gone';
});

/** A cluster run driven like the server drives it. */
async function clusterScenario(policy, workers, { requests = 200 } = {}) {
  const received = new Map();
  const note = (answers) => answers.forEach((a) => {
    assert.strictEqual(a.status, 200);
    assert.strictEqual(a.body, 'hello\n');
    const w = Number(a.headers['x-worker']);
    assert.ok(Number.isInteger(w) && w >= 0 && w < workers, `x-worker ${a.headers['x-worker']}`);
    received.set(w, (received.get(w) || 0) + 1);
  });
  const spawned = new Map();
  let step = null;
  let beforeKill = null;
  let total = 0;
  const story = [];
  let exitedPid = null;
  let respawnedPid = null;
  const r = await runScript('cluster.js', spec({
    kind: 'cluster', policy, requests, concurrency: 8, keep_alive: true, kill: null,
  }, { kind: 'http_hello' }, workers), {
    onEvent: (ev, ctl) => {
      if (ev.type === 'worker_spawned') spawned.set(ev.worker, ev.pid);
      if (ev.type === 'listening') {
        step = (async () => {
          note(await load(ev.port, requests));
          total += requests;
          story.push(`${requests} requests: ${[...received.entries()].sort().map(([w, n]) => `w${w}=${n}`).join(' ')}`);
          beforeKill = received.get(0) || 0;
          process.kill(spawned.get(0), 'SIGKILL');
        })().catch(ctl.fail);
      }
      if (ev.type === 'worker_exited') {
        assert.strictEqual(ev.worker, 0);
        assert.strictEqual(ev.pid, spawned.get(0));
        assert.strictEqual(ev.signal, 9);
        assert.strictEqual(ev.exit_code, null);
        exitedPid = ev.pid;
      }
      if (ev.type === 'worker_respawned') {
        assert.strictEqual(ev.worker, 0);
        assert.notStrictEqual(ev.pid, spawned.get(0));
        respawnedPid = ev.pid;
        story.push(`respawn after ${(ev.downtime_us / 1000).toFixed(0)} ms`);
        const port = byTypeOf(ctl.events, 'listening')[0].port;
        step.then(async () => {
          note(await load(port, 50));
          total += 50;
          ctl.stdin.write('{"cmd":"finish"}\n');
        }).catch(ctl.fail);
      }
    },
  });
  const last = checkRun(r, { workers });
  assert.ok(exitedPid && respawnedPid, 'no exit and respawn seen');
  const finished = byType(r, 'worker_finished');
  assert.deepStrictEqual(finished.map((e) => e.worker), Array.from({ length: workers }, (_, i) => i));
  const served = finished.reduce((sum, e) => sum + e.result.served, 0);
  // What the killed worker served before it died died with it.
  assert.strictEqual(served, total - beforeKill, `served ${served}, received ${total}, lost ${beforeKill}`);
  assert.deepStrictEqual(last.summary.result, { kind: 'requests', served });
  if (policy === 'round_robin' && workers > 1) {
    assert.ok(beforeKill > 0 && beforeKill < requests, 'round robin used every worker');
  }
  await waitGone([...spawned.values(), respawnedPid]);
  story.push(`served ${served} after the kill's loss of ${beforeKill}`);
  return story.join('; ');
}
const byTypeOf = (events, type) => events.filter((e) => e.type === type);

test('cluster round_robin, 2 workers: load, SIGKILL, respawn, finish', () => clusterScenario('round_robin', 2));
test('cluster shared_socket, 2 workers: load, SIGKILL, respawn, finish', () => clusterScenario('shared_socket', 2));
test('cluster round_robin, 1 worker: the replacement gets the same port', () => clusterScenario('round_robin', 1, { requests: 50 }));

test('cluster reuse_port: a clear error on a Node without it, a cluster with it', async () => {
  const found = JSON.parse(execFileSync(process.execPath, [path.join(DIR, 'detect.js')], { encoding: 'utf8' }));
  if (found.reuse_port) {
    const story = await clusterScenario('reuse_port', 2);
    await clusterScenario('reuse_port', 1, { requests: 50 });
    return `reusePort works on this Node: ${story}`;
  }
  const r = await runScript('cluster.js', spec({
    kind: 'cluster', policy: 'reuse_port', requests: 10, concurrency: 1,
  }, { kind: 'http_hello' }, 2));
  const last = checkRun(r, { workers: 2, expectError: true });
  assert.ok(last.message.includes('reusePort needs Node v22.12 / v23.1'), last.message);
  assert.ok(last.message.includes(process.version), last.message);
  assert.strictEqual(r.stderr, '', `stderr: ${r.stderr}`);
  assert.strictEqual(byType(r, 'listening').length, 0);
  return last.message;
});

test('cluster: workers leave on stdin EOF and on a SIGKILLed primary', async () => {
  const pids = [];
  const eof = await runScript('cluster.js', spec({ kind: 'cluster', policy: 'round_robin', requests: 1, concurrency: 1 }, { kind: 'http_sleep', ms: 5 }, 2), {
    onEvent: (ev, ctl) => {
      if (ev.type === 'worker_spawned') pids.push(ev.pid);
      if (ev.type === 'listening') ctl.stdin.end();
    },
  });
  assert.strictEqual(eof.code, 0);
  await waitGone(pids);
  const killed = [];
  const r = await runScript('cluster.js', spec({ kind: 'cluster', policy: 'shared_socket', requests: 1, concurrency: 1 }, { kind: 'http_cpu', ms: 2 }, 2), {
    onEvent: (ev, ctl) => {
      if (ev.type === 'worker_spawned') killed.push(ev.pid);
      if (ev.type === 'listening') {
        get(ev.port).then((a) => {
          assert.strictEqual(a.status, 200);
          ctl.child.kill('SIGKILL');
        }).catch(ctl.fail);
      }
    },
  });
  assert.strictEqual(r.signal, 'SIGKILL');
  await waitGone(killed);
  return 'gone both ways';
});

// ------------------------------------------------------------ main

async function main() {
  const started = Date.now();
  const only = process.argv[2];
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of tests) {
    if (only && !name.includes(only)) continue;
    const t = Date.now();
    try {
      const note = await fn();
      await noLeftovers();
      passed += 1;
      console.log(`ok   ${name} (${Date.now() - t} ms)${note ? `\n     ${note}` : ''}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name} (${Date.now() - t} ms)\n     ${e.stack || e}`);
    }
  }
  console.log(`\nnode ${process.version}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
