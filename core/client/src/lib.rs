//! # odradek-client
//!
//! The client layer every Odradek runtime crate shares, written once as
//! real code: the consumer's methods and their docs ([`Consumer`]), the
//! waiting logic, and the background [`Driver`] policy (what happens on an
//! input, on a closed connection, when timers are due, on a panic). It opens
//! no socket and reads no monotonic clock itself: a small [`Runtime`] trait,
//! one implementation per runtime crate, supplies the time, runs the driver
//! and moves bytes. For secure connections it reads, once, what the core
//! must not: certificate files, the system trust store, and it supplies the
//! wall clock and the OS's randomness (see `security.rs`).
//!
//! Applications use a runtime crate, which names the types:
//!
//! | crate | consumer |
//! | --- | --- |
//! | `odradek-tokio` | `Consumer<TokioRuntime>` (`async`) |
//! | `odradek-async-std` | `Consumer<AsyncIoRuntime>` (`async`, any executor) |
//! | `odradek-blocking` | `Consumer<ThreadRuntime, Blocking>` (blocking) |
//!
//! ## Contents
//! - [`Consumer`]: the user-facing consumer, with its [`RecordStream`]
//!   (async) and [`Iter`] (blocking); [`Async`] and [`Blocking`] say how its
//!   waiting calls wait.
//! - [`Runtime`], [`AsyncRuntime`], [`Connection`], [`Link`]: what a
//!   runtime crate implements.
//! - [`Driver`]: the driver policy the runtime runs.

mod consumer;
mod driver;
mod runtime;
mod security;
mod session;
mod shared;

pub use consumer::{Async, Blocking, Consumer, Iter, RecordStream, Waiting};
pub use driver::Driver;
pub use runtime::{AsyncRuntime, Connection, Link, Runtime};

#[cfg(test)]
mod tests;
