//! The workload catalogue: what a worker computes, and how a workload is cut
//! into shares, one per worker.
//!
//! Every model runs the same code here, so a thread, a child process and the
//! one-worker baseline do exactly the same work and their times compare.
//! A share is a list of small *steps*; a worker reports progress after each
//! step and checks between steps whether it has been told to stop, which is
//! what makes cancel prompt (a step is a few milliseconds at most).
//!
//! Only [`Compute`] workloads run inside a worker: the type holds nothing
//! else, so a worker cannot be handed an HTTP or a program workload by
//! mistake, whatever the limits let through.

use protocol::{WorkResult, Workload};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Steps a whole workload is cut into: enough for smooth progress bars and
/// prompt cancellation, few enough that reporting costs nothing.
const STEPS_PER_WORKLOAD: u64 = 256;

/// Longest single sleep step, so a sleeping worker still notices a cancel.
const SLEEP_STEP: Duration = Duration::from_millis(10);

/// A workload a worker computes by itself: the only kind a [`Share`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    /// Count the primes below `below`.
    Primes { below: u64 },
    /// A SHA-256 chain of `rounds` rounds, one chain per worker.
    Sha256Chain { rounds: u64 },
    /// Wait `ms` milliseconds on a timer, shared out. In a worker the
    /// thread sleeps; on the main thread's loop it is an `await`.
    Sleep { ms: u64 },
    /// Wait `ms` milliseconds synchronously: the thread sleeps, whatever
    /// else wanted it (main thread only).
    BlockingWait { ms: u64 },
}

/// A workload that no worker computes on its own (a program, an HTTP one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a workload a worker computes")]
pub struct NotComputable(pub &'static str);

impl TryFrom<&Workload> for Compute {
    type Error = NotComputable;

    fn try_from(workload: &Workload) -> Result<Self, NotComputable> {
        match *workload {
            Workload::Primes { below } => Ok(Compute::Primes { below }),
            Workload::Sha256Chain { rounds } => Ok(Compute::Sha256Chain { rounds }),
            Workload::Sleep { ms } => Ok(Compute::Sleep { ms }),
            Workload::BlockingWait { ms } => Ok(Compute::BlockingWait { ms }),
            ref other => Err(NotComputable(other.name())),
        }
    }
}

impl From<Compute> for Workload {
    fn from(compute: Compute) -> Workload {
        match compute {
            Compute::Primes { below } => Workload::Primes { below },
            Compute::Sha256Chain { rounds } => Workload::Sha256Chain { rounds },
            Compute::Sleep { ms } => Workload::Sleep { ms },
            Compute::BlockingWait { ms } => Workload::BlockingWait { ms },
        }
    }
}

/// One worker's part of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The whole workload, as the learner asked for it.
    pub workload: Compute,
    /// This worker, counted from 0.
    pub worker: u32,
    /// How many workers split the workload.
    pub workers: u32,
}

/// Why a worker returned without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl Share {
    /// Worker `worker` of `workers`; a worker index past the end is read as
    /// the last worker.
    pub fn new(workload: Compute, worker: u32, workers: u32) -> Self {
        let workers = workers.max(1);
        let worker = worker.min(workers - 1);
        Share {
            workload,
            worker,
            workers,
        }
    }

    /// Indices of the steps of the whole workload that belong to this worker.
    /// Steps are dealt out like cards (worker i takes i, i+n, i+2n, …) so that
    /// the expensive high primes are spread evenly rather than landing on the
    /// last worker.
    fn my_steps(&self, steps: u64) -> impl Iterator<Item = u64> {
        (self.worker as u64..steps).step_by(self.workers as usize)
    }

    /// How many steps this worker will report progress for.
    pub fn total_steps(&self) -> u64 {
        self.my_steps(self.step_count()).count() as u64
    }

    fn step_count(&self) -> u64 {
        match self.workload {
            Compute::Primes { below } => STEPS_PER_WORKLOAD.min(below).max(1),
            Compute::Sha256Chain { rounds } => {
                // Each worker runs one chain, cut into equal steps.
                let mine = split_evenly(rounds, self.worker, self.workers);
                (STEPS_PER_WORKLOAD / self.workers as u64).clamp(1, mine.max(1))
                    * self.workers as u64
            }
            Compute::Sleep { ms } | Compute::BlockingWait { ms } => {
                let mine = split_evenly(ms, self.worker, self.workers);
                mine.div_ceil(SLEEP_STEP.as_millis() as u64).max(1) * self.workers as u64
            }
        }
    }

    /// Do the work. `should_stop` is asked between steps; `progress` is told
    /// `(done, total)` after each one.
    pub fn run(
        &self,
        mut should_stop: impl FnMut() -> bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<WorkResult, Stopped> {
        let total = self.total_steps();
        match self.workload {
            Compute::Primes { below } => {
                // Validation keeps `below` far inside u32, and 32-bit division
                // is markedly faster than 64-bit on x86.
                let below = below.min(u64::from(u32::MAX));
                let divisors = small_primes(isqrt(below) as u32);
                let steps = self.step_count();
                let mut count = 0;
                for (done, step) in self.my_steps(steps).enumerate() {
                    if should_stop() {
                        return Err(Stopped);
                    }
                    let (lo, hi) = step_range(below, steps, step);
                    count += count_primes_in(lo as u32, hi as u32, &divisors);
                    progress(done as u64 + 1, total);
                }
                Ok(WorkResult::Primes { count })
            }
            Compute::Sha256Chain { rounds } => {
                let mine = split_evenly(rounds, self.worker, self.workers);
                let mut state = chain_seed(self.worker);
                for done in 0..total {
                    if should_stop() {
                        return Err(Stopped);
                    }
                    let step_rounds = split_evenly(mine, done as u32, total as u32);
                    state = sha256_rounds(state, step_rounds);
                    progress(done + 1, total);
                }
                Ok(WorkResult::Sha256Chain {
                    digests: vec![hex(&state)],
                })
            }
            Compute::Sleep { .. } | Compute::BlockingWait { .. } => {
                let mine = self.wait();
                let started = Instant::now();
                for done in 0..total {
                    if should_stop() {
                        return Err(Stopped);
                    }
                    let left = mine.saturating_sub(started.elapsed());
                    std::thread::sleep(left.min(SLEEP_STEP));
                    progress(done + 1, total);
                }
                Ok(WorkResult::Slept {
                    ms: started.elapsed().as_millis() as u64,
                })
            }
        }
    }
}

impl Share {
    /// How long this worker waits, for the waiting workloads.
    pub fn wait(&self) -> Duration {
        match self.workload {
            Compute::Sleep { ms } | Compute::BlockingWait { ms } => {
                Duration::from_millis(split_evenly(ms, self.worker, self.workers))
            }
            Compute::Primes { .. } | Compute::Sha256Chain { .. } => Duration::ZERO,
        }
    }

    /// The longest one waiting step takes.
    pub const WAIT_STEP: Duration = SLEEP_STEP;
}

/// Put the workers' results together, in worker order.
pub fn combine(results: Vec<WorkResult>) -> WorkResult {
    let mut iter = results.into_iter();
    let Some(first) = iter.next() else {
        return WorkResult::Incomplete;
    };
    iter.fold(first, |acc, next| match (acc, next) {
        (WorkResult::Primes { count: a }, WorkResult::Primes { count: b }) => {
            WorkResult::Primes { count: a + b }
        }
        (WorkResult::Sha256Chain { digests: mut a }, WorkResult::Sha256Chain { digests: b }) => {
            a.extend(b);
            WorkResult::Sha256Chain { digests: a }
        }
        (WorkResult::Slept { ms: a }, WorkResult::Slept { ms: b }) => {
            WorkResult::Slept { ms: a + b }
        }
        (WorkResult::Requests { served: a }, WorkResult::Requests { served: b }) => {
            WorkResult::Requests { served: a + b }
        }
        (WorkResult::Hashed { calls: a }, WorkResult::Hashed { calls: b }) => {
            WorkResult::Hashed { calls: a + b }
        }
        _ => WorkResult::Incomplete,
    })
}

/// `total` cut into `parts` near-equal pieces; the first `total % parts`
/// pieces are one larger.
fn split_evenly(total: u64, part: u32, parts: u32) -> u64 {
    let (part, parts) = (part as u64, parts as u64);
    total / parts + u64::from(part < total % parts)
}

/// The numbers `[lo, hi)` that step `step` of `steps` covers in `[0, below)`.
fn step_range(below: u64, steps: u64, step: u64) -> (u64, u64) {
    let edge = |s: u64| (below as u128 * s as u128 / steps as u128) as u64;
    (edge(step), edge(step + 1))
}

/// Largest `r` with `r * r <= n`.
fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// The primes up to and including `limit`, by a plain sieve: the divisors the
/// trial division needs. Tiny (under 1,000 primes for any allowed size).
fn small_primes(limit: u32) -> Vec<u32> {
    let limit = limit as usize;
    let mut composite = vec![false; limit + 1];
    let mut primes = Vec::new();
    for i in 2..=limit {
        if !composite[i] {
            primes.push(i as u32);
            (i * i..=limit).step_by(i).for_each(|j| composite[j] = true);
        }
    }
    primes
}

/// Count primes in `[lo, hi)` by trial division by `divisors`, which must hold
/// every prime up to the square root of `hi - 1`. Deliberately CPU-bound: this
/// is the kind of loop that freezes a Node.js event loop.
pub fn count_primes_in(lo: u32, hi: u32, divisors: &[u32]) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| {
            divisors
                .iter()
                .take_while(|&&p| p * p <= n)
                .all(|&p| n % p != 0)
        })
        .count() as u64
}

/// The first state of worker `worker`'s chain: SHA-256 of `spawnlab:<worker>`.
pub fn chain_seed(worker: u32) -> [u8; 32] {
    Sha256::digest(format!("spawnlab:{worker}")).into()
}

/// Hash `state` `rounds` times, each round hashing the previous digest.
pub fn sha256_rounds(mut state: [u8; 32], rounds: u64) -> [u8; 32] {
    for _ in 0..rounds {
        state = Sha256::digest(state).into();
    }
    state
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_all(workload: Compute, workers: u32) -> WorkResult {
        let results = (0..workers)
            .map(|w| {
                Share::new(workload, w, workers)
                    .run(|| false, |_, _| {})
                    .unwrap()
            })
            .collect();
        combine(results)
    }

    #[test]
    fn there_are_78498_primes_below_a_million() {
        assert_eq!(
            run_all(Compute::Primes { below: 1_000_000 }, 1),
            WorkResult::Primes { count: 78_498 }
        );
    }

    #[test]
    fn the_prime_count_does_not_depend_on_how_it_is_split() {
        for workers in [1, 2, 3, 7, 16] {
            assert_eq!(
                run_all(Compute::Primes { below: 100_000 }, workers),
                WorkResult::Primes { count: 9_592 },
                "{workers} workers"
            );
        }
    }

    #[test]
    fn small_prime_counts_are_exact() {
        // Below 0, 1, 2 there are no primes; below 3 there is one (2); below
        // 10 there are four; 97 is the 25th prime, so below 100 there are 25.
        for (below, count) in [
            (0, 0),
            (1, 0),
            (2, 0),
            (3, 1),
            (10, 4),
            (100, 25),
            (101, 25),
            (102, 26),
        ] {
            assert_eq!(
                run_all(Compute::Primes { below }, 1),
                WorkResult::Primes { count },
                "below {below}"
            );
        }
    }

    #[test]
    fn isqrt_is_exact_at_squares() {
        for n in [0, 1, 3, 4, 15, 16, 17, 99_999_999_999, 100_000_000_000] {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "{n}");
        }
    }

    #[test]
    fn sha256_chain_matches_an_independent_implementation() {
        // Worker 0's chain of 1,000 rounds, checked with Python:
        // h = hashlib.sha256(b"spawnlab:0").digest()
        // for _ in range(1000): h = hashlib.sha256(h).digest()
        let WorkResult::Sha256Chain { digests } =
            run_all(Compute::Sha256Chain { rounds: 1_000 }, 1)
        else {
            panic!("not a chain result");
        };
        assert_eq!(digests, vec![CHAIN_0_1000.to_string()]);
    }

    #[test]
    fn sha256_chains_are_split_into_one_chain_per_worker() {
        let WorkResult::Sha256Chain { digests } =
            run_all(Compute::Sha256Chain { rounds: 2_001 }, 2)
        else {
            panic!("not a chain result");
        };
        // Worker 0 does 1,001 rounds, worker 1 does 1,000.
        assert_eq!(
            digests,
            vec![
                hex(&sha256_rounds(chain_seed(0), 1_001)),
                hex(&sha256_rounds(chain_seed(1), 1_000))
            ]
        );
    }

    #[test]
    fn a_stop_request_ends_the_work_between_steps() {
        let share = Share::new(Compute::Primes { below: 10_000_000 }, 0, 1);
        let mut asked = 0;
        let mut last_progress = 0;
        let result = share.run(
            || {
                asked += 1;
                asked > 3
            },
            |done, _| last_progress = done,
        );
        assert_eq!(result, Err(Stopped));
        assert_eq!(last_progress, 3);
    }

    #[test]
    fn progress_counts_up_to_the_total() {
        for workload in [
            Compute::Primes { below: 50_000 },
            Compute::Sha256Chain { rounds: 500 },
            Compute::Sleep { ms: 30 },
        ] {
            let share = Share::new(workload, 1, 3);
            let mut seen = Vec::new();
            share.run(|| false, |d, t| seen.push((d, t))).unwrap();
            let total = share.total_steps();
            assert!(total > 0, "{workload:?}");
            assert_eq!(seen.last(), Some(&(total, total)), "{workload:?}");
            assert_eq!(seen.len() as u64, total, "{workload:?}");
        }
    }

    #[test]
    fn only_computable_workloads_reach_a_worker() {
        assert_eq!(
            Compute::try_from(&Workload::HttpHello),
            Err(NotComputable("http_hello"))
        );
        let primes = Workload::Primes { below: 10 };
        assert_eq!(Workload::from(Compute::try_from(&primes).unwrap()), primes);
    }

    const CHAIN_0_1000: &str = "b5c6dbf0ba223224e48d88bdba4af91377f904c1a5f3365a47265e8827962694";
}
