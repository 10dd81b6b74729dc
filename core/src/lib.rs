//! # odradek-core
//!
//! The sans-IO heart of Odradek, a Kafka consumer client: everything that
//! understands Kafka lives here, and nothing here touches a socket, reads a
//! clock, spawns a thread or depends on an async runtime. Adapter crates
//! (`odradek-tokio`, `odradek-async-std`, `odradek-blocking`) move bytes and
//! time in and out.
//!
//! ## Contents
//! - [`protocol`]: framing, primitive types, request/response headers and one
//!   codec per Kafka API message, plus the consumer embedded protocol.
//! - [`records`]: record batches (v2 and legacy message sets), compression
//!   and CRC checks.

pub mod protocol;
pub mod records;
