//! One learner's WebSocket connection: read requests, start and cancel runs,
//! forward every run's events.
//!
//! The session is generic over the socket's two halves so tests can drive it
//! with plain channels. It owns the runs it started: when the connection goes
//! away, or the server shuts down, each of them is told to stop.
//!
//! A bad frame never ends the session. It gets an `error` event naming the
//! field and what it allows, and the next frame is read as if nothing happened.

use crate::engine::{Engine, EventSink, Stop, StopReason};
use app::protocol::{
    ClientMessage, ErrorCode, ModelSpec, Outcome, RunId, RunSpec, RunSummary, ServerEvent,
    PROTOCOL_VERSION,
};
use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs one connection may have at once: one running and one queued behind
/// it — enough to line up the next experiment, not enough to hog the server.
pub const MAX_RUNS_PER_CONNECTION: usize = 2;

/// How long a closing session waits for its stopped runs to report.
const DRAIN: Duration = Duration::from_secs(3);

/// Serve one connection until the client leaves or `shutdown` is requested.
pub async fn serve<W, R, E>(engine: Arc<Engine>, mut sink: W, mut stream: R, shutdown: Stop)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let (events, mut events_rx) = mpsc::unbounded_channel::<ServerEvent>();
    // A run leaves `runs` when its `run_finished` is forwarded, or, for a run
    // refused by the queue, when its task ends. The task reports its own
    // ticket so a late report cannot remove a newer run that reused the id.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(RunId, u64)>();
    let mut runs: HashMap<RunId, Active> = HashMap::new();
    let mut tickets = 0u64;
    let turn = Arc::new(tokio::sync::Mutex::new(()));

    let hello = ServerEvent::Hello {
        version: PROTOCOL_VERSION,
        limits: engine.limits().to_protocol(),
    };
    if send(&mut sink, &hello).await.is_err() {
        return;
    }

    let reason = loop {
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let ev = refuse(None, ErrorCode::Malformed, None,
                            "send requests as JSON text frames, not binary".into());
                        if send(&mut sink, &ev).await.is_err() {
                            break StopReason::Disconnected;
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break StopReason::Disconnected,
                    Some(Ok(_)) => continue, // ping and pong are answered by axum
                };
                let reply = match parse(&engine, text.as_str()) {
                    Ok(ClientMessage::Start { id, spec }) => {
                        if runs.contains_key(&id) {
                            Some(refuse(Some(id), ErrorCode::DuplicateRun, Some("id"),
                                format!("run {id} is still active on this connection; use a new id")))
                        } else if runs.len() >= MAX_RUNS_PER_CONNECTION {
                            Some(refuse(Some(id), ErrorCode::Busy, None, format!(
                                "this connection already has {MAX_RUNS_PER_CONNECTION} runs going; \
                                 wait for one to finish or cancel it")))
                        } else if let Err(invalid) = engine.validate(&spec) {
                            Some(refuse(Some(id), invalid.code, Some(&invalid.field), invalid.message))
                        } else {
                            let stop = Stop::new();
                            tickets += 1;
                            let (kills, faults) = match spec.model {
                                ModelSpec::Cluster { .. } => {
                                    let (tx, rx) = mpsc::unbounded_channel();
                                    (Some((tx, spec.workers)), Some(rx))
                                }
                                _ => (None, None),
                            };
                            runs.insert(id, Active { ticket: tickets, stop: stop.clone(), kills });
                            let (engine, events, done) = (engine.clone(), events.clone(), done_tx.clone());
                            let (ticket, turn) = (tickets, turn.clone());
                            tokio::spawn(async move {
                                // One run at a time per connection: a second
                                // one waits here for the first to end.
                                if let Some(_turn) = take_turn(turn, id, &events, &stop).await {
                                    engine.run_with_faults(id, spec, events, stop, faults).await;
                                }
                                let _ = done.send((id, ticket));
                            });
                            None
                        }
                    }
                    Ok(ClientMessage::Cancel { id }) => match runs.get(&id) {
                        Some(run) => {
                            run.stop.request(StopReason::Cancelled);
                            None
                        }
                        None => Some(refuse(Some(id), ErrorCode::UnknownRun, Some("id"),
                            format!("there is no active run {id} on this connection"))),
                    },
                    Ok(ClientMessage::Kill { id, worker }) => match runs.get(&id).map(|r| &r.kills) {
                        Some(Some((kills, workers))) if worker < *workers => {
                            // A run that has already finished its load has
                            // dropped the receiver; nothing is left to kill.
                            let _ = kills.send(worker);
                            None
                        }
                        Some(Some((_, workers))) => Some(refuse(Some(id), ErrorCode::InvalidField, Some("worker"),
                            format!("worker must be between 0 and {}, got {worker}", workers - 1))),
                        Some(None) => Some(refuse(Some(id), ErrorCode::Unsupported, Some("id"),
                            format!("run {id} is not a cluster run; only a cluster's workers can be killed"))),
                        None => Some(refuse(Some(id), ErrorCode::UnknownRun, Some("id"),
                            format!("there is no active run {id} on this connection"))),
                    },
                    Err(ev) => Some(*ev),
                };
                if let Some(ev) = reply {
                    if send(&mut sink, &ev).await.is_err() {
                        break StopReason::Disconnected;
                    }
                }
            }
            Some(ev) = events_rx.recv() => {
                if forward(&mut sink, &mut runs, ev).await.is_err() {
                    break StopReason::Disconnected;
                }
            }
            Some((id, ticket)) = done_rx.recv() => forget(&mut runs, id, ticket),
            _ = shutdown.requested() => break StopReason::Shutdown,
        }
    };

    for run in runs.values() {
        run.stop.request(reason);
    }
    if reason == StopReason::Shutdown {
        let notice = refuse(
            None,
            ErrorCode::ShuttingDown,
            None,
            "the server is shutting down: running labs are stopped and this connection will close"
                .into(),
        );
        let _ = send(&mut sink, &notice).await;
        // Let the learner see their runs end before the socket closes.
        let drained = tokio::time::timeout(DRAIN, async {
            while !runs.is_empty() {
                tokio::select! {
                    Some(ev) = events_rx.recv() => {
                        if forward(&mut sink, &mut runs, ev).await.is_err() {
                            return;
                        }
                    }
                    Some((id, ticket)) = done_rx.recv() => forget(&mut runs, id, ticket),
                }
            }
            // A run's task sends its last event before it reports done, so
            // whatever it said is already queued here.
            while let Ok(ev) = events_rx.try_recv() {
                if send(&mut sink, &ev).await.is_err() {
                    return;
                }
            }
        });
        let _ = drained.await;
        let _ = sink.send(Message::Close(None)).await;
    }
}

/// A run this connection started and has not seen finish.
struct Active {
    /// Tells this run from a later one that reused its id.
    ticket: u64,
    stop: Stop,
    /// A cluster run's kill requests, and how many workers it has.
    kills: Option<(mpsc::UnboundedSender<u32>, u32)>,
}

/// Send an event on, and forget a run once its last event has gone out, so
/// a client that has seen `run_finished` may reuse the id at once.
async fn forward<W: Sink<Message> + Unpin>(
    sink: &mut W,
    runs: &mut HashMap<RunId, Active>,
    ev: ServerEvent,
) -> Result<(), ()> {
    if let ServerEvent::RunFinished { run, .. } = &ev {
        runs.remove(run);
    }
    send(sink, &ev).await
}

fn forget(runs: &mut HashMap<RunId, Active>, id: RunId, ticket: u64) {
    if runs.get(&id).is_some_and(|run| run.ticket == ticket) {
        runs.remove(&id);
    }
}

/// Wait for this connection's previous run to end, saying so; `None` if
/// the run was stopped while it waited (its `run_finished` is sent here).
async fn take_turn(
    turn: Arc<tokio::sync::Mutex<()>>,
    id: RunId,
    events: &EventSink,
    stop: &Stop,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    if let Ok(guard) = turn.clone().try_lock_owned() {
        return Some(guard);
    }
    let _ = events.send(ServerEvent::Queued {
        run: id,
        position: 1,
    });
    tokio::select! {
        guard = turn.lock_owned() => Some(guard),
        _ = stop.requested() => {
            let _ = events.send(ServerEvent::RunFinished {
                run: id,
                summary: RunSummary::empty(Outcome::Cancelled),
            });
            None
        }
    }
}

/// Turn a text frame into a request, or into the error event that explains
/// what is wrong with it.
fn parse(engine: &Engine, text: &str) -> Result<ClientMessage, Box<ServerEvent>> {
    let max = engine.limits().max_message_bytes as usize;
    if text.len() > max {
        return Err(Box::new(refuse(
            None,
            ErrorCode::TooLarge,
            None,
            format!(
                "a request may be at most {max} bytes; this one was {}",
                text.len()
            ),
        )));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        refuse(
            None,
            ErrorCode::Malformed,
            None,
            format!("not valid JSON: {err}"),
        )
    })?;
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
            return Err(Box::new(refuse(
                run,
                ErrorCode::Malformed,
                Some(&field),
                message,
            )));
        }
    }
    serde_json::from_value(value).map_err(|err| {
        Box::new(refuse(
            run,
            ErrorCode::Malformed,
            None,
            format!("not a valid request: {err}"),
        ))
    })
}

fn refuse(
    run: Option<RunId>,
    code: ErrorCode,
    field: Option<&str>,
    message: String,
) -> ServerEvent {
    ServerEvent::Error {
        run,
        code,
        field: field.map(str::to_string),
        message,
    }
}

async fn send<W: Sink<Message> + Unpin>(sink: &mut W, ev: &ServerEvent) -> Result<(), ()> {
    let json = serde_json::to_string(ev).expect("events always serialize");
    sink.send(Message::Text(json.into())).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::limits::Limits;

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
        let (to_server, server_in) = mpsc::unbounded_channel();
        let (server_out, from_server) = mpsc::unbounded_channel();
        let stream = Box::pin(futures_util::stream::unfold(
            server_in,
            |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) },
        ));
        let sink = Box::pin(futures_util::sink::unfold(
            server_out,
            |tx, msg: Message| async move { tx.send(msg).map(|()| tx) },
        ));
        let engine = Arc::new(Engine::new(Limits::default(), 2, 40, 4));
        let task = tokio::spawn(serve(engine, sink, stream, shutdown));
        (
            Client {
                to_server,
                from_server,
                seen: vec![],
            },
            task,
        )
    }

    const SLEEP_RUN: &str = r#"{"type":"start","id":1,"spec":{"model":{"kind":"threads"},"workload":{"kind":"sleep","ms":5000},"workers":2}}"#;

    #[tokio::test]
    async fn the_first_frame_states_the_limits() {
        let (mut client, _task) = start(Stop::new());
        let ServerEvent::Hello { version, limits } = client.next().await else {
            panic!("expected hello");
        };
        assert_eq!(version, PROTOCOL_VERSION);
        assert_eq!(limits.max_workers, 16);
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

        client.send(r#"{"type":"start","id":4,"spec":{"model":{"kind":"threads"},"workload":{"kind":"primes","below":100},"workers":"two"}}"#);
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

        client.send(r#"{"type":"start","id":5,"spec":{"model":{"kind":"threads"},"workload":{"kind":"primes","below":1000},"workers":1}}"#);
        let ServerEvent::RunFinished { run, summary } = client
            .until(|e| matches!(e, ServerEvent::RunFinished { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(run, 5);
        assert_eq!(
            summary.result,
            app::protocol::WorkResult::Primes { count: 168 }
        );
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
        assert_eq!(summary.outcome, app::protocol::Outcome::Cancelled);
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
                position: 1
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
        assert_eq!(summary.outcome, app::protocol::Outcome::Cancelled);
        assert!(matches!(
            client.from_server.recv().await,
            Some(Message::Close(_))
        ));
        task.await.unwrap();
    }
}
