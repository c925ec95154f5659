//! spawnlab's server: the axum application that serves the Leptos site, the
//! WebSocket route that runs labs, and the engine that really runs them.
//!
//! # Layout
//!
//! - [`engine`]: really runs workloads on an event loop, in threads, in
//!   child processes and in a cluster; knows nothing of HTTP or Leptos, and
//!   speaks only the `protocol` crate.
//! - [`session`]: one WebSocket connection, translating frames to engine calls.
//! - [`calibrate`]: the compare page's figures, a client of the engine.
//! - [`startup`]: builds the axum application and runs it until stopped.
//! - [`compress`]: pages gzip-compressed chunk by chunk, still streamed.
//! - [`settings`]: flags and environment variables.
//! - [`cli`]: `spawnlab run` and `spawnlab compare` in the terminal.

pub mod calibrate;
pub mod cli;
pub mod compress;
pub mod engine;
pub mod session;
pub mod settings;
pub mod startup;
