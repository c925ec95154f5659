//! spawnlab's end-to-end tests, in one binary: one link instead of one per
//! file (each is hundreds of megabytes with the server and Leptos in it).
//!
//! Each module drives a real server — in this process, or the real binary —
//! through a real WebSocket, plain HTTP, or headless Chromium.

mod accessibility;
mod binary;
mod browser;
mod child_process;
mod class;
mod cli;
mod cluster;
mod compare;
mod deploy;
mod load;
mod main_thread;
mod node;
mod pages;
mod panics;
mod scaling;
mod soak;
mod websocket;
