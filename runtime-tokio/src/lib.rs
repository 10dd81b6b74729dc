//! # odradek-tokio
//!
//! A Kafka consumer for tokio programs. All Kafka logic lives in
//! [`odradek_core`]; this crate owns the sockets, the timer and a background
//! task that keeps driving the core between calls, so fetches overlap the
//! application's processing.
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

mod consumer;
mod driver;

pub use consumer::{Consumer, RecordStream};
pub use odradek_core::{
    BrokerAddress, ConfigError, ConfigErrorKind, ConsumerBuilder, ConsumerConfig, ConsumerRecord,
    ConsumerRecords, Error, GroupMetadata, IsolationLevel, NoopListener, OffsetAndMetadata,
    OffsetAndTimestamp, OffsetReset, RebalanceContext, RebalanceListener, TopicPartition, group,
    protocol, records,
};
