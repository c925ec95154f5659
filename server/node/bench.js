'use strict';
// Plain Node.js measurements, with no lab machinery around them: what a
// Node.js developer would write to time a Worker's start, a fork()'s start,
// a short program run by execFile() (no shell) and by exec() (through
// /bin/sh), a message there and back, a 1 MiB payload, and an idle worker's
// memory.
//
// The compare page and `spawnlab bench` use these where a lab has no such
// figure, and `spawnlab bench` checks the labs' own Node.js figures against
// them: the lab's script and this one must agree.
//
//   node bench.js '{"measure":"worker_start","count":20}'
//
// prints one JSON line on stdout:
//   {"measure":"worker_start","unit":"ns","samples":[...],"version":"v20.20.2"}

const { Worker } = require('node:worker_threads');
const { exec, execFile, fork } = require('node:child_process');
const fs = require('node:fs');

function childMain() {
  // Ready as soon as it runs; then echo every message until the channel closes.
  process.on('message', (msg) => process.send(msg));
  process.on('disconnect', () => process.exit(0));
  process.send('ready');
}

async function main() {
  const count = Math.max(1, request.count | 0 || 20);
  switch (request.measure) {
    case 'worker_start':
      return { measure: 'worker_start', unit: 'ns', samples: await workerStarts(count) };
    case 'fork_start':
      return { measure: 'fork_start', unit: 'ns', samples: await forkStarts(count, 'json') };
    case 'exec_file':
      return { measure: 'exec_file', unit: 'ns', samples: await programRuns(count, false) };
    case 'exec_shell':
      return { measure: 'exec_shell', unit: 'ns', samples: await programRuns(count, true) };
    case 'thread_round_trip':
      return { measure: 'thread_round_trip', unit: 'ns', samples: await threadRoundTrips(count, null, null) };
    case 'ipc_round_trip':
      return { measure: 'ipc_round_trip', unit: 'ns', samples: await ipcRoundTrips(count, request.serialization || 'json', null) };
    case 'payload':
      return { measure: 'payload', unit: 'ns', mode: request.mode, bytes: request.bytes, samples: await payload(count, request.mode, request.bytes | 0) };
    case 'worker_memory':
      return { measure: 'worker_memory', unit: 'bytes', samples: await workerMemory(count) };
    case 'fork_memory':
      return { measure: 'fork_memory', unit: 'bytes', samples: await forkMemory(count) };
    default:
      throw new Error(`unknown measure ${JSON.stringify(request.measure)}`);
  }
}

const now = () => process.hrtime.bigint();
const ns = (from) => Number(process.hrtime.bigint() - from);

// `true` run to its exit, one after another: execFile() starts it directly;
// exec() starts /bin/sh -c 'true', which then runs it.
async function programRuns(count, shell) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const t = now();
    await new Promise((resolve, reject) => {
      const done = (err) => (err ? reject(err) : resolve());
      if (shell) exec('true', done);
      else execFile('true', [], done);
    });
    samples.push(ns(t));
  }
  return samples;
}

// new Worker() to its first message, one Worker at a time.
async function workerStarts(count) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const started = now();
    const worker = new Worker("require('node:worker_threads').parentPort.postMessage('ready')", { eval: true });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    samples.push(ns(started));
    await worker.terminate();
  }
  return samples;
}

// fork() to the child's first message, one child at a time.
async function forkStarts(count, serialization) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const started = now();
    const child = fork(__filename, ['--child'], { serialization });
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('error', reject);
    });
    samples.push(ns(started));
    await closeChild(child);
  }
  return samples;
}

function closeChild(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.disconnect();
  });
}

// postMessage there and back between the main thread and one Worker;
// `make(i)` builds the message, `transfer(msg)` its transfer list.
async function threadRoundTrips(count, make, transfer) {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', (m) => {
       const t = m && m.buffer instanceof ArrayBuffer && m.transfer ? [m.buffer] : [];
       parentPort.postMessage(m, t);
     });
     parentPort.postMessage('ready');`,
    { eval: true },
  );
  await new Promise((resolve) => worker.once('message', resolve));
  const samples = [];
  let msg = make ? make() : 0;
  for (let i = 0; i < count; i++) {
    const sent = now();
    worker.postMessage(msg, transfer ? transfer(msg) : []);
    msg = await new Promise((resolve) => worker.once('message', resolve));
    samples.push(ns(sent));
  }
  await worker.terminate();
  return samples;
}

// A message there and back over a forked child's IPC channel.
async function ipcRoundTrips(count, serialization, make) {
  const child = fork(__filename, ['--child'], { serialization });
  await new Promise((resolve) => child.once('message', resolve));
  const samples = [];
  const msg = make ? make() : 0;
  for (let i = 0; i < count; i++) {
    const sent = now();
    child.send(msg);
    await new Promise((resolve) => child.once('message', resolve));
    samples.push(ns(sent));
  }
  await closeChild(child);
  return samples;
}

// A payload of `bytes` there and back, by each way Node moves bulk data.
async function payload(count, mode, bytes) {
  switch (mode) {
    case 'clone': // postMessage copies it (structured clone), both ways
      return threadRoundTrips(count, () => new Uint8Array(bytes), null);
    case 'transfer': // the buffer is moved, not copied: listed in the transfer list
      return threadRoundTrips(
        count,
        () => { const m = { buffer: new ArrayBuffer(bytes), transfer: true }; return m; },
        (m) => [m.buffer],
      );
    case 'shared': // only a handle to the same memory crosses
      return threadRoundTrips(count, () => new Uint8Array(new SharedArrayBuffer(bytes)), null);
    case 'ipc_json': // fork's default: the bytes as JSON text
      return ipcRoundTrips(count, 'json', () => Buffer.alloc(bytes, 1).toString('latin1'));
    case 'ipc_advanced': // serialization: 'advanced' carries the typed array itself
      return ipcRoundTrips(count, 'advanced', () => new Uint8Array(bytes));
    default:
      throw new Error(`unknown payload mode ${JSON.stringify(mode)}`);
  }
}

function status() {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (key) => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

// This process's growth in anonymous resident memory with `count` idle
// Workers, divided by `count`: one sample per Worker, all equal.
async function workerMemory(count) {
  const before = status().anon;
  const workers = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(
      "require('node:worker_threads').parentPort.postMessage('ready'); setInterval(() => {}, 1 << 30)",
      { eval: true },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    workers.push(worker);
  }
  const each = Math.max(0, status().anon - before) / count;
  await Promise.all(workers.map((w) => w.terminate()));
  return workers.map(() => Math.round(each));
}

// Each idle forked child's own anonymous resident memory.
async function forkMemory(count) {
  const children = [];
  for (let i = 0; i < count; i++) {
    const child = fork(__filename, ['--child']);
    await new Promise((resolve) => child.once('message', resolve));
    children.push(child);
  }
  const samples = children.map((child) => {
    const text = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const m = text.match(/^RssAnon:\s+(\d+)/m);
    return m ? Number(m[1]) * 1024 : 0;
  });
  await Promise.all(children.map(closeChild));
  return samples;
}

// A forked copy of this file answers messages when started as a child.
const request = process.argv[2] === '--child' ? null : JSON.parse(process.argv[2] || '{}');
if (request === null) {
  childMain();
} else {
  main().then(
    (result) => {
      process.stdout.write(JSON.stringify({ version: process.version, ...result }) + '\n');
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`bench.js: ${err && err.stack ? err.stack : err}\n`);
      process.exit(1);
    },
  );
}
