//! # odradek-tokio
//!
//! A Kafka consumer for tokio programs. All Kafka logic lives in
//! [`odradek_core`], and the consumer's methods, waiting and driver policy in
//! [`odradek_client`]; this crate is the tokio binding ([`TokioRuntime`]):
//! sockets, timers and a background task that keeps driving the core between
//! calls, so fetches overlap the application's processing.
//!
//! [`Consumer::new`] (and the builder) must be called inside a tokio
//! runtime: the driver task is spawned there.
//!
//! ```no_run
//! use std::time::Duration;
//! use odradek_tokio::{Consumer, OffsetReset, TopicPartition};
//!
//! # async fn run() -> Result<(), odradek_tokio::Error> {
//! let consumer = Consumer::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .auto_offset_reset(OffsetReset::Earliest)
//!     .build()?;
//! consumer.assign([TopicPartition::new("events", 0)])?;
//! loop {
//!     let records = consumer.poll(Duration::from_millis(500)).await?;
//!     for record in &records {
//!         println!("{}@{}: {:?}", record.partition(), record.offset(), record.value());
//!     }
//! #   break;
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Cancel safety
//!
//! [`Consumer::poll`], [`Consumer::recv`] and the record stream are cancel
//! safe: records are taken from the core in one synchronous step just before
//! the future completes, so dropping a future that has not completed (in a
//! `select!`, or on timeout) loses no record; the next call returns them.

mod runtime;

pub use runtime::{TokioConn, TokioRuntime};

/// A Kafka consumer driven by a tokio task; see [`odradek_client::Consumer`]
/// for its methods.
pub type Consumer = odradek_client::Consumer<TokioRuntime>;

/// The records of a [`Consumer`] as a `Stream`; see [`Consumer::stream`].
pub type RecordStream<'a> = odradek_client::RecordStream<'a, TokioRuntime>;
pub use odradek_core::{
    BrokerAddress, CloseOptions, CommitFailure, ConfigError, ConfigErrorKind, ConsumerBuilder,
    ConsumerConfig, ConsumerRecord, ConsumerRecords, Error, FromPayload, GroupMetadata,
    IsolationLevel, Misuse, NoopListener, OffsetAndMetadata, OffsetAndTimestamp, OffsetReset,
    Operation, PartitionAssignmentStrategy, PayloadError, RebalanceContext, RebalanceListener,
    RuntimeFailure, TopicPartition, group, payload, protocol, records,
};
