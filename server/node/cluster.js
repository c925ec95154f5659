'use strict';
// cluster.js — one port, several processes: a cluster primary and its
// HTTP workers.
//
// What it shows a learner:
//
// - `cluster.fork()` starts worker processes that all serve one port;
// - how connections reach them: the primary accepts each one and passes it
//   to the next worker in turn (round robin, `SCHED_RR`, Node's default on
//   Linux), the workers share the listening socket and race in accept()
//   (`SCHED_NONE`), or each worker binds its own socket with `reusePort`
//   and the kernel spreads connections (needs Node v22.12 / v23.1);
// - a worker that dies is noticed by the primary, which forks a
//   replacement: the port stays open and the downtime is measured.
//
// The load comes from outside (the lab's load generator), and so do the
// kills: this script only serves, reports and replaces. It reads commands
// from stdin, one JSON object a line: {"cmd":"finish"} ends the run.
//
// Run at home:  node cluster.js '{"run":1,"spec":{"runtime":"node",
//   "model":{"kind":"cluster","policy":"round_robin","requests":1000,
//   "concurrency":8},"workload":{"kind":"http_hello"},"workers":2}}' 3>&1
// then e.g. `curl -i http://127.0.0.1:<port>/`, and type {"cmd":"finish"}.

const cluster = require('cluster');

if (cluster.isPrimary) {
  primary();
} else {
  worker();
}

// ------------------------------------------------------------- the primary

function primary() {
  const net = require('net');
  const os = require('os');
  const {
    begin, startClock, emit, fail, nowUs, nowMs, runFinished,
  } = require('./common');

  const plan = begin();
  startClock();
  const policy = plan.spec.model.policy || 'round_robin';
  const workers = plan.spec.workers;
  const REPORT_TIMEOUT_MS = 2000;

  // Fixed once the first worker is forked.
  cluster.schedulingPolicy = policy === 'round_robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  cluster.setupPrimary({
    exec: __filename,
    args: [process.argv[2]],
    // stdin carries the server's commands to the primary only; fd 3 is the
    // worker's IPC channel to the primary.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  const slots = []; // by worker index; a replacement takes over its slot
  let port = null;
  // The port workers pass to listen(). Node's primary shares one socket
  // per listen key (address and port as the worker wrote them), so every
  // worker listens on 0 and gets the same random port — as long as one of
  // them keeps the socket open. If every worker is gone (one worker,
  // killed), the socket closed with them: replacements then ask for the
  // port by number to get it back.
  // A scaling run brings a killed instance back on its old port.
  let listenPort = plan.port || 0;
  let reserve = null; // reusePort: holds the port until the workers have it
  let announced = false;
  let finishing = false;

  const listening = () => slots.filter((s) => s && s.listening && !s.dead);

  /** Fork worker `index`; `exitNoticedAt` is set for a replacement. */
  function startWorker(index, exitNoticedAt = null) {
    if (policy !== 'reuse_port' && port !== null && listening().length === 0) listenPort = port;
    const startedAt = performance.now();
    const w = cluster.fork({
      SPAWNLAB_WORKER_INDEX: String(index),
      SPAWNLAB_LISTEN_PORT: String(policy === 'reuse_port' ? port : listenPort),
    });
    const slot = {
      index, worker: w, pid: w.process.pid, startedAt, listening: false, dead: false, everListened: false,
    };
    slots[index] = slot;

    // The cluster's own 'listening' comes only for sockets the primary
    // handed out; a worker that bound its own (reusePort, `exclusive`) says
    // so itself.
    const onListening = (address) => {
      slot.listening = true;
      slot.everListened = true;
      if (port === null) port = address.port;
      if (exitNoticedAt === null) {
        emit({
          type: 'worker_spawned',
          worker: index,
          start_latency_us: Math.round((performance.now() - startedAt) * 1000),
          pid: slot.pid,
          tid: null,
          at_us: nowUs(),
        });
      } else {
        emit({
          type: 'worker_respawned',
          worker: index,
          pid: slot.pid,
          downtime_us: Math.round((performance.now() - exitNoticedAt) * 1000),
          at_ms: nowMs(),
        });
      }
      if (!announced && slots.length === workers && slots.every((s) => s.everListened)) {
        announce();
      }
    };
    if (policy === 'reuse_port') {
      w.on('message', (msg) => msg.type === 'listening' && onListening(msg));
    } else {
      w.on('listening', onListening);
    }
    w.on('message', (msg) => {
      if (msg.type === 'listen_failed') {
        if (policy === 'reuse_port' && msg.code === 'EADDRINUSE') {
          abort(`reusePort needs Node v22.12 / v23.1 and this is ${process.version}: `
            + 'its workers cannot bind the same port');
        }
        abort(`worker ${index} could not listen: ${msg.message}`);
      } else if (msg.type === 'report' && slot.onReport) {
        slot.onReport(msg);
      }
    });
    return slot;
  }

  /** Fail the run. The workers are killed first: left to notice the closed
   *  channel themselves, one still starting up would complain on stderr. */
  function abort(message) {
    finishing = true;
    slots.forEach((s) => s && !s.dead && s.worker.process.kill('SIGKILL'));
    fail(message);
  }

  /** Every first worker listens: open for business. */
  async function announce() {
    announced = true;
    if (reserve) {
      // The workers hold the port now; a socket nobody accepts on must not
      // be handed connections.
      await new Promise((resolve) => reserve.close(resolve));
      reserve = null;
    }
    emit({ type: 'listening', port });
  }

  // A worker died. Unless we are finishing, say so and replace it.
  cluster.on('exit', (w, code, signal) => {
    const slot = slots.find((s) => s && s.worker === w);
    if (!slot) return;
    slot.dead = true;
    if (slot.onReport) slot.onReport(null);
    if (finishing) return;
    const noticedAt = performance.now();
    if (!slot.everListened) {
      abort(`worker ${slot.index} (pid ${slot.pid}) ended by ${signal || `exit code ${code}`} before it listened`);
    }
    emit({
      type: 'worker_exited',
      worker: slot.index,
      pid: slot.pid,
      signal: signal ? (os.constants.signals[signal] ?? null) : null,
      exit_code: signal ? null : code,
      at_ms: nowMs(),
    });
    startWorker(slot.index, noticedAt);
  });

  /** Ask a worker for its figures; null if it is gone or does not answer. */
  function askReport(slot) {
    if (!slot || slot.dead || !slot.worker.isConnected()) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => slot.onReport(null), REPORT_TIMEOUT_MS);
      slot.onReport = (report) => {
        clearTimeout(timer);
        slot.onReport = null;
        resolve(report);
      };
      // A worker killed a moment ago can still look connected: the write
      // then fails later (EPIPE), and without a callback Node would throw
      // it as the worker's 'error' event and end this primary.
      const gone = () => slot.onReport && slot.onReport(null);
      try {
        slot.worker.send({ type: 'report' }, (err) => err && gone());
      } catch (_) {
        gone();
      }
    });
  }

  /** End the workers (SIGTERM, then SIGKILL for a straggler) and wait. */
  async function stopWorkers() {
    const alive = slots.filter((s) => s && !s.dead);
    const gone = Promise.all(alive.map((s) => new Promise((resolve) => {
      if (s.worker.isDead()) resolve();
      else s.worker.process.once('exit', resolve);
    })));
    alive.forEach((s) => s.worker.process.kill('SIGTERM'));
    const late = setTimeout(() => alive.forEach((s) => s.worker.process.kill('SIGKILL')), 1000);
    await gone;
    clearTimeout(late);
  }

  async function finish() {
    if (finishing) return;
    finishing = true;
    const reports = await Promise.all(slots.map(askReport));
    let served = 0;
    let cpuUs = 0;
    reports.forEach((report, index) => {
      if (report) {
        served += report.served;
        cpuUs += report.cpu_us;
      }
      emit({
        type: 'worker_finished',
        worker: index,
        wall_us: nowUs(),
        cpu_us: report ? report.cpu_us : 0,
        memory: report ? report.memory : null,
        messages: null,
        result: report ? { kind: 'requests', served: report.served } : { kind: 'incomplete' },
        at_us: nowUs(),
      });
    });
    await stopWorkers();
    runFinished({ wall_us: nowUs(), cpu_us: cpuUs, result: { kind: 'requests', served } });
    process.exit(0);
  }

  // Commands from the server, one JSON object a line.
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      let command;
      try {
        command = JSON.parse(line);
      } catch (_) {
        abort(`not a JSON command on stdin: ${line.slice(0, 100)}`);
      }
      if (command.cmd === 'finish') finish();
    }
  });
  // The server is gone: so is the run.
  process.stdin.on('end', async () => {
    if (finishing) return;
    finishing = true;
    await stopWorkers();
    process.exit(0);
  });

  async function start() {
    if (policy === 'reuse_port') {
      // Take a free port with SO_REUSEPORT so the workers can join it, and
      // hold it until they have.
      reserve = net.createServer();
      await new Promise((resolve, reject) => {
        reserve.once('error', reject);
        reserve.listen({ port: 0, host: '127.0.0.1', reusePort: true }, resolve);
      });
      port = reserve.address().port;
    }
    // From here the workers' events, their exits and stdin drive the run.
    for (let i = 0; i < workers; i++) startWorker(i);
  }

  start();
}

// ------------------------------------------------------------- a worker

function worker() {
  const http = require('http');
  const { plan, processCpuUs, memory } = require('./common');

  const index = Number(process.env.SPAWNLAB_WORKER_INDEX);
  const listenPort = Number(process.env.SPAWNLAB_LISTEN_PORT);
  const { policy } = plan().spec.model;
  const work = plan().spec.workload;
  let served = 0;

  const answer = (res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-worker': String(index) });
    res.end('hello\n');
    served += 1;
  };

  const server = http.createServer((req, res) => {
    if (work.kind === 'http_cpu') {
      // Burn the CPU: this worker serves nobody else meanwhile. Counted
      // in CPU time (the process's, which this loop is nearly all of), not
      // wall time, so a request costs the same CPU however many processes
      // share the cores.
      const start = process.cpuUsage();
      const budgetUs = work.ms * 1000;
      for (;;) {
        const used = process.cpuUsage(start);
        if (used.user + used.system >= budgetUs) break;
      }
      answer(res);
    } else if (work.kind === 'http_sleep') {
      // Wait on a timer: the worker goes on serving others meanwhile.
      setTimeout(() => answer(res), work.ms);
    } else {
      answer(res);
    }
  });

  server.on('error', (err) => {
    process.send({ type: 'listen_failed', code: err.code, message: err.message });
  });

  if (policy === 'reuse_port') {
    // exclusive: bind our own socket rather than ask the primary for its.
    // The primary then hears nothing of it: tell it ourselves.
    server.listen({
      port: listenPort, host: '127.0.0.1', reusePort: true, exclusive: true,
    }, () => process.send({ type: 'listening', port: server.address().port }));
  } else {
    server.listen(listenPort, '127.0.0.1');
  }

  process.on('message', (msg) => {
    if (msg.type === 'report') {
      process.send({ type: 'report', served, cpu_us: processCpuUs(), memory: memory() });
    }
  });

  // The primary is gone (even killed by SIGKILL): its IPC channel closed.
  process.on('disconnect', () => process.exit(0));
  cluster.worker.on('error', () => process.exit(0)); // a send() that found it closed
}
