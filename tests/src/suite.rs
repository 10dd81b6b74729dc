//! One scenario, every adapter: the consumer integration suite.
//!
//! [`TestConsumer`] is a small blocking interface over a consumer, with one
//! implementation per way of running Odradek:
//!
//! | type | crate | how each call runs |
//! | --- | --- | --- |
//! | [`TokioConsumer`] | `odradek-tokio` | `block_on` on a multi-thread tokio runtime shared by the process (the consumer is created inside it) |
//! | [`AsyncStdConsumer`] | `odradek-async-std` | `async_std::task::block_on` |
//! | [`SmolConsumer`] | `odradek-async-std` | `smol::block_on` |
//! | [`BlockingConsumer`] | `odradek-blocking` | a direct call |
//!
//! A scenario is written once as a generic function `fn scenario<C:
//! TestConsumer>()`, and [`for_each_runtime!`](crate::for_each_runtime)
//! turns it into one `#[test]` per runtime (`scenario::tokio`,
//! `scenario::async_std`, `scenario::smol`, `scenario::blocking`).
//!
//! The rest of the module is shared equipment: consumer configurations
//! tuned for a local broker, record batches whose values name their own
//! coordinates ([`numbered_batch`], [`check_numbered`]), an exactly-once
//! bookkeeper ([`OffsetTracker`]), bounded polling helpers, and a
//! [`HangGuard`] that turns a hang into a failed test run with a message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use std::sync::{Arc, Mutex};

use odradek_core::{
    CloseOptions, ConsumerBuilder, ConsumerConfig, ConsumerInterceptor, ConsumerRecord,
    ConsumerRecords, Error, GroupMetadata, OffsetAndMetadata, OffsetAndTimestamp, OffsetReset,
    Operation, RebalanceContext, RebalanceEvent, RebalanceListener, TopicPartition,
};

use crate::Broker;
use crate::driver::Connection;

/// Offsets per partition, as `beginning_offsets` and `end_offsets` return them.
pub type Offsets = BTreeMap<TopicPartition, i64>;

/// Offsets found per partition, as `offsets_for_times` returns them.
pub type OffsetsForTimes = BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>;

/// What a scenario needs from a consumer, as blocking calls.
///
/// Each method mirrors the adapter method of the same name. The last three
/// exercise what differs between adapters: concurrent calls (joined
/// futures, or threads), cancellation (async) or short timeouts
/// (blocking), and the `Stream` (async) or `Iterator` (blocking).
pub trait TestConsumer: Sized {
    /// The runtime's name, for messages.
    const RUNTIME: &'static str;

    /// Creates a consumer with `config`.
    fn build(config: ConsumerConfig) -> Result<Self, Error>;
    /// `assign(partitions)`.
    fn assign(&self, partitions: &[TopicPartition]) -> Result<(), Error>;
    /// `assignment()`.
    fn assignment(&self) -> Vec<TopicPartition>;
    /// `poll(timeout)`.
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error>;
    /// `seek(partition, offset)`.
    fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error>;
    /// `seek_to_beginning(partitions)`.
    fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error>;
    /// `seek_to_end(partitions)`.
    fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error>;
    /// `position(partition)`.
    fn position(&self, partition: &TopicPartition) -> Result<i64, Error>;
    /// `pause(partitions)`.
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error>;
    /// `resume(partitions)`.
    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error>;
    /// `paused()`.
    fn paused(&self) -> Vec<TopicPartition>;
    /// `buffered_bytes()`.
    fn buffered_bytes(&self) -> usize;
    /// `beginning_offsets(partitions)`.
    fn beginning_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error>;
    /// `end_offsets(partitions)`.
    fn end_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error>;
    /// `offsets_for_times(timestamps)`.
    fn offsets_for_times(
        &self,
        timestamps: &[(TopicPartition, i64)],
    ) -> Result<OffsetsForTimes, Error>;
    /// `close()`.
    fn close(&self) -> Result<(), Error>;
    /// `subscribe_with_listener(topics, RecordingListener(log))`.
    fn subscribe(&self, topics: &[&str], log: &RebalanceLog) -> Result<(), Error> {
        self.subscribe_with(topics, RecordingListener(log.clone()))
    }
    /// `subscribe_pattern_with_listener(pattern, RecordingListener(log))`.
    fn subscribe_pattern(&self, pattern: &str, log: &RebalanceLog) -> Result<(), Error>;
    /// `subscription()`.
    fn subscription(&self) -> Vec<String>;
    /// `group_metadata()`.
    fn group_metadata(&self) -> Option<GroupMetadata>;
    /// `subscribe_with_listener(topics, listener)` with any listener.
    fn subscribe_with<L: RebalanceListener + 'static>(
        &self,
        topics: &[&str],
        listener: L,
    ) -> Result<(), Error>;
    /// `subscribe(topics)`: no listener of its own (the builder's hears).
    fn subscribe_plain(&self, topics: &[&str]) -> Result<(), Error>;
    /// `unsubscribe()`.
    fn unsubscribe(&self) -> Result<(), Error>;
    /// `commit()`.
    fn commit(&self) -> Result<(), Error>;
    /// `commit_offsets(offsets)`.
    fn commit_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error>;
    /// `committed(partitions)`.
    fn committed(&self, partitions: &[TopicPartition]) -> Result<Committed, Error>;
    /// `commit_async(callback)` (`None`) or `commit_offsets_async(offsets,
    /// callback)`, then waits (without polling) for the callback's outcome.
    fn commit_async(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<(), Error>;

    /// Built through the typed builder with `.rebalance_listener(listener)`.
    fn build_with_listener<L: RebalanceListener + 'static>(
        config: ConsumerConfig,
        listener: L,
    ) -> Result<Self, Error>;
    /// Built through the typed builder with each of `interceptors`, in
    /// order.
    fn build_with_interceptors(
        config: ConsumerConfig,
        interceptors: &[Arc<dyn ConsumerInterceptor>],
    ) -> Result<Self, Error>;
    /// `poll_max(timeout, max_records)`.
    fn poll_max(&self, timeout: Duration, max_records: usize) -> Result<ConsumerRecords, Error>;
    /// `store_offset(record)`.
    fn store_offset(&self, record: &ConsumerRecord) -> Result<(), Error>;
    /// `store_offsets(offsets)`.
    fn store_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error>;
    /// `close_with(options)`.
    fn close_with(&self, options: CloseOptions) -> Result<(), Error>;
    /// `high_watermark(partition)`.
    fn high_watermark(&self, partition: &TopicPartition) -> Option<i64>;
    /// `lag(partition)`.
    fn lag(&self, partition: &TopicPartition) -> Option<i64>;
    /// `metrics()`.
    fn metrics(&self) -> odradek_core::metrics::Metrics;

    /// Two `beginning_offsets` calls in flight at once (async: joined in
    /// one task; blocking: on two threads).
    fn beginning_offsets_concurrently(
        &self,
        a: &[TopicPartition],
        b: &[TopicPartition],
    ) -> (Result<Offsets, Error>, Result<Offsets, Error>);

    /// Takes `count` records one at a time while cancelling waits: async
    /// adapters race `recv()` or `poll()` against timers of 0–2 ms (the
    /// loser is dropped mid-wait); the blocking adapter polls with
    /// timeouts of 0–2 ms. Stops early at `deadline`.
    fn take_cancelling(&self, count: usize, deadline: Instant) -> Result<Cancelled, Error>;

    /// Takes `count` records from the adapter's `Stream` (async) or
    /// `Iterator` (blocking). Async adapters stop at `deadline`; the
    /// blocking iterator cannot be interrupted, so callers hold a
    /// [`HangGuard`].
    fn take_from_stream(
        &self,
        count: usize,
        deadline: Instant,
    ) -> Result<Vec<ConsumerRecord>, Error>;
}

/// Starts an asynchronous commit with `start` and waits up to 30 s for its
/// callback's outcome.
fn commit_async_with(
    offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    start: impl FnOnce(
        Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        Box<dyn FnOnce(Result<(), Error>) + Send>,
    ) -> Result<(), Error>,
) -> Result<(), Error> {
    let (sender, outcome) = std::sync::mpsc::channel();
    start(
        offsets,
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    )?;
    outcome
        .recv_timeout(Duration::from_secs(30))
        // The callback never ran: the commit did not finish in time.
        .unwrap_or(Err(Error::Timeout(Operation::Commit)))
}

/// Committed offsets per partition, as `committed` returns them.
pub type Committed = BTreeMap<TopicPartition, Option<OffsetAndMetadata>>;

/// What a [`RecordingListener`] saw, shared with the test.
pub type RebalanceLog = Arc<Mutex<Vec<RebalanceEvent>>>;

/// A rebalance listener that logs every callback and, on revocation,
/// commits the delivered positions (the Java idiom for at-least-once).
#[derive(Debug, Clone, Default)]
pub struct RecordingListener(pub RebalanceLog);

impl RebalanceListener for RecordingListener {
    fn on_partitions_assigned(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.0
            .lock()
            .unwrap()
            .push(RebalanceEvent::Assigned(partitions.to_vec()));
    }
    fn on_partitions_revoked(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.0
            .lock()
            .unwrap()
            .push(RebalanceEvent::Revoked(partitions.to_vec()));
        // Failures surface from the next poll; the test sees them there.
        let _ = context.commit();
    }
    fn on_partitions_lost(&mut self, _: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(RebalanceEvent::Lost(partitions.to_vec()));
    }
}

/// What [`TestConsumer::take_cancelling`] got.
#[derive(Debug, Default)]
pub struct Cancelled {
    /// The records, in the order received.
    pub records: Vec<ConsumerRecord>,
    /// How many waits a timer cut short (or, blocking, how many polls
    /// returned empty at their timeout).
    pub cancelled: usize,
}

/// Instantiates generic scenarios for every broker and every runtime.
///
/// `for_each_runtime!(a, b)` expands to modules `a` and `b`, each with a
/// module per broker (`tansu`, `crabka`) holding the tests `tokio`,
/// `async_std`, `smol` and `blocking`, which call
/// `a::<C>(BrokerKind::...)` with the matching [`TestConsumer`] (so
/// `a::crabka::smol` is one test). `for_each_runtime!(crabka: a)` (or
/// `tansu: a`) instantiates a scenario for one broker only: for a
/// behaviour only that broker has, which the scenario's name should say.
#[macro_export]
macro_rules! for_each_runtime {
    ($broker:ident: $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::for_each_runtime!(@broker $scenario, $broker);
        }
    )*};
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            $crate::for_each_runtime!(@broker $scenario, tansu);
            $crate::for_each_runtime!(@broker $scenario, crabka);
        }
    )*};
    (@broker $scenario:ident, tansu) => {
        mod tansu {
            $crate::for_each_runtime!(@runtimes $scenario, $crate::BrokerKind::Tansu);
        }
    };
    (@broker $scenario:ident, crabka) => {
        mod crabka {
            $crate::for_each_runtime!(@runtimes $scenario, $crate::BrokerKind::Crabka);
        }
    };
    (@runtimes $scenario:ident, $kind:expr) => {
        #[test]
        fn tokio() {
            super::super::$scenario::<$crate::suite::TokioConsumer>($kind);
        }
        #[test]
        fn async_std() {
            super::super::$scenario::<$crate::suite::AsyncStdConsumer>($kind);
        }
        #[test]
        fn smol() {
            super::super::$scenario::<$crate::suite::SmolConsumer>($kind);
        }
        #[test]
        fn blocking() {
            super::super::$scenario::<$crate::suite::BlockingConsumer>($kind);
        }
    };
}

/// Instantiates a test that is not generic over the runtime on every
/// broker: `for_each_broker!(a, b)` expands to modules `a` and `b` with
/// the tests `tansu` and `crabka`, which call `a(BrokerKind::...)`.
#[macro_export]
macro_rules! for_each_broker {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[test]
            fn tansu() {
                super::$test($crate::BrokerKind::Tansu);
            }
            #[test]
            fn crabka() {
                super::$test($crate::BrokerKind::Crabka);
            }
        }
    )*};
}

/// A timer length in 0..2 ms from a counter, so that races end both ways.
fn short_timer(i: usize) -> Duration {
    Duration::from_micros((i as u64 * 7919) % 2000)
}

// ---------------------------------------------------------------------------
// tokio
// ---------------------------------------------------------------------------

/// `odradek-tokio` on a multi-thread runtime (2 workers) shared by every
/// tokio consumer of the test process. The runtime outlives the consumers,
/// so dropping one shows what the consumer's own `Drop` does (a runtime
/// shutdown would close its sockets whatever the consumer did).
pub struct TokioConsumer {
    consumer: odradek_tokio::Consumer,
}

impl TokioConsumer {
    fn runtime() -> &'static tokio::runtime::Runtime {
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
    }

    fn consumer(&self) -> &odradek_tokio::Consumer {
        &self.consumer
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        Self::runtime().block_on(future)
    }
}

impl TestConsumer for TokioConsumer {
    const RUNTIME: &'static str = "tokio";

    fn build(config: ConsumerConfig) -> Result<Self, Error> {
        // Created inside the runtime: it spawns its driver task there.
        let _inside = Self::runtime().enter();
        let consumer = odradek_tokio::Consumer::new(config)?;
        Ok(TokioConsumer { consumer })
    }
    fn assign(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer().assign(partitions.iter().cloned())
    }
    fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer().assignment()
    }
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.block_on(self.consumer().poll(timeout))
    }
    fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.consumer().seek(partition, offset)
    }
    fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer().seek_to_beginning(partitions)
    }
    fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer().seek_to_end(partitions)
    }
    fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        self.block_on(self.consumer().position(partition))
    }
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer().pause(partitions)
    }
    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer().resume(partitions)
    }
    fn paused(&self) -> Vec<TopicPartition> {
        self.consumer().paused()
    }
    fn buffered_bytes(&self) -> usize {
        self.consumer().buffered_bytes()
    }
    fn beginning_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
        self.block_on(self.consumer().beginning_offsets(partitions))
    }
    fn end_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
        self.block_on(self.consumer().end_offsets(partitions))
    }
    fn offsets_for_times(
        &self,
        timestamps: &[(TopicPartition, i64)],
    ) -> Result<OffsetsForTimes, Error> {
        self.block_on(
            self.consumer()
                .offsets_for_times(timestamps.iter().cloned()),
        )
    }
    fn close(&self) -> Result<(), Error> {
        self.block_on(self.consumer().close())
    }
    fn subscribe_pattern(&self, pattern: &str, log: &RebalanceLog) -> Result<(), Error> {
        self.consumer()
            .subscribe_pattern_with_listener(pattern, RecordingListener(log.clone()))
    }
    fn subscription(&self) -> Vec<String> {
        self.consumer().subscription()
    }
    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.consumer().group_metadata()
    }
    fn subscribe_with<L: RebalanceListener + 'static>(
        &self,
        topics: &[&str],
        listener: L,
    ) -> Result<(), Error> {
        self.consumer()
            .subscribe_with_listener(topics.iter().copied(), listener)
    }
    fn subscribe_plain(&self, topics: &[&str]) -> Result<(), Error> {
        self.consumer().subscribe(topics.iter().copied())
    }
    fn unsubscribe(&self) -> Result<(), Error> {
        self.consumer().unsubscribe()
    }
    fn commit(&self) -> Result<(), Error> {
        self.block_on(self.consumer().commit())
    }
    fn commit_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.block_on(self.consumer().commit_offsets(offsets.clone()))
    }
    fn committed(&self, partitions: &[TopicPartition]) -> Result<Committed, Error> {
        self.block_on(self.consumer().committed(partitions))
    }
    fn commit_async(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<(), Error> {
        commit_async_with(offsets, |offsets, callback| match offsets {
            None => self.consumer().commit_async(callback),
            Some(offsets) => self.consumer().commit_offsets_async(offsets, callback),
        })
    }
    fn build_with_listener<L: RebalanceListener + 'static>(
        config: ConsumerConfig,
        listener: L,
    ) -> Result<Self, Error> {
        let _inside = Self::runtime().enter();
        let consumer = ConsumerBuilder::<odradek_tokio::Consumer>::from_config(config)
            .rebalance_listener(listener)
            .build()?;
        Ok(TokioConsumer { consumer })
    }
    fn build_with_interceptors(
        config: ConsumerConfig,
        interceptors: &[Arc<dyn ConsumerInterceptor>],
    ) -> Result<Self, Error> {
        let _inside = Self::runtime().enter();
        let builder = ConsumerBuilder::<odradek_tokio::Consumer>::from_config(config);
        let consumer = interceptors
            .iter()
            .fold(builder, |b, i| b.interceptor(i.clone()))
            .build()?;
        Ok(TokioConsumer { consumer })
    }
    fn poll_max(&self, timeout: Duration, max_records: usize) -> Result<ConsumerRecords, Error> {
        self.block_on(self.consumer().poll_max(timeout, max_records))
    }
    fn store_offset(&self, record: &ConsumerRecord) -> Result<(), Error> {
        self.consumer().store_offset(record)
    }
    fn store_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.consumer().store_offsets(offsets.clone())
    }
    fn close_with(&self, options: CloseOptions) -> Result<(), Error> {
        self.block_on(self.consumer().close_with(options))
    }
    fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.consumer().high_watermark(partition)
    }
    fn lag(&self, partition: &TopicPartition) -> Option<i64> {
        self.consumer().lag(partition)
    }
    fn metrics(&self) -> odradek_core::metrics::Metrics {
        self.consumer().metrics()
    }
    fn beginning_offsets_concurrently(
        &self,
        a: &[TopicPartition],
        b: &[TopicPartition],
    ) -> (Result<Offsets, Error>, Result<Offsets, Error>) {
        let consumer = self.consumer();
        self.block_on(async {
            tokio::join!(consumer.beginning_offsets(a), consumer.beginning_offsets(b))
        })
    }

    fn take_cancelling(&self, count: usize, deadline: Instant) -> Result<Cancelled, Error> {
        let consumer = self.consumer();
        self.block_on(async {
            let mut got = Cancelled::default();
            let mut i = 0;
            while got.records.len() < count && Instant::now() < deadline {
                i += 1;
                let timer = short_timer(i);
                if i % 2 == 0 {
                    tokio::select! {
                        record = consumer.recv() => got.records.push(record?),
                        () = tokio::time::sleep(timer) => got.cancelled += 1,
                    }
                } else {
                    // A long poll cut short by the timeout: the poll future
                    // is dropped while it waits.
                    match tokio::time::timeout(timer, consumer.poll(Duration::from_secs(5))).await {
                        Ok(records) => got.records.extend(records?),
                        Err(_) => got.cancelled += 1,
                    }
                }
            }
            Ok(got)
        })
    }

    fn take_from_stream(
        &self,
        count: usize,
        deadline: Instant,
    ) -> Result<Vec<ConsumerRecord>, Error> {
        use futures_lite::StreamExt;
        let consumer = self.consumer();
        self.block_on(async {
            let mut stream = consumer.stream();
            let mut out = Vec::new();
            while out.len() < count {
                let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
                match next {
                    Ok(Some(record)) => out.push(record?),
                    Ok(None) | Err(_) => break,
                }
            }
            Ok(out)
        })
    }
}

// ---------------------------------------------------------------------------
// async-std and smol (one crate, two executors)
// ---------------------------------------------------------------------------

/// Implements [`TestConsumer`] for a wrapper of `odradek_async_std::Consumer`
/// whose calls run under `$block_on`, with `$sleep` as the racing timer.
macro_rules! async_io_consumer {
    ($name:ident, $runtime:literal, $block_on:path, $sleep:expr) => {
        impl $name {
            fn block_on<F: Future>(&self, future: F) -> F::Output {
                $block_on(future)
            }
        }

        impl TestConsumer for $name {
            const RUNTIME: &'static str = $runtime;

            fn build(config: ConsumerConfig) -> Result<Self, Error> {
                odradek_async_std::Consumer::new(config).map($name)
            }
            fn assign(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
                self.0.assign(partitions.iter().cloned())
            }
            fn assignment(&self) -> Vec<TopicPartition> {
                self.0.assignment()
            }
            fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
                self.block_on(self.0.poll(timeout))
            }
            fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
                self.0.seek(partition, offset)
            }
            fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
                self.0.seek_to_beginning(partitions)
            }
            fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
                self.0.seek_to_end(partitions)
            }
            fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
                self.block_on(self.0.position(partition))
            }
            fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
                self.0.pause(partitions)
            }
            fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
                self.0.resume(partitions)
            }
            fn paused(&self) -> Vec<TopicPartition> {
                self.0.paused()
            }
            fn buffered_bytes(&self) -> usize {
                self.0.buffered_bytes()
            }
            fn beginning_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
                self.block_on(self.0.beginning_offsets(partitions))
            }
            fn end_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
                self.block_on(self.0.end_offsets(partitions))
            }
            fn offsets_for_times(
                &self,
                timestamps: &[(TopicPartition, i64)],
            ) -> Result<OffsetsForTimes, Error> {
                self.block_on(self.0.offsets_for_times(timestamps.iter().cloned()))
            }
            fn close(&self) -> Result<(), Error> {
                self.block_on(self.0.close())
            }
            fn subscribe_pattern(&self, pattern: &str, log: &RebalanceLog) -> Result<(), Error> {
                self.0
                    .subscribe_pattern_with_listener(pattern, RecordingListener(log.clone()))
            }
            fn subscription(&self) -> Vec<String> {
                self.0.subscription()
            }
            fn group_metadata(&self) -> Option<GroupMetadata> {
                self.0.group_metadata()
            }
            fn subscribe_with<L: RebalanceListener + 'static>(
                &self,
                topics: &[&str],
                listener: L,
            ) -> Result<(), Error> {
                self.0
                    .subscribe_with_listener(topics.iter().copied(), listener)
            }
            fn subscribe_plain(&self, topics: &[&str]) -> Result<(), Error> {
                self.0.subscribe(topics.iter().copied())
            }
            fn unsubscribe(&self) -> Result<(), Error> {
                self.0.unsubscribe()
            }
            fn commit(&self) -> Result<(), Error> {
                self.block_on(self.0.commit())
            }
            fn commit_offsets(
                &self,
                offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
            ) -> Result<(), Error> {
                self.block_on(self.0.commit_offsets(offsets.clone()))
            }
            fn committed(&self, partitions: &[TopicPartition]) -> Result<Committed, Error> {
                self.block_on(self.0.committed(partitions))
            }
            fn commit_async(
                &self,
                offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
            ) -> Result<(), Error> {
                commit_async_with(offsets, |offsets, callback| match offsets {
                    None => self.0.commit_async(callback),
                    Some(offsets) => self.0.commit_offsets_async(offsets, callback),
                })
            }
            fn build_with_listener<L: RebalanceListener + 'static>(
                config: ConsumerConfig,
                listener: L,
            ) -> Result<Self, Error> {
                ConsumerBuilder::<odradek_async_std::Consumer>::from_config(config)
                    .rebalance_listener(listener)
                    .build()
                    .map($name)
            }
            fn build_with_interceptors(
                config: ConsumerConfig,
                interceptors: &[Arc<dyn ConsumerInterceptor>],
            ) -> Result<Self, Error> {
                let builder = ConsumerBuilder::<odradek_async_std::Consumer>::from_config(config);
                interceptors
                    .iter()
                    .fold(builder, |b, i| b.interceptor(i.clone()))
                    .build()
                    .map($name)
            }
            fn poll_max(
                &self,
                timeout: Duration,
                max_records: usize,
            ) -> Result<ConsumerRecords, Error> {
                self.block_on(self.0.poll_max(timeout, max_records))
            }
            fn store_offset(&self, record: &ConsumerRecord) -> Result<(), Error> {
                self.0.store_offset(record)
            }
            fn store_offsets(
                &self,
                offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
            ) -> Result<(), Error> {
                self.0.store_offsets(offsets.clone())
            }
            fn close_with(&self, options: CloseOptions) -> Result<(), Error> {
                self.block_on(self.0.close_with(options))
            }
            fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
                self.0.high_watermark(partition)
            }
            fn lag(&self, partition: &TopicPartition) -> Option<i64> {
                self.0.lag(partition)
            }
            fn metrics(&self) -> odradek_core::metrics::Metrics {
                self.0.metrics()
            }
            fn beginning_offsets_concurrently(
                &self,
                a: &[TopicPartition],
                b: &[TopicPartition],
            ) -> (Result<Offsets, Error>, Result<Offsets, Error>) {
                self.block_on(futures_lite::future::zip(
                    self.0.beginning_offsets(a),
                    self.0.beginning_offsets(b),
                ))
            }

            fn take_cancelling(&self, count: usize, deadline: Instant) -> Result<Cancelled, Error> {
                use futures_lite::future::or;
                let consumer = &self.0;
                self.block_on(async {
                    let mut got = Cancelled::default();
                    let mut i = 0;
                    while got.records.len() < count && Instant::now() < deadline {
                        i += 1;
                        let timer = short_timer(i);
                        let expired = async {
                            $sleep(timer).await;
                            None
                        };
                        if i % 2 == 0 {
                            let recv = async { Some(consumer.recv().await.map(|r| vec![r])) };
                            match or(recv, expired).await {
                                Some(records) => got.records.extend(records?),
                                None => got.cancelled += 1,
                            }
                        } else {
                            let poll = async {
                                Some(
                                    consumer
                                        .poll(Duration::from_secs(5))
                                        .await
                                        .map(|r| r.into_iter().collect::<Vec<_>>()),
                                )
                            };
                            match or(poll, expired).await {
                                Some(records) => got.records.extend(records?),
                                None => got.cancelled += 1,
                            }
                        }
                    }
                    Ok(got)
                })
            }

            fn take_from_stream(
                &self,
                count: usize,
                deadline: Instant,
            ) -> Result<Vec<ConsumerRecord>, Error> {
                use futures_lite::StreamExt;
                use futures_lite::future::or;
                let consumer = &self.0;
                self.block_on(async {
                    let mut stream = consumer.stream();
                    let mut out = Vec::new();
                    while out.len() < count {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let expired = async {
                            $sleep(left).await;
                            None
                        };
                        match or(async { Some(stream.next().await) }, expired).await {
                            Some(Some(record)) => out.push(record?),
                            Some(None) | None => break,
                        }
                    }
                    Ok(out)
                })
            }
        }
    };
}

/// `odradek-async-std` with every call under `async_std::task::block_on`
/// (timers: `async_std::task::sleep`).
pub struct AsyncStdConsumer(odradek_async_std::Consumer);

/// `odradek-async-std` with every call under `smol::block_on` (timers:
/// `smol::Timer`).
pub struct SmolConsumer(odradek_async_std::Consumer);

async_io_consumer!(
    AsyncStdConsumer,
    "async-std",
    async_std::task::block_on,
    async_std::task::sleep
);

async_io_consumer!(SmolConsumer, "smol", smol::block_on, smol_sleep);

async fn smol_sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

// ---------------------------------------------------------------------------
// blocking
// ---------------------------------------------------------------------------

/// `odradek-blocking`, called directly.
pub struct BlockingConsumer(odradek_blocking::Consumer);

impl TestConsumer for BlockingConsumer {
    const RUNTIME: &'static str = "blocking";

    fn build(config: ConsumerConfig) -> Result<Self, Error> {
        odradek_blocking::Consumer::new(config).map(BlockingConsumer)
    }
    fn assign(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.0.assign(partitions.iter().cloned())
    }
    fn assignment(&self) -> Vec<TopicPartition> {
        self.0.assignment()
    }
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.0.poll(timeout)
    }
    fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.0.seek(partition, offset)
    }
    fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.0.seek_to_beginning(partitions)
    }
    fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.0.seek_to_end(partitions)
    }
    fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        self.0.position(partition)
    }
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.0.pause(partitions)
    }
    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.0.resume(partitions)
    }
    fn paused(&self) -> Vec<TopicPartition> {
        self.0.paused()
    }
    fn buffered_bytes(&self) -> usize {
        self.0.buffered_bytes()
    }
    fn beginning_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
        self.0.beginning_offsets(partitions)
    }
    fn end_offsets(&self, partitions: &[TopicPartition]) -> Result<Offsets, Error> {
        self.0.end_offsets(partitions)
    }
    fn offsets_for_times(
        &self,
        timestamps: &[(TopicPartition, i64)],
    ) -> Result<OffsetsForTimes, Error> {
        self.0.offsets_for_times(timestamps.iter().cloned())
    }
    fn close(&self) -> Result<(), Error> {
        self.0.close()
    }
    fn subscribe_pattern(&self, pattern: &str, log: &RebalanceLog) -> Result<(), Error> {
        self.0
            .subscribe_pattern_with_listener(pattern, RecordingListener(log.clone()))
    }
    fn subscription(&self) -> Vec<String> {
        self.0.subscription()
    }
    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.0.group_metadata()
    }
    fn subscribe_with<L: RebalanceListener + 'static>(
        &self,
        topics: &[&str],
        listener: L,
    ) -> Result<(), Error> {
        self.0
            .subscribe_with_listener(topics.iter().copied(), listener)
    }
    fn subscribe_plain(&self, topics: &[&str]) -> Result<(), Error> {
        self.0.subscribe(topics.iter().copied())
    }
    fn unsubscribe(&self) -> Result<(), Error> {
        self.0.unsubscribe()
    }
    fn commit(&self) -> Result<(), Error> {
        self.0.commit()
    }
    fn commit_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.0.commit_offsets(offsets.clone())
    }
    fn committed(&self, partitions: &[TopicPartition]) -> Result<Committed, Error> {
        self.0.committed(partitions)
    }
    fn commit_async(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<(), Error> {
        commit_async_with(offsets, |offsets, callback| match offsets {
            None => self.0.commit_async(callback),
            Some(offsets) => self.0.commit_offsets_async(offsets, callback),
        })
    }
    fn build_with_listener<L: RebalanceListener + 'static>(
        config: ConsumerConfig,
        listener: L,
    ) -> Result<Self, Error> {
        ConsumerBuilder::<odradek_blocking::Consumer>::from_config(config)
            .rebalance_listener(listener)
            .build()
            .map(BlockingConsumer)
    }
    fn build_with_interceptors(
        config: ConsumerConfig,
        interceptors: &[Arc<dyn ConsumerInterceptor>],
    ) -> Result<Self, Error> {
        let builder = ConsumerBuilder::<odradek_blocking::Consumer>::from_config(config);
        interceptors
            .iter()
            .fold(builder, |b, i| b.interceptor(i.clone()))
            .build()
            .map(BlockingConsumer)
    }
    fn poll_max(&self, timeout: Duration, max_records: usize) -> Result<ConsumerRecords, Error> {
        self.0.poll_max(timeout, max_records)
    }
    fn store_offset(&self, record: &ConsumerRecord) -> Result<(), Error> {
        self.0.store_offset(record)
    }
    fn store_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.0.store_offsets(offsets.clone())
    }
    fn close_with(&self, options: CloseOptions) -> Result<(), Error> {
        self.0.close_with(options)
    }
    fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.0.high_watermark(partition)
    }
    fn lag(&self, partition: &TopicPartition) -> Option<i64> {
        self.0.lag(partition)
    }
    fn metrics(&self) -> odradek_core::metrics::Metrics {
        self.0.metrics()
    }
    fn beginning_offsets_concurrently(
        &self,
        a: &[TopicPartition],
        b: &[TopicPartition],
    ) -> (Result<Offsets, Error>, Result<Offsets, Error>) {
        thread::scope(|scope| {
            let first = scope.spawn(|| self.0.beginning_offsets(a));
            let second = self.0.beginning_offsets(b);
            (first.join().expect("query thread"), second)
        })
    }

    fn take_cancelling(&self, count: usize, deadline: Instant) -> Result<Cancelled, Error> {
        // No futures to cancel: the blocking counterpart is a poll whose
        // timeout (0–2 ms) expires while it waits.
        let mut got = Cancelled::default();
        let mut i = 0;
        while got.records.len() < count && Instant::now() < deadline {
            i += 1;
            let records = self.0.poll(short_timer(i))?;
            if records.is_empty() {
                got.cancelled += 1;
            }
            got.records.extend(records);
        }
        Ok(got)
    }

    fn take_from_stream(
        &self,
        count: usize,
        _deadline: Instant,
    ) -> Result<Vec<ConsumerRecord>, Error> {
        self.0.iter().take(count).collect()
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// A consumer configuration for a test against `broker`: earliest offset
/// reset, a short broker-side fetch wait (so polls see new data promptly),
/// and request timeouts short enough for fault tests to finish quickly.
pub fn config(broker: &Broker) -> ConsumerConfig {
    ConsumerConfig::builder()
        .bootstrap_servers(broker.bootstrap())
        .client_id("odradek-tests")
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
        .request_timeout(Duration::from_secs(10))
        .default_api_timeout(Duration::from_secs(20))
        .build()
        .expect("test configuration")
}

/// [`config`] for a member of consumer group `group`: the broker's
/// [`group_timeouts`](crate::BrokerKind::group_timeouts) (short on tansu,
/// which holds a JoinGroup for about half the session timeout), manual
/// commits unless `auto_commit`.
pub fn group_config(broker: &Broker, group: &str, auto_commit: bool) -> ConsumerConfig {
    let mut config = config(broker);
    config.group_id = Some(group.into());
    (config.session_timeout, config.heartbeat_interval) = broker.kind().group_timeouts();
    config.enable_auto_commit = auto_commit;
    config.auto_commit_interval = Duration::from_millis(500);
    config
}

/// Builds a consumer, panicking with the runtime's name on failure.
pub fn build<C: TestConsumer>(config: ConsumerConfig) -> C {
    C::build(config).unwrap_or_else(|e| panic!("[{}] building the consumer: {e}", C::RUNTIME))
}

/// `partitions` partitions of `topic`, numbered from 0.
pub fn partitions(topic: &str, partitions: i32) -> Vec<TopicPartition> {
    (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

// ---------------------------------------------------------------------------
// Numbered records
// ---------------------------------------------------------------------------

/// The timestamp [`numbered_batch`] gives the record at `offset`.
pub const NUMBERED_TIMESTAMP_BASE: i64 = 1_600_000_000_000;

/// The value of the numbered record at `offset` of `topic`/`partition`.
pub fn numbered_value(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// One record batch holding the numbered records `first..first + count` of
/// `topic`/`partition`: value [`numbered_value`], key `"k{offset}"`,
/// timestamp [`NUMBERED_TIMESTAMP_BASE`]` + offset`, header `("offset",
/// "{offset}")`. Append it where the log ends at `first`, so the values
/// match the offsets the broker assigns.
pub fn numbered_batch(
    topic: &str,
    partition: i32,
    first: i64,
    count: usize,
    compression: Compression,
) -> Bytes {
    let records = (first..first + count as i64).map(|offset| {
        NewRecord::new()
            .with_key(format!("k{offset}"))
            .with_value(numbered_value(topic, partition, offset))
            .with_timestamp(NUMBERED_TIMESTAMP_BASE + offset)
            .with_header("offset", offset.to_string())
    });
    RecordBatchBuilder::new(0)
        .compression(compression)
        .records(records.collect::<Vec<_>>())
        .encode()
        .expect("encode a numbered batch")
}

/// Appends numbered batches of the given sizes to `topic`/`partition`,
/// which must end at `first`, and returns the new end offset. Checks the
/// base offset the broker assigns to each batch.
pub fn produce_numbered(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    first: i64,
    batch_sizes: &[usize],
    compression: Compression,
) -> i64 {
    let mut next = first;
    for &size in batch_sizes {
        let batch = numbered_batch(topic, partition, next, size, compression);
        let base = conn
            .produce(topic, partition, batch)
            .unwrap_or_else(|e| panic!("producing to {topic}/{partition}: {e}"));
        assert_eq!(base, next, "{topic}/{partition}: the broker's base offset");
        next += size as i64;
    }
    next
}

/// Panics unless `record` is the numbered record of its own topic,
/// partition and offset (value, key, timestamp and header).
pub fn check_numbered(record: &ConsumerRecord) {
    let offset = record.offset();
    let at = format!("{}@{offset}", record.topic_partition());
    let value = numbered_value(record.topic(), record.partition(), offset);
    assert_eq!(
        record.value().map(String::from_utf8_lossy),
        Some(value.as_str().into()),
        "{at}: value"
    );
    assert_eq!(
        record.key(),
        Some(format!("k{offset}").as_bytes()),
        "{at}: key"
    );
    assert_eq!(
        record.timestamp(),
        NUMBERED_TIMESTAMP_BASE + offset,
        "{at}: timestamp"
    );
    let headers: Vec<(&[u8], Option<&[u8]>)> =
        record.headers().iter().map(|h| (h.key, h.value)).collect();
    assert_eq!(
        headers,
        vec![(&b"offset"[..], Some(offset.to_string().as_bytes()))],
        "{at}: headers"
    );
}

// ---------------------------------------------------------------------------
// Exactly-once bookkeeping
// ---------------------------------------------------------------------------

/// Checks that each partition's records arrive exactly once, in offset
/// order, from a known starting offset: every record must carry the next
/// expected offset of its partition, so a lost record (a gap) or a
/// duplicate fails at once with the partition and both offsets.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    next: BTreeMap<TopicPartition, i64>,
}

impl OffsetTracker {
    /// A tracker expecting each of `partitions` to start at `offset`.
    pub fn starting_at(partitions: &[TopicPartition], offset: i64) -> Self {
        let mut tracker = Self::default();
        for tp in partitions {
            tracker.expect(tp, offset);
        }
        tracker
    }

    /// The next record of `tp` must have offset `offset` (after a seek).
    pub fn expect(&mut self, tp: &TopicPartition, offset: i64) {
        self.next.insert(tp.clone(), offset);
    }

    /// The next offset expected for `tp`, if it is tracked.
    pub fn next(&self, tp: &TopicPartition) -> Option<i64> {
        self.next.get(tp).copied()
    }

    /// Accepts one record; panics if it is not the next one of its
    /// partition (or its partition is not tracked).
    pub fn accept(&mut self, record: &ConsumerRecord) {
        let tp = record.topic_partition();
        let Some(next) = self.next.get_mut(tp) else {
            panic!(
                "record {tp}@{} from an untracked partition",
                record.offset()
            );
        };
        assert_eq!(
            record.offset(),
            *next,
            "{tp}: expected offset {next}, got {} ({})",
            record.offset(),
            if record.offset() < *next {
                "a duplicate or a step back"
            } else {
                "records were skipped"
            }
        );
        *next += 1;
    }

    /// Accepts every record of a poll.
    pub fn accept_all<'a>(&mut self, records: impl IntoIterator<Item = &'a ConsumerRecord>) {
        for record in records {
            self.accept(record);
        }
    }

    /// Whether every partition of `end` has reached its end offset (its
    /// next offset is at or past it).
    pub fn all_reached(&self, end: &BTreeMap<TopicPartition, i64>) -> bool {
        end.iter()
            .all(|(tp, end)| self.next(tp).is_some_and(|next| next >= *end))
    }
}

// ---------------------------------------------------------------------------
// Bounded waiting
// ---------------------------------------------------------------------------

/// Polls (500 ms at a time) until `done(state)` holds, handing every
/// record to `each(state, record)`; returns the number of records. Panics
/// at `limit` with how far it got, and on any poll error.
pub fn poll_until<C: TestConsumer, S>(
    consumer: &C,
    what: &str,
    limit: Duration,
    state: &mut S,
    mut each: impl FnMut(&mut S, &ConsumerRecord),
    mut done: impl FnMut(&S) -> bool,
) -> usize {
    let deadline = Instant::now() + limit;
    let mut seen = 0;
    let mut per_partition: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    while !done(state) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "[{}] {what}: not done after {limit:?}; {seen} records so far: {per_partition:?}",
            C::RUNTIME
        );
        let records = consumer
            .poll(left.min(Duration::from_millis(500)))
            .unwrap_or_else(|e| panic!("[{}] {what}: poll failed: {e}", C::RUNTIME));
        for record in &records {
            *per_partition
                .entry(record.topic_partition().clone())
                .or_default() += 1;
            each(state, record);
        }
        seen += records.len();
    }
    seen
}

/// Polls until `tracker` has reached `end` in every partition of `end`,
/// checking each record with `check`; returns the records.
pub fn consume_to<C: TestConsumer>(
    consumer: &C,
    what: &str,
    limit: Duration,
    tracker: &mut OffsetTracker,
    end: &BTreeMap<TopicPartition, i64>,
    check: impl Fn(&ConsumerRecord),
) -> Vec<ConsumerRecord> {
    let mut state = (tracker, Vec::new());
    poll_until(
        consumer,
        what,
        limit,
        &mut state,
        |(tracker, got), record| {
            tracker.accept(record);
            check(record);
            got.push(record.clone());
        },
        |(tracker, _)| tracker.all_reached(end),
    );
    state.1
}

/// Polls for `period` and panics if any record arrives (or a poll fails).
pub fn expect_no_records<C: TestConsumer>(consumer: &C, what: &str, period: Duration) {
    let until = Instant::now() + period;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let records = consumer
            .poll(left)
            .unwrap_or_else(|e| panic!("[{}] {what}: poll failed: {e}", C::RUNTIME));
        if let Some(record) = records.iter().next() {
            panic!(
                "[{}] {what}: expected no records, got {} starting with {}@{}",
                C::RUNTIME,
                records.len(),
                record.topic_partition(),
                record.offset()
            );
        }
    }
}

/// Retries `probe` every 20 ms until it returns `Some`, or panics after
/// `limit` with `what` and the last value seen (`probe` returns `Err` with
/// a description while the condition does not hold).
pub fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not true after {limit:?}; last: {last}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until the process holds no established connection to `broker`
/// (the consumer under test closed all of its connections).
pub fn wait_connections_closed(broker: &Broker, what: &str, limit: Duration) {
    let port = broker.addr().port();
    wait_for(what, limit, || {
        match crate::established_connections_to(port) {
            None | Some(0) => Ok(()),
            Some(n) => Err(format!("{n} connections to {port} still established")),
        }
    });
}

/// Runs `f` and returns its result with how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Ends the test process, with a message naming the test, if it is still
/// running after a time limit: a hang becomes a failed run with a reason
/// instead of a CI timeout. Dropping the guard disarms it.
///
/// Brokers of the dying process are killed by their watchdogs.
#[derive(Debug)]
pub struct HangGuard {
    disarm: Option<mpsc::Sender<()>>,
}

impl HangGuard {
    /// Arms a guard for `what` with `limit`.
    pub fn new(what: impl Into<String>, limit: Duration) -> HangGuard {
        let what = what.into();
        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "odradek-tests: `{what}` still running after {limit:?}: it hangs; \
                     ending the test process"
                );
                std::process::exit(101);
            }
        });
        HangGuard { disarm: Some(tx) }
    }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.disarm.take() {
            let _ = tx.send(());
        }
    }
}

/// A compact description of offsets per partition, for messages.
pub fn describe(offsets: &BTreeMap<TopicPartition, i64>) -> String {
    let mut out = String::new();
    for (tp, offset) in offsets {
        let _ = write!(out, "{tp}={offset} ");
    }
    out
}

/// The partitions of a set of records, sorted.
pub fn partitions_of<'a>(
    records: impl IntoIterator<Item = &'a ConsumerRecord>,
) -> BTreeSet<TopicPartition> {
    records
        .into_iter()
        .map(|r| r.topic_partition().clone())
        .collect()
}
