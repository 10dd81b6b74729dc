//! # odradek-core
//!
//! The sans-IO heart of Odradek, a Kafka consumer client: everything that
//! understands Kafka lives here, and nothing here touches a socket, reads a
//! clock, spawns a thread or depends on an async runtime. Adapter crates
//! (`odradek-tokio`, `odradek-async-std`, `odradek-blocking`) move bytes and
//! time in and out; [`Consumer`] documents the contract they follow.
//!
//! ## Contents
//! - [`Consumer`]: the consumer state machine, with its inputs, commands and
//!   outputs ([`Io`], [`Event`]).
//! - [`ConsumerConfig`] and [`ConsumerBuilder`]: configuration with the Java
//!   client's defaults and property names.
//! - [`ConsumerRecord`], [`ConsumerRecords`], [`TopicPartition`]: what the
//!   application sees.
//! - [`Error`]: everything the consumer can fail with.
//! - [`Session`]: what adapters share between their driver and their users.
//! - [`group`]: consumer groups: the partition assignors (built-in and the
//!   trait for custom ones) and [`RebalanceEvent`], what a rebalance tells
//!   the application.
//! - [`protocol`]: framing, headers and one codec per Kafka API message,
//!   plus the consumer embedded protocol.
//! - [`records`]: record batches (v2 and legacy message sets), compression
//!   and CRC checks.

mod adapter_api;
mod backoff;
mod config;
mod conn;
mod consumer;
mod error;
mod metadata;
mod session;
mod timer;
mod types;

pub mod group;
pub mod protocol;
pub mod records;

pub use config::{
    ConfigError, ConfigErrorKind, ConsumerBuilder, ConsumerConfig, FromConfig, IsolationLevel,
    OffsetReset,
};
pub use conn::{ConnectionProblem, HandshakeFailure, Io};
pub use consumer::{CommitId, CommittedResult, Consumer, Event, OffsetsResult, QueryId};
pub use error::Error;
pub use group::{GroupMetadata, NoopListener, RebalanceContext, RebalanceEvent, RebalanceListener};
pub use session::{
    CLOSE_TIMEOUT, CommitCallback, Drained, GROUP_CLOSE_TIMEOUT, ListenerOwner, ListenerScope,
    ReadyCallback, Session, offsets_only,
};
pub use types::{
    BrokerAddress, BrokerId, ConnId, ConsumerRecord, ConsumerRecords, InvalidAddress,
    OffsetAndMetadata, OffsetAndTimestamp, TopicPartition,
};
