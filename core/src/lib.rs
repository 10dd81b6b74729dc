//! # odradek-core
//!
//! The sans-IO heart of Odradek, a Kafka consumer client: everything that
//! understands Kafka lives here, and nothing here touches a socket, reads a
//! clock, spawns a thread or depends on an async runtime. The client layer
//! (`odradek-client`, in `core/client/`) drives it (the session, waiting
//! calls, the one driver policy) over a small runtime trait, which each
//! runtime crate (`odradek-tokio`, `odradek-async-std`, `odradek-blocking`)
//! implements by moving bytes and time in and out; [`Consumer`] documents
//! the contract they follow.
//!
//! ## Contents
//! - [`Consumer`]: the consumer state machine, with its inputs, commands and
//!   outputs ([`Io`], [`Event`]).
//! - [`ConsumerConfig`] and [`ConsumerBuilder`]: configuration with the Java
//!   client's defaults and property names.
//! - [`ConsumerRecord`], [`ConsumerRecords`], [`TopicPartition`]: what the
//!   application sees; [`payload`]: keys and values as the application's
//!   types ([`FromPayload`], JSON with the `json` feature).
//! - [`CloseOptions`]: a close with a caller's timeout, or without the final
//!   commit.
//! - [`metrics`]: the snapshot [`Consumer::metrics`] returns, with the Java
//!   metric names it maps to.
//! - [`Error`]: everything the consumer can fail with.
//! - [`group`]: consumer groups: the partition assignors (built-in and the
//!   trait for custom ones) and [`RebalanceEvent`], what a rebalance tells
//!   the application.
//! - [`protocol`]: framing, headers and one codec per Kafka API message,
//!   plus the consumer embedded protocol.
//! - [`records`]: record batches (v2 and legacy message sets), compression
//!   and CRC checks.
//! - [`sasl`]: SASL mechanisms as messages (PLAIN, SCRAM-SHA-256/512).
//! - [`security`]: TLS and SASL settings, secrets, and the
//!   [`SecurityContext`](security::SecurityContext) the client layer supplies.
//! - [`rustls`]: re-exported, for the types a [`SecurityContext`](security::SecurityContext) is made of.

mod backoff;
mod config;
mod conn;
mod consumer;
mod error;
mod interceptor;
mod metadata;
mod timer;
mod types;

pub mod group;
pub mod metrics;
pub mod payload;
pub mod protocol;
pub mod records;
pub mod sasl;
pub mod security;

pub use rustls;

pub use config::{
    BuilderParts, ConfigError, ConfigErrorKind, ConsumerBuilder, ConsumerConfig, FromBuilder,
    FromConfig, IsolationLevel, OffsetReset,
};
pub use conn::{AuthFailure, ConnectionProblem, HandshakeFailure, Io, TlsFailure};
pub use consumer::{CommitId, CommittedResult, Consumer, Event, OffsetsResult, QueryId};
pub use error::{CommitFailure, Error, Misuse, Operation, RuntimeFailure};
pub use group::{
    GroupMetadata, NoopListener, PartitionAssignmentStrategy, RebalanceContext, RebalanceEvent,
    RebalanceListener,
};
pub use interceptor::ConsumerInterceptor;
pub use payload::{FromPayload, PayloadError};
pub use types::{
    BrokerAddress, BrokerId, CloseOptions, ConnId, ConsumerRecord, ConsumerRecords, InvalidAddress,
    OffsetAndMetadata, OffsetAndTimestamp, TopicPartition,
};
