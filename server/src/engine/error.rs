//! What can go wrong with a run, as two types.
//!
//! - [`Refused`]: the request never became a run (out of range, a full
//!   queue, a duplicate id, a kill aimed at nothing). The learner fixes the
//!   request and tries again; the connection stays open.
//! - [`RunError`]: the run started and failed on the server (a worker that
//!   could not start, broke its channel, or panicked). The run ends as
//!   `failed` and the learner reads why.
//!
//! Both become a protocol `error` event in one place each:
//! [`Refused::event`] and [`RunError::event`].

use protocol::{ErrorCode, RunId, ServerEvent};
use std::io;

/// A request turned away before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A field breaks a bound, or the workload does not suit the model.
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        /// Dotted path of the offending field, e.g. `spec.workers`.
        field: String,
        /// The sentence shown to the learner, naming the allowed range.
        message: String,
    },
    /// The frame is not JSON, or not a known message; `field` is set when
    /// the parser could say which field.
    #[error("{message}")]
    Malformed {
        field: Option<String>,
        message: String,
    },
    /// The frame is bigger than the server reads.
    #[error("a request may be at most {max} bytes; this one was {got}")]
    TooLarge { max: usize, got: usize },
    /// The server's waiting line is full.
    #[error(
        "the server is busy: {0} runs are already waiting, the most it queues; try again in a moment"
    )]
    QueueFull(u32),
    /// This connection already has as many runs as it may.
    #[error("this connection already has {0} runs going; wait for one to finish or cancel it")]
    ConnectionBusy(usize),
    /// The id names a run that is still active on this connection.
    #[error("run {0} is still active on this connection; use a new id")]
    DuplicateRun(RunId),
    /// The id names no active run on this connection.
    #[error("there is no active run {0} on this connection")]
    UnknownRun(RunId),
    /// Only a cluster's workers can be killed.
    #[error("run {0} is not a cluster run; only a cluster's workers can be killed")]
    NotCluster(RunId),
    /// The server is draining before it stops: it finishes the runs it has
    /// and takes no new ones.
    #[error(
        "this server is restarting: it is finishing the labs already running and takes no new ones; reload the page to reach another"
    )]
    Draining,
    /// Only a scaling run's instances and balancer can be broken.
    #[error(
        "run {0} is not a scaling run; faults apply to a scaling run's instances and balancer"
    )]
    NotScaling(RunId),
    /// The worker to kill is out of range.
    #[error("worker must be between 0 and {last}, got {worker}")]
    NoSuchWorker { worker: u32, last: u32 },
}

impl Refused {
    /// A field out of range: `field must be between min and max, got value`.
    pub fn out_of_range(field: &str, value: u64, min: u64, max: u64) -> Self {
        Refused::Invalid {
            code: ErrorCode::InvalidField,
            field: field.to_string(),
            message: format!("{field} must be between {min} and {max}, got {value}"),
        }
    }

    /// A field with a value it may not take, and a sentence saying why.
    pub fn invalid(field: &str, message: String) -> Self {
        Refused::Invalid {
            code: ErrorCode::InvalidField,
            field: field.to_string(),
            message,
        }
    }

    /// The machine-readable kind the page and the tests branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refused::Invalid { code, .. } => *code,
            Refused::Malformed { .. } => ErrorCode::Malformed,
            Refused::TooLarge { .. } => ErrorCode::TooLarge,
            Refused::QueueFull(_) | Refused::ConnectionBusy(_) => ErrorCode::Busy,
            Refused::DuplicateRun(_) => ErrorCode::DuplicateRun,
            Refused::UnknownRun(_) => ErrorCode::UnknownRun,
            Refused::NotCluster(_) | Refused::NotScaling(_) => ErrorCode::Unsupported,
            Refused::Draining => ErrorCode::ShuttingDown,
            Refused::NoSuchWorker { .. } => ErrorCode::InvalidField,
        }
    }

    /// The request field at fault, as a dotted path.
    pub fn field(&self) -> Option<&str> {
        match self {
            Refused::Invalid { field, .. } => Some(field),
            Refused::Malformed { field, .. } => field.as_deref(),
            Refused::DuplicateRun(_)
            | Refused::UnknownRun(_)
            | Refused::NotCluster(_)
            | Refused::NotScaling(_) => Some("id"),
            Refused::NoSuchWorker { .. } => Some("worker"),
            Refused::TooLarge { .. }
            | Refused::QueueFull(_)
            | Refused::ConnectionBusy(_)
            | Refused::Draining => None,
        }
    }

    /// The protocol's `error` event for this refusal, about `run` if the
    /// request got as far as naming one.
    pub fn event(&self, run: Option<RunId>) -> ServerEvent {
        ServerEvent::Error {
            run,
            code: self.code(),
            field: self.field().map(str::to_string),
            message: self.to_string(),
        }
    }
}

/// A run that started and failed on the server.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The operating system would not start a thread or a process.
    #[error("could not start {what}")]
    Start {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Talking to a worker or the cluster's primary failed.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A worker, or the code coordinating it, panicked. The panic is caught
    /// and the server goes on serving.
    #[error("{what} panicked: {message}")]
    Panicked { what: String, message: String },
    /// The cluster's primary reported a failure, or ended early.
    #[error("the cluster primary: {0}")]
    Cluster(String),
    /// The Node.js runtime failed: its script said so, broke the protocol,
    /// or ended early.
    #[error("Node.js: {0}")]
    Node(String),
    /// The scaling run's load balancer failed to start or broke.
    #[error("the load balancer: {0}")]
    Balancer(String),
    /// Something did not happen in time.
    #[error("{0} did not happen in time")]
    Timeout(&'static str),
}

impl RunError {
    /// Could not start `what`, because of `source`.
    pub fn start(what: impl Into<String>, source: io::Error) -> Self {
        RunError::Start {
            what: what.into(),
            source,
        }
    }

    /// Talking to `what` failed, because of `source`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        RunError::Io {
            what: what.into(),
            source,
        }
    }

    /// A blocking task of the engine ended without an answer: it panicked
    /// (the panic's message is kept), or the runtime is shutting down.
    pub fn joined(what: &str, error: tokio::task::JoinError) -> Self {
        RunError::Panicked {
            what: what.to_string(),
            message: if error.is_panic() {
                panic_message(error.into_panic())
            } else {
                "it was cancelled".into()
            },
        }
    }

    /// The sentence for the learner: this error and each of its causes.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    /// The protocol's `error` event for run `run`.
    pub fn event(&self, run: RunId) -> ServerEvent {
        ServerEvent::Error {
            run: Some(run),
            code: ErrorCode::RunFailed,
            field: None,
            message: self.message(),
        }
    }
}

/// What a panic said, when it said it with a string.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_field_and_range() {
        let refused = Refused::out_of_range("spec.workers", 17, 1, 16);
        assert_eq!(
            refused.event(Some(3)),
            ServerEvent::Error {
                run: Some(3),
                code: ErrorCode::InvalidField,
                field: Some("spec.workers".into()),
                message: "spec.workers must be between 1 and 16, got 17".into(),
            }
        );
        assert_eq!(Refused::UnknownRun(4).field(), Some("id"));
        assert_eq!(Refused::QueueFull(8).code(), ErrorCode::Busy);
    }

    #[test]
    fn a_run_error_says_every_cause() {
        let err = RunError::start(
            "worker thread 3",
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "Resource temporarily unavailable",
            ),
        );
        assert_eq!(
            err.message(),
            "could not start worker thread 3: Resource temporarily unavailable"
        );
        assert!(matches!(
            err.event(9),
            ServerEvent::Error {
                run: Some(9),
                code: ErrorCode::RunFailed,
                ..
            }
        ));
    }

    #[test]
    fn panic_messages_are_kept() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(caught), "boom 7");
    }
}
