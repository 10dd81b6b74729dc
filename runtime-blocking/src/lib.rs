//! # odradek-blocking
//!
//! A Kafka consumer for synchronous programs: no async runtime, just
//! `std::net` sockets and threads. All Kafka logic lives in
//! [`odradek_core`]; this crate owns the sockets, the clock and a background
//! driver thread that keeps driving the core between calls, so fetches
//! overlap the application's processing.
//!
//! ```no_run
//! use std::time::Duration;
//! use odradek_blocking::{Consumer, OffsetReset, TopicPartition};
//!
//! # fn run() -> Result<(), odradek_blocking::Error> {
//! let consumer = Consumer::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .auto_offset_reset(OffsetReset::Earliest)
//!     .build()?;
//! consumer.assign([TopicPartition::new("events", 0)])?;
//! loop {
//!     let records = consumer.poll(Duration::from_millis(500))?;
//!     for record in &records {
//!         println!("{}@{}: {:?}", record.partition(), record.offset(), record.value());
//!     }
//! #   break;
//! }
//! consumer.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Threads
//!
//! Each consumer runs one driver thread, which moves bytes and time in and
//! out of the core, plus one thread per broker connection, which connects
//! and then reads. They all end after [`Consumer::close`] or a drop: the
//! driver closes every socket, which ends its reader.

mod consumer;
mod driver;

pub use consumer::{Consumer, Iter};
pub use odradek_core::{
    BrokerAddress, ConfigError, ConfigErrorKind, ConsumerBuilder, ConsumerConfig, ConsumerRecord,
    ConsumerRecords, Error, GroupMetadata, IsolationLevel, NoopListener, OffsetAndMetadata,
    OffsetAndTimestamp, OffsetReset, RebalanceContext, RebalanceListener, TopicPartition, group,
    protocol, records,
};
