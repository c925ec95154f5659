//! Who runs now, who waits, and who is turned away.
//!
//! A run needs one of the server's run slots (by default one per CPU), a
//! share of its worker budget (live threads and processes across all runs)
//! and a share of its memory budget (a Node.js worker weighs far more than a
//! Rust thread: see [`crate::engine::Plan::weight`]). When any is short the
//! run joins a bounded first-come queue and hears its place in line every
//! time the line moves; when the queue is full it is refused at once with a
//! clear message.

use super::{Stop, StopReason};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Held while a run executes; dropping it frees the slot and the workers.
#[derive(Debug)]
pub struct Pass {
    _run: OwnedSemaphorePermit,
    _workers: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

/// What a run takes from the budgets while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight {
    /// Threads and processes alive at once.
    pub workers: u32,
    /// Memory they may hold, in MiB (an estimate from measurements).
    pub memory_mib: u32,
}

/// Why a run did not get in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue already holds this many runs.
    QueueFull(u32),
    /// It was stopped while it waited.
    Stopped(StopReason),
}

/// The server's run slots, worker budget and waiting line.
#[derive(Debug)]
pub struct Admission {
    runs: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    max_live_workers: u32,
    max_memory_mib: u32,
    max_queue: u32,
    /// Waiting runs' tickets, first in line first.
    line: Mutex<VecDeque<u64>>,
    /// Bumped whenever the line changes, so waiters recompute their place.
    moved: watch::Sender<u64>,
    tickets: AtomicU64,
}

impl Admission {
    /// At most `max_runs` runs at once, `max_live_workers` workers and
    /// `max_memory_mib` MiB among them, and `max_queue` runs waiting.
    pub fn new(max_runs: u32, max_live_workers: u32, max_memory_mib: u32, max_queue: u32) -> Self {
        Admission {
            runs: Arc::new(Semaphore::new(max_runs.max(1) as usize)),
            workers: Arc::new(Semaphore::new(max_live_workers.max(1) as usize)),
            memory: Arc::new(Semaphore::new(max_memory_mib.max(1) as usize)),
            max_live_workers: max_live_workers.max(1),
            max_memory_mib: max_memory_mib.max(1),
            max_queue,
            line: Mutex::new(VecDeque::new()),
            moved: watch::channel(0).0,
            tickets: AtomicU64::new(0),
        }
    }

    /// Let a run of `weight` in, now or after waiting; `position` hears
    /// its place in line (1 is next) whenever it changes.
    pub async fn enter(
        &self,
        weight: Weight,
        mut position: impl FnMut(u32),
        stop: &Stop,
    ) -> Result<Pass, Refusal> {
        // A run larger than a whole budget may still run, alone.
        let workers = weight.workers.clamp(1, self.max_live_workers);
        let memory = weight.memory_mib.clamp(1, self.max_memory_mib);
        if self.line().is_empty() {
            if let Ok(run) = self.runs.clone().try_acquire_owned() {
                if let Ok(w) = self.workers.clone().try_acquire_many_owned(workers) {
                    if let Ok(m) = self.memory.clone().try_acquire_many_owned(memory) {
                        return Ok(Pass {
                            _run: run,
                            _workers: w,
                            _memory: m,
                        });
                    }
                }
            }
        }
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        {
            let mut line = self.line();
            if line.len() >= self.max_queue as usize {
                return Err(Refusal::QueueFull(self.max_queue));
            }
            line.push_back(ticket);
        }
        let _leave = Leave {
            admission: self,
            ticket,
        };
        self.moved.send_modify(|v| *v += 1);
        let mut moved = self.moved.subscribe();
        // Semaphores serve waiters in order, so this acquires in line order.
        let acquire = async {
            let run = self.runs.clone().acquire_owned().await;
            let w = self.workers.clone().acquire_many_owned(workers).await;
            let m = self.memory.clone().acquire_many_owned(memory).await;
            (run, w, m)
        };
        tokio::pin!(acquire);
        let mut told = 0;
        loop {
            let place = self.place(ticket);
            if place != told {
                position(place);
                told = place;
            }
            tokio::select! {
                (run, w, m) = &mut acquire => {
                    return Ok(Pass {
                        _run: run.expect("the semaphore is never closed"),
                        _workers: w.expect("the semaphore is never closed"),
                        _memory: m.expect("the semaphore is never closed"),
                    });
                }
                _ = moved.changed() => {}
                reason = stop.requested() => return Err(Refusal::Stopped(reason)),
            }
        }
    }

    fn line(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn place(&self, ticket: u64) -> u32 {
        self.line()
            .iter()
            .position(|&t| t == ticket)
            .map_or(0, |i| i as u32 + 1)
    }
}

/// Leaves the line on every way out of [`Admission::enter`].
struct Leave<'a> {
    admission: &'a Admission,
    ticket: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.admission.line().retain(|&t| t != self.ticket);
        self.admission.moved.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn workers(n: u32) -> Weight {
        Weight {
            workers: n,
            memory_mib: 1,
        }
    }

    #[tokio::test]
    async fn waiting_runs_hear_their_place_as_the_line_moves() {
        let admission = Arc::new(Admission::new(1, 16, 1024, 4));
        let first = admission
            .enter(workers(1), |_| {}, &Stop::new())
            .await
            .unwrap();

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for name in ["second", "third"] {
            let (admission, tx) = (admission.clone(), tx.clone());
            waiters.push(tokio::spawn(async move {
                let pass = admission
                    .enter(workers(1), |p| tx.send((name, p)).unwrap(), &Stop::new())
                    .await
                    .unwrap();
                tx.send((name, 0)).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(pass);
            }));
            // Join the line in a known order.
            assert_eq!(
                rx.recv().await,
                Some((name, if name == "second" { 1 } else { 2 }))
            );
        }
        drop(first);
        // Second gets in and third moves up to first in line, in either order.
        let mut next_two = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        next_two.sort();
        assert_eq!(next_two, vec![("second", 0), ("third", 1)]);
        assert_eq!(rx.recv().await, Some(("third", 0)), "then third gets in");
        for w in waiters {
            w.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_full_line_turns_runs_away_and_a_stopped_waiter_leaves_it() {
        let admission = Arc::new(Admission::new(1, 16, 1024, 1));
        let _running = admission
            .enter(workers(1), |_| {}, &Stop::new())
            .await
            .unwrap();
        let stop = Stop::new();
        let waiter = {
            let (admission, stop) = (admission.clone(), stop.clone());
            tokio::spawn(async move { admission.enter(workers(1), |_| {}, &stop).await.map(drop) })
        };
        while admission.line().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            admission
                .enter(workers(1), |_| {}, &Stop::new())
                .await
                .map(drop),
            Err(Refusal::QueueFull(1))
        );
        stop.request(StopReason::Cancelled);
        assert_eq!(
            waiter.await.unwrap(),
            Err(Refusal::Stopped(StopReason::Cancelled))
        );
        assert!(admission.line().is_empty(), "the stopped run left the line");
    }

    #[tokio::test]
    async fn the_worker_budget_is_shared_between_runs() {
        let admission = Arc::new(Admission::new(4, 10, 1024, 4));
        let big = admission
            .enter(workers(8), |_| {}, &Stop::new())
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move {
                let _pass = admission
                    .enter(workers(4), |p| tx.send(p).unwrap(), &Stop::new())
                    .await;
            })
        };
        assert_eq!(
            rx.recv().await,
            Some(1),
            "8 + 4 workers exceed the budget of 10"
        );
        drop(big);
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_between_runs() {
        let admission = Arc::new(Admission::new(4, 40, 100, 4));
        let heavy = Weight {
            workers: 3,
            memory_mib: 80,
        };
        let big = admission.enter(heavy, |_| {}, &Stop::new()).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move {
                let _pass = admission
                    .enter(heavy, |p| tx.send(p).unwrap(), &Stop::new())
                    .await;
            })
        };
        assert_eq!(
            rx.recv().await,
            Some(1),
            "80 + 80 MiB exceed the budget of 100"
        );
        drop(big);
        waiter.await.unwrap();
    }
}
