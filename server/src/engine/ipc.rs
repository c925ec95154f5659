//! The message channel between the server and the processes it starts — the
//! counterpart of the IPC channel Node opens for `child_process.fork()`.
//!
//! One JSON object per line: the server writes to the child's stdin, the
//! child answers on its stdout. Line-delimited JSON keeps the framing trivial
//! and readable (`strace -e write` shows the real traffic), and costs about
//! what Node's own JSON serialization over its IPC pipe costs.

use protocol::{Memory, WorkResult, Workload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};

/// What the server tells a child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToChild {
    /// Answer with `pong` at once: one round trip of the channel.
    Ping { seq: u32 },
    /// Do share `worker` of `workers` of this workload, then report and exit.
    Work {
        workload: Workload,
        worker: u32,
        workers: u32,
    },
}

/// What a child tells the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromChild {
    /// First line a child writes, as soon as it runs.
    Ready,
    Pong {
        seq: u32,
    },
    Progress {
        done: u64,
        total: u64,
    },
    /// The work is over; `result` is `None` if it was stopped.
    Done {
        result: Option<WorkResult>,
        /// The child's own CPU time, all its threads.
        cpu_us: u64,
        /// Its resident memory just before exiting.
        memory: Memory,
    },
}

/// Write one message as a line and flush it, so the other side sees it now.
pub fn send<W: Write>(out: &mut W, msg: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Read the next message; `None` at end of stream (the other side is gone).
pub fn receive<R: BufRead, T: DeserializeOwned>(
    input: &mut R,
    buf: &mut String,
) -> io::Result<Option<T>> {
    buf.clear();
    if input.read_line(buf)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {buf:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_a_pipe_one_per_line() {
        let mut wire = Vec::new();
        send(&mut wire, &ToChild::Ping { seq: 1 }).unwrap();
        send(
            &mut wire,
            &ToChild::Work {
                workload: Workload::Primes { below: 10 },
                worker: 0,
                workers: 1,
            },
        )
        .unwrap();
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 2);
        let mut input = io::BufReader::new(&wire[..]);
        let mut buf = String::new();
        assert_eq!(
            receive::<_, ToChild>(&mut input, &mut buf).unwrap(),
            Some(ToChild::Ping { seq: 1 })
        );
        assert!(matches!(
            receive::<_, ToChild>(&mut input, &mut buf).unwrap(),
            Some(ToChild::Work { .. })
        ));
        assert_eq!(receive::<_, ToChild>(&mut input, &mut buf).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut input = io::BufReader::new(&b"{nope\n"[..]);
        let err = receive::<_, FromChild>(&mut input, &mut String::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
