//! Who runs now, who waits, and who is turned away.
//!
//! A run needs one of the server's run slots (by default one per CPU), a
//! share of its worker budget (live threads and processes across all runs)
//! and a share of its memory budget (a Node.js worker weighs far more than a
//! Rust thread: see [`crate::engine::Plan::weight`]). When any is short the
//! run joins a bounded line and hears its place, with an estimate of the
//! wait, every time the line moves; when the line is full it is refused at
//! once with a clear message.
//!
//! The line is fair between learners rather than between connections: a
//! run's *round* is how many runs its learner already has running or
//! waiting, and the line is ordered by round, then by arrival. A learner
//! who queues five runs (from five tabs, or five sockets) gets one of them
//! in among everyone else's first, the next among everyone's second, and
//! so on: nobody's run waits behind more than one of another learner's.
//! Only the head of the line is let in, so a large run is never overtaken
//! forever by small ones.

use super::{Stop, StopReason};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Who a run belongs to: a browser (the token its page keeps) or, without
/// one, a single connection. Runs are served fairly between learners.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Learner(Arc<str>);

impl Learner {
    /// The learner a page's token names.
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        Learner(key.into())
    }
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

/// A waiting run's place in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 1 is next.
    pub position: u32,
    /// How long it should wait, from how long recent runs held their
    /// slot; `None` until a run has finished.
    pub wait: Option<Duration>,
}

/// The server's run slots, worker budget and waiting line.
#[derive(Debug)]
pub struct Admission {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    max_runs: u32,
    max_live_workers: u32,
    max_memory_mib: u32,
    max_queue: u32,
    state: Mutex<State>,
    /// Bumped whenever the line changes, so waiters recompute their place.
    moved: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    free_runs: u32,
    free_workers: u32,
    free_memory: u32,
    /// Waiting runs, in the order they will be let in: by round, then
    /// by ticket.
    line: Vec<Waiter>,
    /// Runs holding a pass, per learner.
    running: HashMap<Learner, u32>,
    /// Each running pass's count of runs that shared the machine with it.
    live: Vec<Arc<AtomicU32>>,
    next_ticket: u64,
    /// A moving average of how long a run holds its slot, milliseconds.
    held_ms: Option<f64>,
}

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    round: u32,
    learner: Learner,
    workers: u32,
    memory: u32,
    grant: oneshot::Sender<Pass>,
}

/// Held while a run executes; dropping it frees the slot and the workers,
/// and lets the next run in.
#[derive(Debug)]
pub struct Pass {
    shared: Arc<Shared>,
    learner: Learner,
    workers: u32,
    memory: u32,
    since: Instant,
    others: Arc<AtomicU32>,
}

impl Pass {
    /// The most other runs that were executing at once while this one held
    /// its pass: its figures were measured on a machine shared with them.
    pub fn shared_with(&self) -> u32 {
        self.others.load(Ordering::Relaxed)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let undelivered = {
            let mut st = self.shared.lock();
            st.free_runs += 1;
            st.free_workers += self.workers;
            st.free_memory += self.memory;
            if let Some(n) = st.running.get_mut(&self.learner) {
                *n -= 1;
                if *n == 0 {
                    st.running.remove(&self.learner);
                }
            }
            st.live.retain(|o| !Arc::ptr_eq(o, &self.others));
            let held = self.since.elapsed().as_secs_f64() * 1000.0;
            st.held_ms = Some(st.held_ms.map_or(held, |avg| 0.8 * avg + 0.2 * held));
            self.shared.dispatch(&mut st)
        };
        self.shared.moved.send_modify(|v| *v += 1);
        // Passes whose waiter left as they were granted: dropping them
        // (outside the lock) frees their share again.
        drop(undelivered);
    }
}

impl Admission {
    /// At most `max_runs` runs at once, `max_live_workers` workers and
    /// `max_memory_mib` MiB among them, and `max_queue` runs waiting.
    pub fn new(max_runs: u32, max_live_workers: u32, max_memory_mib: u32, max_queue: u32) -> Self {
        let (max_runs, max_live_workers, max_memory_mib) = (
            max_runs.max(1),
            max_live_workers.max(1),
            max_memory_mib.max(1),
        );
        Admission {
            shared: Arc::new(Shared {
                max_runs,
                max_live_workers,
                max_memory_mib,
                max_queue,
                state: Mutex::new(State {
                    free_runs: max_runs,
                    free_workers: max_live_workers,
                    free_memory: max_memory_mib,
                    line: Vec::new(),
                    running: HashMap::new(),
                    live: Vec::new(),
                    next_ticket: 0,
                    held_ms: None,
                }),
                moved: watch::channel(0).0,
            }),
        }
    }

    /// Let `learner`'s run of `weight` in, now or after waiting; `place`
    /// hears its place in line whenever it changes.
    pub async fn enter(
        &self,
        learner: &Learner,
        weight: Weight,
        mut place: impl FnMut(Place),
        stop: &Stop,
    ) -> Result<Pass, Refusal> {
        let shared = &self.shared;
        // A run larger than a whole budget may still run, alone.
        let workers = weight.workers.clamp(1, shared.max_live_workers);
        let memory = weight.memory_mib.clamp(1, shared.max_memory_mib);
        let (ticket, granted) = {
            let mut st = shared.lock();
            if st.line.is_empty() && st.fits(workers, memory) {
                return Ok(shared.grant(&mut st, learner.clone(), workers, memory));
            }
            if st.line.len() >= shared.max_queue as usize {
                return Err(Refusal::QueueFull(shared.max_queue));
            }
            let round = st.running.get(learner).copied().unwrap_or(0)
                + st.line.iter().filter(|w| w.learner == *learner).count() as u32;
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            let (grant, granted) = oneshot::channel();
            let at = st
                .line
                .partition_point(|w| (w.round, w.ticket) <= (round, ticket));
            st.line.insert(
                at,
                Waiter {
                    ticket,
                    round,
                    learner: learner.clone(),
                    workers,
                    memory,
                    grant,
                },
            );
            (ticket, granted)
        };
        let _leave = Leave { shared, ticket };
        shared.moved.send_modify(|v| *v += 1);
        let mut moved = shared.moved.subscribe();
        tokio::pin!(granted);
        let mut told = 0;
        loop {
            if let Some(now) = shared.place(ticket) {
                if now.position != told {
                    place(now);
                    told = now.position;
                }
            }
            tokio::select! {
                pass = &mut granted => {
                    // The sender goes only with a grant or with `_leave`.
                    return pass.map_err(|_| Refusal::Stopped(StopReason::Shutdown));
                }
                _ = moved.changed() => {}
                reason = stop.requested() => return Err(Refusal::Stopped(reason)),
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take the budgets for one run now.
    fn grant(
        self: &Arc<Self>,
        st: &mut State,
        learner: Learner,
        workers: u32,
        memory: u32,
    ) -> Pass {
        st.free_runs -= 1;
        st.free_workers -= workers;
        st.free_memory -= memory;
        *st.running.entry(learner.clone()).or_insert(0) += 1;
        let others = st.live.len() as u32;
        for o in &st.live {
            o.fetch_max(others, Ordering::Relaxed);
        }
        let mine = Arc::new(AtomicU32::new(others));
        st.live.push(mine.clone());
        Pass {
            shared: self.clone(),
            learner,
            workers,
            memory,
            since: Instant::now(),
            others: mine,
        }
    }

    /// Let in the head of the line while it fits. Passes whose waiter has
    /// just left are handed back, to be dropped once the lock is released.
    fn dispatch(self: &Arc<Self>, st: &mut State) -> Vec<Pass> {
        let mut undelivered = Vec::new();
        while let Some(head) = st.line.first() {
            if !st.fits(head.workers, head.memory) {
                break;
            }
            let w = st.line.remove(0);
            let pass = self.grant(st, w.learner, w.workers, w.memory);
            if let Err(pass) = w.grant.send(pass) {
                undelivered.push(pass);
            }
        }
        undelivered
    }

    /// Where `ticket` stands, if it is still in line.
    fn place(&self, ticket: u64) -> Option<Place> {
        let st = self.lock();
        let i = st.line.iter().position(|w| w.ticket == ticket)?;
        let position = i as u32 + 1;
        // Runs leave at about `max_runs` per average hold.
        let wait = st.held_ms.map(|ms| {
            Duration::from_millis((ms * position as f64 / self.max_runs as f64).ceil() as u64)
        });
        Some(Place { position, wait })
    }
}

impl State {
    fn fits(&self, workers: u32, memory: u32) -> bool {
        self.free_runs >= 1 && self.free_workers >= workers && self.free_memory >= memory
    }
}

/// Leaves the line on every way out of [`Admission::enter`].
struct Leave<'a> {
    shared: &'a Arc<Shared>,
    ticket: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let undelivered = {
            let mut st = self.shared.lock();
            let before = st.line.len();
            st.line.retain(|w| w.ticket != self.ticket);
            if st.line.len() == before {
                // Let in (its grant already moved the line): nothing to do.
                return;
            }
            // The head may have been the run that left, and the one behind
            // it may fit.
            self.shared.dispatch(&mut st)
        };
        self.shared.moved.send_modify(|v| *v += 1);
        drop(undelivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn me() -> Learner {
        Learner::new("me")
    }

    fn workers(n: u32) -> Weight {
        Weight {
            workers: n,
            memory_mib: 1,
        }
    }

    /// Let `name`'s run of `weight` in; the test knows it fits.
    async fn enter_now(admission: &Admission, name: &str, weight: Weight) -> Pass {
        admission
            .enter(&Learner::new(name), weight, |_| {}, &Stop::new())
            .await
            .unwrap()
    }

    /// `name`'s run of `weight`, waiting: every place it hears goes to
    /// `places`; the task ends, dropping its pass, once it is let in.
    fn wait_in_line(
        admission: &Arc<Admission>,
        name: &'static str,
        weight: Weight,
        places: tokio::sync::mpsc::UnboundedSender<Place>,
    ) -> tokio::task::JoinHandle<Result<(), Refusal>> {
        let admission = admission.clone();
        tokio::spawn(async move {
            admission
                .enter(
                    &Learner::new(name),
                    weight,
                    |p| places.send(p).unwrap(),
                    &Stop::new(),
                )
                .await
                .map(drop)
        })
    }

    #[tokio::test]
    async fn waiting_runs_hear_their_place_as_the_line_moves() {
        let admission = Arc::new(Admission::new(1, 16, 1024, 4));
        let first = enter_now(&admission, "me", workers(1)).await;

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for name in ["second", "third"] {
            let (admission, tx) = (admission.clone(), tx.clone());
            waiters.push(tokio::spawn(async move {
                let pass = admission
                    .enter(
                        &Learner::new(name),
                        workers(1),
                        |p| tx.send((name, p.position)).unwrap(),
                        &Stop::new(),
                    )
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
        let _running = enter_now(&admission, "me", workers(1)).await;
        let stop = Stop::new();
        let waiter = {
            let (admission, stop) = (admission.clone(), stop.clone());
            tokio::spawn(async move {
                admission
                    .enter(&me(), workers(1), |_| {}, &stop)
                    .await
                    .map(drop)
            })
        };
        while admission.shared.lock().line.is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            admission
                .enter(&me(), workers(1), |_| {}, &Stop::new())
                .await
                .map(drop),
            Err(Refusal::QueueFull(1))
        );
        stop.request(StopReason::Cancelled);
        assert_eq!(
            waiter.await.unwrap(),
            Err(Refusal::Stopped(StopReason::Cancelled))
        );
        assert!(
            admission.shared.lock().line.is_empty(),
            "the stopped run left the line"
        );
    }

    #[tokio::test]
    async fn the_worker_budget_is_shared_between_runs() {
        let admission = Arc::new(Admission::new(4, 10, 1024, 4));
        let big = enter_now(&admission, "me", workers(8)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = wait_in_line(&admission, "me", workers(4), tx);
        assert_eq!(
            rx.recv().await.map(|p| p.position),
            Some(1),
            "8 + 4 workers exceed the budget of 10"
        );
        drop(big);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_between_runs() {
        let admission = Arc::new(Admission::new(4, 40, 100, 4));
        let heavy = Weight {
            workers: 3,
            memory_mib: 80,
        };
        let big = enter_now(&admission, "me", heavy).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = wait_in_line(&admission, "me", heavy, tx);
        assert_eq!(
            rx.recv().await.map(|p| p.position),
            Some(1),
            "80 + 80 MiB exceed the budget of 100"
        );
        drop(big);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    /// Queue `name`'s run behind a full server and report when it gets in.
    fn queue(
        admission: &Arc<Admission>,
        name: &'static str,
        order: &tokio::sync::mpsc::UnboundedSender<&'static str>,
    ) -> tokio::task::JoinHandle<()> {
        let (admission, order) = (admission.clone(), order.clone());
        let learner = Learner::new(name.split(':').next().unwrap());
        tokio::spawn(async move {
            let pass = admission
                .enter(&learner, workers(1), |_| {}, &Stop::new())
                .await
                .unwrap();
            order.send(name).unwrap();
            drop(pass);
        })
    }

    async fn line_holds(admission: &Admission, n: usize) {
        while admission.shared.lock().line.len() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_learner_with_many_runs_waits_its_turn_between_the_others() {
        let admission = Arc::new(Admission::new(1, 16, 1024, 16));
        let running = enter_now(&admission, "me", workers(1)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // One greedy learner lines up three runs before two others arrive.
        let mut tasks = Vec::new();
        for (n, name) in ["greedy:1", "greedy:2", "greedy:3", "ann:1", "bob:1"]
            .into_iter()
            .enumerate()
        {
            tasks.push(queue(&admission, name, &tx));
            line_holds(&admission, n + 1).await;
        }
        drop(running);
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(rx.recv().await.unwrap());
        }
        assert_eq!(
            order,
            ["greedy:1", "ann:1", "bob:1", "greedy:2", "greedy:3"],
            "the others' first runs go before the greedy learner's second"
        );
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_pass_counts_the_runs_that_shared_the_machine_and_waiters_hear_an_estimate() {
        let admission = Arc::new(Admission::new(3, 16, 1024, 4));
        let first = enter_now(&admission, "a", workers(1)).await;
        assert_eq!(first.shared_with(), 0, "alone so far");
        let second = enter_now(&admission, "b", workers(1)).await;
        let third = enter_now(&admission, "c", workers(1)).await;
        assert_eq!(
            (
                first.shared_with(),
                second.shared_with(),
                third.shared_with()
            ),
            (2, 2, 2)
        );
        // Before any run has finished there is nothing to estimate from.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = wait_in_line(&admission, "d", workers(1), tx.clone());
        let told = rx.recv().await.unwrap();
        assert_eq!((told.position, told.wait), (1, None));
        drop(third);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        // Now one run has finished, a newcomer hears how long to expect.
        let _fourth = enter_now(&admission, "e", workers(1)).await;
        let waiter = wait_in_line(&admission, "f", workers(1), tx);
        let told = rx.recv().await.unwrap();
        assert_eq!(told.position, 1);
        assert!(told.wait.is_some(), "an estimate once a run has finished");
        assert_eq!(first.shared_with(), 2, "the most at once, not the sum");
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        drop(second);
    }

    #[tokio::test]
    async fn the_estimate_is_the_place_times_the_average_hold_over_the_slots() {
        let admission = Arc::new(Admission::new(2, 16, 1024, 4));
        let _a = enter_now(&admission, "a", workers(1)).await;
        let _b = enter_now(&admission, "b", workers(1)).await;
        // As if recent runs had held their slot for 900 ms on average.
        admission.shared.lock().held_ms = Some(900.0);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _c = wait_in_line(&admission, "c", workers(1), tx.clone());
        line_holds(&admission, 1).await;
        let _d = wait_in_line(&admission, "d", workers(1), tx);
        let heard = [rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        // Two slots free up one run per 450 ms: 1st in line waits 450 ms,
        // 2nd waits 900 ms.
        assert_eq!(
            heard.map(|p| (p.position, p.wait)),
            [
                (1, Some(Duration::from_millis(450))),
                (2, Some(Duration::from_millis(900)))
            ]
        );
    }
}
