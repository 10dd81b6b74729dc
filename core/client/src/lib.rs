//! # odradek-client
//!
//! The client layer every Odradek runtime crate shares, written once as
//! real code: the consumer's methods and their docs ([`Consumer`]), the
//! waiting logic, and the background [`Driver`] policy (what happens on an
//! input, on a closed connection, when timers are due, on a panic). It reads
//! no clock and opens no socket itself: a small [`Runtime`] trait, one
//! implementation per runtime crate, supplies the time, runs the driver and
//! moves bytes.
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
mod session;
mod shared;

pub use consumer::{Async, Blocking, Consumer, Iter, RecordStream, Waiting};
pub use driver::Driver;
pub use runtime::{AsyncRuntime, Connection, Link, Runtime};

#[cfg(test)]
mod tests;
