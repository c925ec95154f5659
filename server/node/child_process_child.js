'use strict';
// child_process_child.js — a forked child: a whole second Node process.
//
// What it shows a learner: `fork()` starts a new `node` (its own memory,
// its own event loop, its own pid) with an IPC channel to its parent.
// `process.send()` and `process.on('message')` carry messages over that
// channel, encoded as JSON or, with `serialization: 'advanced'`, by the
// structured-clone algorithm. The child answers pings, does its share of
// the work, reports, and leaves.

const { Share, processCpuUs, memory, throttle } = require('./common');

// The IPC channel closes when the parent disconnects or dies (even by
// SIGKILL): nothing is left to work for, so leave rather than linger.
process.on('disconnect', () => process.exit(0));
// A send() that finds the channel already closed fails the same way.
process.on('error', () => process.exit(0));

process.on('message', (msg) => {
  if (msg.type === 'ping') {
    process.send({ type: 'pong', seq: msg.seq });
  } else if (msg.type === 'work') {
    work(msg).catch((err) => {
      // Tell the parent why, rather than only dying with a stack on stderr.
      process.send({ type: 'failed', message: err.message }, () => process.exit(1));
    });
  }
});

async function work({ work: workload, worker, workers, progress_every_ms: every }) {
  const share = new Share(workload, worker, workers);
  const progress = throttle(every, (done, total) => process.send({ type: 'progress', done, total }));
  // runAsync yields to the event loop between steps, so a parent that
  // went away is noticed within one step (the 'disconnect' above).
  const result = await share.runAsync(progress);
  const done = { type: 'done', result, cpu_us: processCpuUs(), memory: memory() };
  // Disconnect only once the message is on its way: exiting right after
  // send() could lose it.
  process.send(done, () => process.disconnect());
}

// The first message: "I'm up". The parent times fork() → this.
process.send({ type: 'ready' });
