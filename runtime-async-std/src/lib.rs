//! # odradek-async-std
//!
//! A Kafka consumer for async-std, smol and any other executor. All Kafka
//! logic lives in [`odradek_core`], and the consumer's methods, waiting and
//! driver policy in [`odradek_client`]; this crate is the async-io binding
//! ([`AsyncIoRuntime`]): sockets, timers and a background thread that keeps
//! driving the core between calls, so fetches overlap the application's
//! processing.
//!
//! It is built on the runtime-neutral stack async-std and smol share
//! (`async-io`, `futures-lite`, `event-listener`): the driver thread runs
//! `async_io::block_on`, and the consumer's futures depend on no executor.
//!
//! ```no_run
//! use std::time::Duration;
//! use odradek_async_std::{Consumer, OffsetReset, TopicPartition};
//!
//! # async fn run() -> Result<(), odradek_async_std::Error> {
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
//! // Run it with `async_std::task::block_on(run())` or `smol::block_on(run())`.
//! ```
//!
//! ## Cancel safety
//!
//! [`Consumer::poll`], [`Consumer::recv`] and the record stream are cancel
//! safe: records are taken from the core in one synchronous step just before
//! the future completes, so dropping a future that has not completed (in a
//! race with a timer, say) loses no record; the next call returns them.

mod runtime;

pub use runtime::{AsyncIoConn, AsyncIoRuntime};

/// A Kafka consumer driven by a background thread, whose futures need no
/// particular executor (`async_std::task::block_on`, `smol::block_on`, any
/// other); see [`odradek_client::Consumer`] for its methods.
pub type Consumer = odradek_client::Consumer<AsyncIoRuntime>;

/// The records of a [`Consumer`] as a `Stream`; see [`Consumer::stream`].
pub type RecordStream<'a> = odradek_client::RecordStream<'a, AsyncIoRuntime>;
pub use odradek_core::{
    BrokerAddress, CloseOptions, CommitFailure, ConfigError, ConfigErrorKind, ConsumerBuilder,
    ConsumerConfig, ConsumerRecord, ConsumerRecords, Error, FromPayload, GroupMetadata,
    IsolationLevel, Misuse, NoopListener, OffsetAndMetadata, OffsetAndTimestamp, OffsetReset,
    Operation, PartitionAssignmentStrategy, PayloadError, RebalanceContext, RebalanceListener,
    RuntimeFailure, TopicPartition, group, payload, protocol, records,
};
