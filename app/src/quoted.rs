//! Every figure the pages quote rather than measure, in one place, each with
//! its source and date.
//!
//! Page text never writes a measured quantity as a literal: it either shows
//! a figure measured on this server (the labs, the compare page) or quotes
//! one from here with [`Q`], which names the source beside the number. A
//! test renders every page and fails on a number with a unit that comes from
//! neither.

use leptos::prelude::*;

/// One quoted figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// How the text refers to it.
    pub id: &'static str,
    /// The figure as the text shows it: "49 ms", "8–10 MiB", "84.5k".
    pub text: &'static str,
    /// What was measured, in a few words.
    pub what: &'static str,
    /// Where it comes from, and when.
    pub source: &'static str,
}

/// The 2-core VM (AMD EPYC) the site was first measured on, Node.js v20.20.2.
const HOST_A: &str = "measured on a 2-core VM (AMD EPYC), Node.js v20.20.2, 2026-11-26";
/// A second host of the same size (Intel Xeon), the same Node.js.
const HOST_B: &str = "measured on a second 2-core VM (Intel Xeon), Node.js v20.20.2, 2026-11-27";
/// wrk, 64 keep-alive connections, 5 s, on the same two cores.
const WRK_A: &str =
    "wrk with 64 keep-alive connections on the same 2-core VM (AMD EPYC), Node.js v20.20.2, 2026-11-26";
const WRK_B: &str = "wrk with 64 keep-alive connections on a second 2-core VM (Intel Xeon), Node.js v20.20.2, 2026-11-27";
/// A full `spawnlab bench` run, kept in BENCHMARKS.md.
const BENCH_B: &str =
    "spawnlab bench (BENCHMARKS.md), on a 2-core VM (Intel Xeon), Node.js v20.20.2, 2026-11-27";
/// The labs' own settings: not measurements, but the rhythm they run to.
const SETTING: &str = "a setting of this site's labs";

/// Every quoted figure.
pub const QUOTES: &[Quote] = &[
    Quote {
        id: "worker_start",
        text: "14.9 ms",
        what: "new Worker() to its first message, median",
        source: HOST_A,
    },
    Quote {
        id: "worker_start_b",
        text: "28.7 ms",
        what: "new Worker() to its first message, median",
        source: HOST_B,
    },
    Quote {
        id: "fork_start",
        text: "49 ms",
        what: "fork() to the child's first message, median",
        source: HOST_A,
    },
    Quote {
        id: "fork_start_b",
        text: "110 ms",
        what: "fork() to the child's first message, median",
        source: HOST_B,
    },
    Quote {
        id: "exec_file",
        text: "2.5 ms",
        what: "execFile('true') to its callback, median",
        source: BENCH_B,
    },
    Quote {
        id: "exec_shell",
        text: "2.8 ms",
        what: "exec('true'), through /bin/sh, to its callback, median",
        source: BENCH_B,
    },
    Quote {
        id: "fork_start_bench",
        text: "87 ms",
        what: "fork() to the child's first message, median, in the same run",
        source: BENCH_B,
    },
    Quote {
        id: "worker_memory",
        text: "8–10 MiB",
        what: "memory an idle Worker adds",
        source: HOST_A,
    },
    Quote {
        id: "fork_rss",
        text: "41.5 MiB",
        what: "an idle forked child's resident memory",
        source: HOST_A,
    },
    Quote {
        id: "fork_private",
        text: "6.8 MiB",
        what: "an idle forked child's private memory",
        source: HOST_A,
    },
    Quote {
        id: "ipc_round_trip",
        text: "59.5 µs",
        what: "a small IPC message to a forked child and back, median",
        source: HOST_A,
    },
    Quote {
        id: "post_round_trip",
        text: "50 µs",
        what: "a small postMessage to a Worker and back, median",
        source: HOST_A,
    },
    Quote {
        id: "mib_ipc_json",
        text: "7.0 ms",
        what: "1 MiB Uint8Array to a forked child and back, JSON",
        source: HOST_A,
    },
    Quote {
        id: "mib_ipc_advanced",
        text: "0.77 ms",
        what: "1 MiB Uint8Array to a forked child and back, serialization 'advanced'",
        source: HOST_A,
    },
    Quote {
        id: "mib_clone",
        text: "0.5 ms",
        what: "1 MiB Uint8Array to a Worker and back, structured clone",
        source: HOST_A,
    },
    Quote {
        id: "mib_transfer",
        text: "0.05 ms",
        what: "1 MiB ArrayBuffer to a Worker and back, transferred",
        source: HOST_A,
    },
    Quote {
        id: "mib_shared",
        text: "0.05 ms",
        what: "a 1 MiB SharedArrayBuffer handed to a Worker and back",
        source: HOST_A,
    },
    Quote {
        id: "job_5m",
        text: "0.48 s",
        what: "counting the primes below 5,000,000 on the main thread",
        source: HOST_A,
    },
    Quote {
        id: "one_worker_slower",
        text: "4%",
        what: "that job on one Worker, slower than on the main thread",
        source: "spawnlab issue 10, measured on a 2-core VM, Node.js v20.20.2, 2026-11-26",
    },
    Quote {
        id: "one_fork_slower",
        text: "10%",
        what: "that job in one forked child, slower than on the main thread",
        source: "spawnlab issue 10, measured on a 2-core VM, Node.js v20.20.2, 2026-11-26",
    },
    Quote {
        id: "speedup_5m_threads",
        text: "1.80×",
        what: "primes below 5,000,000 on 2 Workers against the main thread",
        source: HOST_A,
    },
    Quote {
        id: "speedup_5m_fork",
        text: "1.59×",
        what: "primes below 5,000,000 on 2 forked children against the main thread",
        source: HOST_A,
    },
    Quote {
        id: "speedup_20m_threads",
        text: "1.95×",
        what: "primes below 20,000,000 on 2 Workers against the main thread",
        source: HOST_A,
    },
    Quote {
        id: "blocked_job",
        text: "196 ms",
        what: "a CPU job in an HTTP handler",
        source: HOST_A,
    },
    Quote {
        id: "blocked_ping_p50",
        text: "560 ms",
        what: "a /ping behind that job, median, two clients hitting the heavy route",
        source: HOST_A,
    },
    Quote {
        id: "blocked_ping_p99",
        text: "800 ms",
        what: "the same /ping, 99th percentile",
        source: HOST_A,
    },
    Quote {
        id: "offloaded_ping",
        text: "0.58 ms",
        what: "the same /ping with the job in a pool of one Worker",
        source: HOST_A,
    },
    Quote {
        id: "hello_one_a",
        text: "84.5k",
        what: "requests/s, one Node.js process",
        source: WRK_A,
    },
    Quote {
        id: "hello_one_b",
        text: "57.0k",
        what: "requests/s, one Node.js process",
        source: WRK_B,
    },
    Quote {
        id: "hello_rr_a",
        text: "87.1k",
        what: "requests/s, a cluster of 2, round robin",
        source: WRK_A,
    },
    Quote {
        id: "hello_rr_b",
        text: "87.4k",
        what: "requests/s, a cluster of 2, round robin",
        source: WRK_B,
    },
    Quote {
        id: "hello_none_a",
        text: "87.5k",
        what: "requests/s, a cluster of 2, SCHED_NONE",
        source: WRK_A,
    },
    Quote {
        id: "busiest_rr",
        text: "59%",
        what: "requests the busier of 2 round-robin workers answered",
        source: WRK_A,
    },
    Quote {
        id: "busiest_none",
        text: "67%",
        what: "requests the busier of 2 SCHED_NONE workers answered",
        source: WRK_A,
    },
    Quote {
        id: "close_one",
        text: "23.8k",
        what: "requests/s with a new connection per request, one process",
        source: WRK_A,
    },
    Quote {
        id: "close_rr",
        text: "10.5k",
        what: "requests/s with a new connection per request, a round-robin cluster of 2",
        source: WRK_A,
    },
    Quote {
        id: "docs_70",
        text: "70%",
        what: "connections that went to two of eight processes under SCHED_NONE",
        source: "the Node.js cluster documentation (nodejs.org/api/cluster.html)",
    },
    Quote {
        id: "guideline_ms",
        text: "30 ms",
        what: "start-up to assume per new Node.js process",
        source: "an old Node.js guideline, nodejs/node-v0.x-archive#9223",
    },
    Quote {
        id: "guideline_mb",
        text: "10 MB",
        what: "memory to assume per new Node.js process",
        source: "an old Node.js guideline, nodejs/node-v0.x-archive#9223",
    },
    Quote {
        id: "tick",
        text: "20 ms",
        what: "how often the labs' heartbeat is due",
        source: SETTING,
    },
    Quote {
        id: "ping_every",
        text: "50 ms",
        what: "how often the main-thread lab sends a /ping",
        source: SETTING,
    },
    Quote {
        id: "calm",
        text: "300 ms",
        what: "the calm before and after the main-thread lab's job",
        source: SETTING,
    },
];

/// The quote `id`; a missing id is a bug in the page, caught by the tests.
pub fn quote(id: &str) -> &'static Quote {
    match index(id) {
        Some(i) => &QUOTES[i],
        None => panic!("no quoted figure {id:?}"),
    }
}

/// The quote `id`, found while the program compiles (`const`): an island
/// names its quotes this way, so that only those reach the browser's
/// bundle, not the whole table.
pub const fn find(id: &str) -> Quote {
    match index(id) {
        Some(i) => QUOTES[i],
        None => panic!("no such quoted figure"),
    }
}

/// Where `id` is in [`QUOTES`] (`const`, so [`find`] can run while compiling).
const fn index(id: &str) -> Option<usize> {
    let mut i = 0;
    while i < QUOTES.len() {
        if same(QUOTES[i].id.as_bytes(), id.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A quoted figure in running text: the number, with what it is and where
/// it comes from on hover and for screen readers.
#[component]
pub fn Q(id: &'static str) -> impl IntoView {
    view! { <Quoted q=*quote(id)/> }
}

/// [`Q`] for a quote found with [`find`]: what an island uses.
#[component]
pub fn Quoted(q: Quote) -> impl IntoView {
    view! {
        <span class="quoted" data-quote=q.id title=format!("{} — {}", q.what, q.source)>
            {q.text}
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_found_while_compiling_is_the_one_named() {
        const TICK: Quote = find("tick");
        assert_eq!(&TICK, quote("tick"));
    }

    #[test]
    fn every_quote_has_a_source_and_a_unique_id() {
        let mut ids: Vec<_> = QUOTES.iter().map(|q| q.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), QUOTES.len(), "ids are unique");
        for q in QUOTES {
            assert!(!q.source.is_empty() && !q.what.is_empty(), "{q:?}");
            assert!(
                q.text.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{q:?}"
            );
        }
    }
}
