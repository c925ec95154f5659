'use strict';
// detect.js — what this Node.js can do, found out by trying it.
//
// What it shows a learner: feature detection beats version sniffing. Older
// Node versions accept the `reusePort` listen option and silently ignore
// it, so the only honest test is a real double bind: two servers in this
// process on the same port, both asking for SO_REUSEPORT. Both succeed
// only where the option really works (Node v22.12 / v23.1 and later);
// elsewhere the second one fails with EADDRINUSE.
//
// Prints one JSON line on stdout (not fd 3: this is not a lab run):
//   {"version":"v20.20.2","reuse_port":false,"monitor_event_loop_delay":true}

const net = require('net');
const perfHooks = require('perf_hooks');

function listen(server, options) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function reusePortWorks() {
  const first = net.createServer();
  const second = net.createServer();
  try {
    await listen(first, { port: 0, host: '127.0.0.1', reusePort: true });
    const { port } = first.address();
    await listen(second, { port, host: '127.0.0.1', reusePort: true });
    return true;
  } catch (_) {
    return false;
  } finally {
    first.close();
    second.close();
  }
}

function monitorEventLoopDelayWorks() {
  if (typeof perfHooks.monitorEventLoopDelay !== 'function') return false;
  try {
    const histogram = perfHooks.monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    histogram.disable();
    return typeof histogram.percentile(50) === 'number';
  } catch (_) {
    return false;
  }
}

async function main() {
  const found = {
    version: process.version,
    reuse_port: await reusePortWorks(),
    monitor_event_loop_delay: monitorEventLoopDelayWorks(),
  };
  process.stdout.write(`${JSON.stringify(found)}\n`);
}

main();
