//! One learner's WebSocket connection: read requests, start and cancel runs,
//! forward every run's events.
//!
//! A [`Session`] is generic over the socket's two halves so tests can drive
//! it with plain channels. It owns the runs it started, in a `JoinSet`: a
//! run that panics is reported as failed and frees its place; when the
//! connection goes away, or the server shuts down, every run is told to
//! stop.
//!
//! A bad frame never ends the session. It gets an `error` event naming the
//! field and what it allows, and the next frame is read as if nothing happened.

use crate::engine::error::panic_message;
use crate::engine::{Engine, EventSink, Learner, Refused, RunError, RunHandle, Stop, StopReason};
use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::{ClientMessage, Outcome, RunId, RunSpec, RunSummary, ServerEvent, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Runs one connection may have at once: one running and one queued behind
/// it — enough to line up the next experiment, not enough to hog the server.
pub const MAX_RUNS_PER_CONNECTION: usize = 2;

/// How long a closing session waits for its stopped runs to report.
const DRAIN: Duration = Duration::from_secs(3);

/// How often the server pings a connection by default: well inside the idle
/// timeout of a proxy in front of it (nginx's `proxy_read_timeout` is 60 s
/// unless set, deploy/ sets 90 s), so a learner reading a page for minutes
/// is never cut off. The browser answers with a pong by itself.
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// Why the WebSocket layer could not read a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The frame is bigger than the WebSocket layer reads at all.
    TooLarge { size: usize },
    /// The connection broke.
    Broken,
}

/// How long a connection closed for a frame too large stays open after its
/// close frame, so the client reads the close before the socket goes.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// The WebSocket close code for a message too big to process (RFC 6455).
const CLOSE_TOO_BIG: u16 = 1009;

/// Serve one connection until the client leaves or `shutdown` is requested.
/// `learner` is whose runs these are: the engine's queue is fair between
/// learners, however many connections each has. A ping goes out every
/// `ping` ([`PING_EVERY`] unless the operator set another).
pub async fn serve<W, R>(
    engine: Arc<Engine>,
    learner: Learner,
    sink: W,
    mut stream: R,
    shutdown: Stop,
    ping: Duration,
) where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, ReadError>> + Unpin,
{
    let mut session = Session::new(engine, learner, sink);
    let hello = ServerEvent::Hello {
        version: PROTOCOL_VERSION,
        limits: session.engine.limits().to_protocol(),
        runtimes: session.engine.runtimes().await,
        balancers: session.engine.balancer_infos().await,
    };
    if session.send(&hello).await.is_err() {
        return;
    }
    // The first ping one interval from now, not at once; a late tick is
    // not made up for.
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        let step = tokio::select! {
            frame = stream.next() => session.on_frame(frame).await,
            _ = pings.tick() => session.ping().await,
            Some(ev) = session.events_rx.recv() => session.forward(ev).await,
            Some(ended) = session.tasks.join_next_with_id(), if !session.tasks.is_empty() => {
                session.on_task_end(ended);
                Ok(())
            }
            reason = shutdown.requested() => Err(reason),
        };
        if let Err(reason) = step {
            break reason;
        }
    };
    session.close(reason).await;
}

/// A run this connection started and has not seen finish.
struct Active {
    /// Tells this run from a later one that reused its id.
    ticket: u64,
    handle: RunHandle,
}

/// One connection's state: its runs, and where their events go.
struct Session<W> {
    engine: Arc<Engine>,
    learner: Learner,
    sink: W,
    /// Every run of this connection sends its events here.
    events: EventSink,
    events_rx: mpsc::UnboundedReceiver<ServerEvent>,
    /// Runs not yet seen finish. A run leaves when its `run_finished` is
    /// forwarded, or when its task ends (refused by the queue, or panicked).
    runs: HashMap<RunId, Active>,
    /// The runs' tasks, and which run (and ticket) each one is.
    tasks: JoinSet<()>,
    task_runs: HashMap<tokio::task::Id, (RunId, u64)>,
    tickets: u64,
    /// Held by the run that is executing: one at a time per connection.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<W: Sink<Message> + Unpin> Session<W> {
    fn new(engine: Arc<Engine>, learner: Learner, sink: W) -> Self {
        let (events, events_rx) = mpsc::unbounded_channel();
        Session {
            engine,
            learner,
            sink,
            events,
            events_rx,
            runs: HashMap::new(),
            tasks: JoinSet::new(),
            task_runs: HashMap::new(),
            tickets: 0,
            turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// One frame from the client, or its end. `Err` ends the session.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, ReadError>>,
    ) -> Result<(), StopReason> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let refused = Refused::Malformed {
                    field: None,
                    message: "send requests as JSON text frames, not binary".into(),
                };
                return self.send(&refused.event(None)).await;
            }
            Some(Err(ReadError::TooLarge { size })) => {
                return self.refuse_oversized(size).await;
            }
            Some(Ok(Message::Close(_))) | Some(Err(ReadError::Broken)) | None => {
                return Err(StopReason::Disconnected)
            }
            // Ping and pong are answered by axum.
            Some(Ok(_)) => return Ok(()),
        };
        let answer = match parse(&self.engine, text.as_str()) {
            Ok(ClientMessage::Start { id, spec }) => {
                self.on_start(id, spec).await.map_err(|r| (Some(id), r))
            }
            Ok(ClientMessage::Cancel { id }) => self.on_cancel(id).map_err(|r| (Some(id), r)),
            Ok(ClientMessage::Kill { id, worker }) => {
                self.on_kill(id, worker).map_err(|r| (Some(id), r))
            }
            Ok(ClientMessage::Fault { id, fault }) => {
                self.on_fault(id, fault).map_err(|r| (Some(id), r))
            }
            Err(refused) => Err(refused),
        };
        match answer {
            Ok(()) => Ok(()),
            Err((run, refused)) => self.send(&refused.event(run)).await,
        }
    }

    /// `start`: validate, then run in this connection's turn.
    async fn on_start(&mut self, id: RunId, spec: RunSpec) -> Result<(), Refused> {
        if self.runs.contains_key(&id) {
            return Err(Refused::DuplicateRun(id));
        }
        if self.runs.len() >= MAX_RUNS_PER_CONNECTION {
            return Err(Refused::ConnectionBusy(MAX_RUNS_PER_CONNECTION));
        }
        let (handle, run) = self
            .engine
            .prepare(&self.learner, id, spec, self.events.clone())
            .await?;
        self.tickets += 1;
        let ticket = self.tickets;
        let (events, turn, stop) = (self.events.clone(), self.turn.clone(), handle.clone());
        let task = self.tasks.spawn(async move {
            // One run at a time per connection: a second one waits here for
            // the first to end.
            if let Some(_turn) = take_turn(turn, id, &events, &stop).await {
                let _ = run.execute().await;
            }
        });
        self.task_runs.insert(task.id(), (id, ticket));
        self.runs.insert(id, Active { ticket, handle });
        Ok(())
    }

    /// `cancel`: stop a running or queued run.
    fn on_cancel(&mut self, id: RunId) -> Result<(), Refused> {
        let run = self.runs.get(&id).ok_or(Refused::UnknownRun(id))?;
        run.handle.stop(StopReason::Cancelled);
        Ok(())
    }

    /// `kill`: kill one of a running cluster's workers now.
    fn on_kill(&mut self, id: RunId, worker: u32) -> Result<(), Refused> {
        let run = self.runs.get(&id).ok_or(Refused::UnknownRun(id))?;
        run.handle.kill(id, worker)
    }

    /// `fault`: break (or mend) part of a running scaling run now.
    fn on_fault(&mut self, id: RunId, fault: protocol::Fault) -> Result<(), Refused> {
        let run = self.runs.get(&id).ok_or(Refused::UnknownRun(id))?;
        run.handle.fault(id, fault)
    }

    /// A run's task ended. One that panicked is reported as failed, after
    /// whatever it had already said; either way its place is free.
    fn on_task_end(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (task, crashed) = match ended {
            Ok((task, ())) => (task, None),
            Err(e) => (e.id(), e.try_into_panic().ok()),
        };
        let Some((id, ticket)) = self.task_runs.remove(&task) else {
            return;
        };
        if let Some(payload) = crashed {
            let error = RunError::Panicked {
                what: format!("run {id}"),
                message: panic_message(payload),
            };
            tracing::error!("{}", error.message());
            // Through the run's own channel, so these come after its events.
            let _ = self.events.send(error.event(id));
            let _ = self.events.send(ServerEvent::RunFinished {
                run: id,
                summary: RunSummary::empty(Outcome::Failed),
            });
        }
        if self.runs.get(&id).is_some_and(|run| run.ticket == ticket) {
            self.runs.remove(&id);
        }
    }

    /// A frame the WebSocket layer would not read: the rest of it is still
    /// on the wire, so the connection cannot go on. Say why (an `error`
    /// event, then a close frame with code 1009), give the client a moment
    /// to read both, and end the session.
    async fn refuse_oversized(&mut self, size: usize) -> Result<(), StopReason> {
        let max = self.engine.limits().max_message_bytes as usize;
        let refused = Refused::TooLarge { max, got: size };
        tracing::warn!("closed a WebSocket after a frame of {size} bytes");
        let _ = self.send(&refused.event(None)).await;
        let reason = format!("a request may be at most {max} bytes");
        let _ = self
            .sink
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: CLOSE_TOO_BIG,
                reason: reason.into(),
            })))
            .await;
        tokio::time::sleep(CLOSE_LINGER).await;
        Err(StopReason::Disconnected)
    }

    /// Send an event on, and forget a run once its last event has gone out,
    /// so a client that has seen `run_finished` may reuse the id at once.
    async fn forward(&mut self, ev: ServerEvent) -> Result<(), StopReason> {
        if let ServerEvent::RunFinished { run, .. } = &ev {
            self.runs.remove(run);
        }
        self.send(&ev).await
    }

    /// A WebSocket ping: traffic a proxy counts against its idle timeout.
    async fn ping(&mut self) -> Result<(), StopReason> {
        self.sink
            .send(Message::Ping(Default::default()))
            .await
            .map_err(|_| StopReason::Disconnected)
    }

    async fn send(&mut self, ev: &ServerEvent) -> Result<(), StopReason> {
        let json = serde_json::to_string(ev).expect("events always serialize");
        self.sink
            .send(Message::Text(json.into()))
            .await
            .map_err(|_| StopReason::Disconnected)
    }

    /// Stop every run for `reason`. On shutdown, tell the learner, let the
    /// runs report their end, and close the socket.
    async fn close(mut self, reason: StopReason) {
        for run in self.runs.values() {
            run.handle.stop(reason);
        }
        if reason == StopReason::Shutdown {
            let notice = ServerEvent::Error {
                run: None,
                code: protocol::ErrorCode::ShuttingDown,
                field: None,
                message: "the server is shutting down: running labs are stopped and this \
                          connection will close"
                    .into(),
            };
            let _ = self.send(&notice).await;
            // Let the learner see their runs end before the socket closes.
            let _ = tokio::time::timeout(DRAIN, self.drain()).await;
            let _ = self.sink.send(Message::Close(None)).await;
        }
        // The stopped runs finish their own clean-up (kill, reap) even
        // though nobody is listening any more.
        self.tasks.detach_all();
    }

    /// Forward events until every run has ended.
    async fn drain(&mut self) {
        while !self.runs.is_empty() || !self.tasks.is_empty() {
            tokio::select! {
                Some(ev) = self.events_rx.recv() => {
                    if self.forward(ev).await.is_err() {
                        return;
                    }
                }
                Some(ended) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_task_end(ended);
                }
            }
        }
        // A run's task sends its last event before it ends, so whatever it
        // said is already queued here.
        while let Ok(ev) = self.events_rx.try_recv() {
            if self.send(&ev).await.is_err() {
                return;
            }
        }
    }
}

/// Wait for this connection's previous run to end, saying so; `None` if
/// the run was stopped while it waited (its `run_finished` is sent here).
async fn take_turn(
    turn: Arc<tokio::sync::Mutex<()>>,
    id: RunId,
    events: &EventSink,
    handle: &RunHandle,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    if let Ok(guard) = turn.clone().try_lock_owned() {
        return Some(guard);
    }
    let _ = events.send(ServerEvent::Queued {
        run: id,
        position: 1,
        wait_ms: None,
    });
    tokio::select! {
        guard = turn.lock_owned() => Some(guard),
        reason = handle.stopped() => {
            let _ = events.send(ServerEvent::RunFinished {
                run: id,
                summary: RunSummary::empty(reason.outcome()),
            });
            None
        }
    }
}

/// Turn a text frame into a request, or into the refusal that explains
/// what is wrong with it (and the run it names, if it got that far).
fn parse(engine: &Engine, text: &str) -> Result<ClientMessage, (Option<RunId>, Refused)> {
    let max = engine.limits().max_message_bytes as usize;
    if text.len() > max {
        return Err((
            None,
            Refused::TooLarge {
                max,
                got: text.len(),
            },
        ));
    }
    let malformed = |run, field, message| (run, Refused::Malformed { field, message });
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| malformed(None, None, format!("not valid JSON: {err}")))?;
    // Name the run if the frame got as far as having an id, so the page can
    // show the error beside the right run.
    let run = value.get("id").and_then(serde_json::Value::as_u64);
    // The message is tagged by "type", and serde reads tagged enums through
    // a buffer that forgets where in the frame an error was. Reading the spec
    // on its own first recovers the path, so the error can name the field.
    if let Some(spec) = value.get("spec") {
        if let Err(err) = serde_path_to_error::deserialize::<_, RunSpec>(spec) {
            let field = format!("spec.{}", err.path())
                .trim_end_matches('.')
                .to_string();
            let message = format!("{field}: {}", err.inner());
            return Err(malformed(run, Some(field), message));
        }
    }
    serde_json::from_value(value)
        .map_err(|err| malformed(run, None, format!("not a valid request: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Limits;
    use protocol::ErrorCode;

    /// The client's ends of the two channels that stand in for the socket.
    struct Client {
        to_server: mpsc::UnboundedSender<Result<Message, ()>>,
        from_server: mpsc::UnboundedReceiver<Message>,
        seen: Vec<String>,
    }

    impl Client {
        fn send(&self, text: &str) {
            self.to_server
                .send(Ok(Message::Text(text.to_string().into())))
                .unwrap();
        }

        async fn next(&mut self) -> ServerEvent {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.from_server.recv())
                .await
                .expect("the server answers")
                .expect("the session is open");
            match msg {
                Message::Text(text) => {
                    self.seen.push(text.to_string());
                    serde_json::from_str(text.as_str()).unwrap()
                }
                other => panic!("unexpected frame {other:?} after {:?}", self.seen),
            }
        }

        async fn until(&mut self, pred: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
            loop {
                let ev = self.next().await;
                if pred(&ev) {
                    return ev;
                }
            }
        }
    }

    fn start(shutdown: Stop) -> (Client, tokio::task::JoinHandle<()>) {
        start_pinging(shutdown, PING_EVERY)
    }

    fn start_pinging(shutdown: Stop, ping: Duration) -> (Client, tokio::task::JoinHandle<()>) {
        let (to_server, server_in) = mpsc::unbounded_channel();
        let (server_out, from_server) = mpsc::unbounded_channel();
        let stream = Box::pin(futures_util::stream::unfold(
            server_in,
            |mut rx: mpsc::UnboundedReceiver<Result<Message, ()>>| async move {
                rx.recv()
                    .await
                    .map(|frame| (frame.map_err(|()| ReadError::Broken), rx))
            },
        ));
        let sink = Box::pin(futures_util::sink::unfold(
            server_out,
            |tx, msg: Message| async move { tx.send(msg).map(|()| tx) },
        ));
        let budget = crate::engine::Budget {
            max_runs: 2,
            max_live_workers: 40,
            max_memory_mib: 4096,
            max_queue: 4,
        };
        let engine = Arc::new(Engine::new(Limits::default(), budget));
        let learner = Learner::new("test");
        let task = tokio::spawn(serve(engine, learner, sink, stream, shutdown, ping));
        (
            Client {
                to_server,
                from_server,
                seen: vec![],
            },
            task,
        )
    }

    const SLEEP_RUN: &str = r#"{"type":"start","id":1,"spec":{"runtime":"rust","model":{"kind":"threads"},"workload":{"kind":"sleep","ms":5000},"workers":2}}"#;

    #[tokio::test]
    async fn the_first_frame_states_the_limits() {
        let (mut client, _task) = start(Stop::new());
        let ServerEvent::Hello {
            version, limits, ..
        } = client.next().await
        else {
            panic!("expected hello");
        };
        assert_eq!(version, PROTOCOL_VERSION);
        assert_eq!(limits.max_workers, 16);
    }

    #[tokio::test]
    async fn an_idle_connection_is_pinged() {
        let (mut client, _task) = start_pinging(Stop::new(), Duration::from_millis(200));
        client.next().await; // hello
        let started = std::time::Instant::now();
        for _ in 0..2 {
            let frame = tokio::time::timeout(Duration::from_secs(5), client.from_server.recv())
                .await
                .expect("a ping within the interval")
                .expect("the session is open");
            assert!(matches!(frame, Message::Ping(_)), "{frame:?}");
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350),
            "two pings one interval apart, not at once: {waited:?}"
        );
    }

    #[tokio::test]
    async fn malformed_frames_name_the_field_and_keep_the_session() {
        let (mut client, _task) = start(Stop::new());
        client.next().await; // hello
        client.send("not json");
        let ServerEvent::Error { code, field, .. } = client.next().await else {
            panic!("expected an error");
        };
        assert_eq!((code, field), (ErrorCode::Malformed, None));

        client.send(r#"{"type":"start","id":4,"spec":{"runtime":"rust","model":{"kind":"threads"},"workload":{"kind":"primes","below":100},"workers":"two"}}"#);
        let ServerEvent::Error {
            run,
            code,
            field,
            message,
        } = client.next().await
        else {
            panic!("expected an error");
        };
        assert_eq!(run, Some(4));
        assert_eq!(code, ErrorCode::Malformed);
        assert_eq!(field.as_deref(), Some("spec.workers"));
        assert!(
            message.starts_with("spec.workers: invalid type"),
            "{message}"
        );

        client.send(&"x".repeat(5000));
        let ServerEvent::Error { code, message, .. } = client.next().await else {
            panic!("expected an error");
        };
        assert_eq!(code, ErrorCode::TooLarge);
        assert!(message.contains("at most 4096 bytes"), "{message}");

        client.send(r#"{"type":"start","id":5,"spec":{"runtime":"rust","model":{"kind":"threads"},"workload":{"kind":"primes","below":1000},"workers":1}}"#);
        let ServerEvent::RunFinished { run, summary } = client
            .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(run, 5);
        assert_eq!(summary.result, protocol::WorkResult::Primes { count: 168 });
    }

    #[tokio::test]
    async fn cancel_stops_a_run_and_frees_its_id() {
        let (mut client, _task) = start(Stop::new());
        client.send(SLEEP_RUN);
        client
            .until(|e| matches!(e, ServerEvent::WorkerSpawned { .. }))
            .await;
        client.send(SLEEP_RUN);
        let ServerEvent::Error { code, .. } = client
            .until(|e| matches!(e, ServerEvent::Error { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(code, ErrorCode::DuplicateRun);
        client.send(r#"{"type":"cancel","id":1}"#);
        let ServerEvent::RunFinished { summary, .. } = client
            .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(summary.outcome, protocol::Outcome::Cancelled);
        client.send(r#"{"type":"cancel","id":1}"#);
        let ServerEvent::Error { code, .. } = client.next().await else {
            panic!("expected an error");
        };
        assert_eq!(code, ErrorCode::UnknownRun);
    }

    #[tokio::test]
    async fn a_connection_runs_one_at_a_time_with_one_more_in_line() {
        let (mut client, _task) = start(Stop::new());
        client.send(SLEEP_RUN);
        client
            .until(|e| matches!(e, ServerEvent::WorkerSpawned { .. }))
            .await;
        let second = SLEEP_RUN.replace(r#""id":1"#, r#""id":2"#);
        client.send(&second);
        let queued = client.until(|e| e.run() == Some(2)).await;
        assert_eq!(
            queued,
            ServerEvent::Queued {
                run: 2,
                position: 1,
                wait_ms: None
            }
        );
        client.send(&SLEEP_RUN.replace(r#""id":1"#, r#""id":3"#));
        let refused = client.until(|e| e.run() == Some(3)).await;
        assert!(
            matches!(
                refused,
                ServerEvent::Error {
                    code: ErrorCode::Busy,
                    ..
                }
            ),
            "{refused:?}"
        );
        client.send(r#"{"type":"cancel","id":1}"#);
        let next = client
            .until(|e| matches!(e, ServerEvent::Accepted { .. }))
            .await;
        assert_eq!(
            next,
            ServerEvent::Accepted { run: 2 },
            "the queued run starts"
        );
        client.send(r#"{"type":"cancel","id":2}"#);
    }

    #[tokio::test]
    async fn shutdown_ends_runs_and_closes_the_socket() {
        let shutdown = Stop::new();
        let (mut client, task) = start(shutdown.clone());
        client.send(SLEEP_RUN);
        client
            .until(|e| matches!(e, ServerEvent::WorkerSpawned { .. }))
            .await;
        shutdown.request(StopReason::Shutdown);
        let notice = client
            .until(|e| matches!(e, ServerEvent::Error { .. }))
            .await;
        assert!(matches!(
            notice,
            ServerEvent::Error {
                code: ErrorCode::ShuttingDown,
                ..
            }
        ));
        let ServerEvent::RunFinished { summary, .. } = client
            .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(summary.outcome, protocol::Outcome::Cancelled);
        assert!(matches!(
            client.from_server.recv().await,
            Some(Message::Close(_))
        ));
        task.await.unwrap();
    }
}
