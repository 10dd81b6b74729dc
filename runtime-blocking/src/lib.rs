//! # odradek-blocking
//!
//! A Kafka consumer for synchronous programs: no async runtime, just
//! `std::net` sockets and threads. All Kafka logic lives in
//! [`odradek_core`], and the consumer's methods, waiting and driver policy
//! in [`odradek_client`]; this crate is the thread binding
//! ([`ThreadRuntime`]): sockets, the clock and a background driver thread
//! that keeps driving the core between calls, so fetches overlap the
//! application's processing.
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

mod runtime;

pub use runtime::{ThreadConn, ThreadRuntime};

/// A Kafka consumer driven by a background thread, whose waiting calls
/// block; `Send + Sync`. See [`odradek_client::Consumer`] for its methods.
pub type Consumer = odradek_client::Consumer<ThreadRuntime, odradek_client::Blocking>;

/// The records of a [`Consumer`] as an `Iterator`; see [`Consumer::iter`].
pub type Iter<'a> = odradek_client::Iter<'a, ThreadRuntime>;
pub use odradek_core::{
    BrokerAddress, CloseOptions, CommitFailure, ConfigError, ConfigErrorKind, ConsumerBuilder,
    ConsumerConfig, ConsumerRecord, ConsumerRecords, Error, FromPayload, GroupMetadata,
    IsolationLevel, Misuse, NoopListener, OffsetAndMetadata, OffsetAndTimestamp, OffsetReset,
    Operation, PartitionAssignmentStrategy, PayloadError, RebalanceContext, RebalanceListener,
    RuntimeFailure, TopicPartition, group, payload, protocol, records,
};
