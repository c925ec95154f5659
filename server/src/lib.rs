//! spawnlab's server: the axum application that serves the Leptos site, the
//! WebSocket route that runs labs, and the engine that really runs them.
//!
//! # Layout
//!
//! - [`engine`]: runs workloads in threads (and, later, processes); knows
//!   nothing of HTTP.
//! - [`session`]: one WebSocket connection, translating frames to engine calls.
//! - [`startup`]: builds the axum application and runs it until stopped.
//! - [`settings`]: flags and environment variables.
//! - [`cli`]: `spawnlab run`, any lab from the terminal.

pub mod cli;
pub mod engine;
pub mod session;
pub mod settings;
pub mod startup;
