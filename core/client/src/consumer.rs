//! The consumer every runtime crate exposes, written once: commands go
//! straight to the core under a lock; waiting calls are built once as a
//! [`Wait`] and then awaited ([`Async`]) or blocked on ([`Blocking`]).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::Stream;
use odradek_core::{
    BuilderParts, CloseOptions, ConsumerBuilder, ConsumerConfig, ConsumerRecord, ConsumerRecords,
    Error, FromBuilder, FromConfig, GroupMetadata, OffsetAndMetadata, OffsetAndTimestamp,
    OffsetsResult, Operation, QueryId, RebalanceListener, TopicPartition,
};

use crate::driver::Driver;
use crate::runtime::{AsyncRuntime, Runtime};
use crate::session::{ANSWER_GRACE, CLOSE_GRACE, Session, offsets_only};
use crate::shared::{Check, ForgetCommit, Shared, Wait};

/// How a consumer's waiting calls wait: [`Async`] or [`Blocking`].
pub trait Waiting: sealed::Sealed + Send + Sync + 'static {}

/// Waiting calls are `async fn`s (tokio, async-std, smol).
#[derive(Debug)]
pub enum Async {}

/// Waiting calls block the calling thread.
#[derive(Debug)]
pub enum Blocking {}

impl Waiting for Async {}
impl Waiting for Blocking {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Async {}
    impl Sealed for super::Blocking {}
}

/// A Kafka consumer on runtime `R`, whose waiting calls are `async`
/// ([`Async`], the default) or blocking ([`Blocking`]). Runtime crates name
/// it: `odradek_tokio::Consumer`, `odradek_async_std::Consumer`,
/// `odradek_blocking::Consumer`.
///
/// A background driver (a task or a thread, as the runtime decides) keeps
/// driving the core between calls, so fetches and heartbeats overlap the
/// application's processing. Every method takes `&self`, and the consumer
/// is `Send + Sync`: it can be shared (for example in an `Arc`) between a
/// task or thread that polls and one that seeks or pauses. Dropping it
/// closes it in the background without blocking; [`close`](Self::close)
/// waits.
///
/// If the driver panics (say, in a commit callback), waiting calls return
/// [`Error::Runtime`] instead of waiting forever.
pub struct Consumer<R: Runtime, W: Waiting = Async> {
    shared: Arc<Shared>,
    runtime: R,
    waiting: PhantomData<fn() -> W>,
}

impl<R: Runtime, W: Waiting> Consumer<R, W> {
    /// A consumer with `config`; starts its driver on the runtime.
    ///
    /// Fails with the runtime's error if there is none (odradek-tokio
    /// consumers must be created inside a tokio runtime), or with
    /// [`Error::Runtime`] if the driver cannot start.
    pub fn new(config: ConsumerConfig) -> Result<Self, Error> {
        Self::with_parts(config, BuilderParts::default())
    }

    /// A consumer with `config` and the builder's `parts`: the listener of
    /// subscriptions without their own (see
    /// [`ConsumerBuilder::rebalance_listener`]) and the interceptors.
    fn with_parts(mut config: ConsumerConfig, parts: BuilderParts) -> Result<Self, Error> {
        let runtime = R::start()?;
        if config.random_seed.is_none() {
            config.random_seed = Some(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            );
        }
        let core = match crate::security::context(&config)? {
            Some(security) => {
                odradek_core::Consumer::with_security(config, security, runtime.now())?
            }
            None => odradek_core::Consumer::new(config, runtime.now())?,
        };
        let shared = Arc::new(Shared::new(core, parts));
        runtime.spawn_driver(Driver::new(runtime.clone(), shared.clone()))?;
        Ok(Consumer {
            shared,
            runtime,
            waiting: PhantomData,
        })
    }

    /// A typed builder: `Consumer::builder().bootstrap_servers("…").build()`.
    pub fn builder() -> ConsumerBuilder<Self> {
        ConsumerBuilder::new()
    }

    /// A consumer configured with Java/librdkafka property names. An
    /// unknown key or a bad value is an [`Error::Config`] naming the key.
    ///
    /// ```no_run
    /// # use odradek_client::{Consumer, Runtime, Waiting};
    /// # fn f<R: Runtime, W: Waiting>() -> Result<(), odradek_core::Error> {
    /// // Consumer: odradek_tokio::Consumer, odradek_async_std::Consumer or
    /// // odradek_blocking::Consumer
    /// let consumer = Consumer::<R, W>::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("auto.offset.reset", "earliest"),
    /// ])?;
    /// # Ok(()) }
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::new(ConsumerConfig::from_properties(properties)?)
    }

    /// Runs a command on the core, then lets the driver act on its outputs.
    fn command<T>(&self, f: impl FnOnce(&mut odradek_core::Consumer, Instant) -> T) -> T {
        self.with_session(|session, now| f(&mut session.core, now))
    }

    /// Runs a command on the whole session (core, listener, callbacks).
    fn with_session<T>(&self, f: impl FnOnce(&mut Session, Instant) -> T) -> T {
        let result = f(&mut self.shared.lock(), self.runtime.now());
        self.shared.wake_driver();
        result
    }

    /// Replaces the assignment (manual assignment, no consumer group).
    pub fn assign(
        &self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(), Error> {
        self.command(|core, now| core.assign(partitions, now))
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.lock().core.assignment()
    }

    /// Makes `offset` the next record returned for `partition`, dropping
    /// anything fetched from before.
    pub fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.command(|core, now| core.seek(partition, offset, now))
    }

    /// Moves the partitions to the start of their logs; `&[]` moves every
    /// assigned partition (as Java and kafka-python).
    ///
    /// ```no_run
    /// # use odradek_client::{Consumer, Runtime, Waiting};
    /// # fn f<R: Runtime, W: Waiting>(consumer: &Consumer<R, W>) -> Result<(), odradek_core::Error> {
    /// consumer.seek_to_beginning(&[])?; // read everything assigned again
    /// # Ok(()) }
    /// ```
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.seek_to_beginning(partitions, now))
    }

    /// Moves the partitions to the end of their logs; `&[]` moves every
    /// assigned partition.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.seek_to_end(partitions, now))
    }

    /// Stops fetching the partitions (their buffered records are dropped).
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.pause(partitions, now))
    }

    /// Resumes fetching the partitions.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.resume(partitions, now))
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared.lock().core.paused()
    }

    /// Fetched records held for the application, in decompressed bytes:
    /// what `fetch_buffer_max_bytes` bounds.
    pub fn buffered_bytes(&self) -> usize {
        self.shared.lock().core.buffered_bytes()
    }

    /// A snapshot of the consumer's metrics: per partition (position,
    /// committed offset, high watermark, lag, buffered records and bytes),
    /// for the consumer (records and bytes consumed, fetch latency and
    /// size, the buffer, connections, requests) and for its group
    /// (state, rebalances, heartbeat and commit latency, failed commits).
    /// Names follow the Java client's metrics; see
    /// [`odradek_core::metrics`] for the mapping. Cheap: no request is
    /// made, so it can be called every second.
    ///
    /// ```no_run
    /// # use odradek_client::{Consumer, Runtime, Waiting};
    /// # fn f<R: Runtime, W: Waiting>(consumer: &Consumer<R, W>) {
    /// let metrics = consumer.metrics();
    /// println!(
    ///     "lag {:?}, {:.0} records/s",
    ///     metrics.consumer.records_lag_max, metrics.consumer.records_consumed_rate
    /// );
    /// # }
    /// ```
    pub fn metrics(&self) -> odradek_core::metrics::Metrics {
        self.shared.lock().metrics(self.runtime.now())
    }

    /// The high watermark of `partition` from the last fetch response, or
    /// `None` before one arrived (no request is made for it).
    pub fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.shared.lock().core.high_watermark(partition)
    }

    /// How many records `partition` has after the position (Java's
    /// `currentLag`), from the last fetch response: `None` while the
    /// position or the end is unknown; no request is made for it.
    ///
    /// ```no_run
    /// # use odradek_client::{Consumer, Runtime, Waiting};
    /// # fn f<R: Runtime, W: Waiting>(consumer: &Consumer<R, W>) {
    /// for tp in consumer.assignment() {
    ///     if let Some(lag) = consumer.lag(&tp) {
    ///         println!("{tp}: {lag} behind");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn lag(&self, partition: &TopicPartition) -> Option<i64> {
        self.shared.lock().core.lag(partition)
    }

    /// Joins the consumer group (`group.id`) for `topics`, replacing any
    /// earlier subscription (and listener). Partitions are assigned during
    /// `poll`; the builder's [`rebalance_listener`](ConsumerBuilder::rebalance_listener),
    /// if one was given, hears of the rebalances.
    pub fn subscribe<I, S>(&self, topics: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with_session(|session, now| session.subscribe(topics, None, now))
    }

    /// Like [`subscribe`](Self::subscribe), with a listener that hears of
    /// assigned, revoked and lost partitions (called inside `poll`). The
    /// listener must use the [`RebalanceContext`](odradek_core::RebalanceContext)
    /// it is given, not this consumer: such a call panics with directions
    /// instead of deadlocking.
    pub fn subscribe_with_listener<I, S>(
        &self,
        topics: I,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with_session(|session, now| session.subscribe(topics, Some(Box::new(listener)), now))
    }

    /// Joins the consumer group for every topic whose whole name matches
    /// the regular expression `pattern`, re-evaluated at each metadata
    /// refresh (`metadata.max.age.ms`), so new matching topics are picked
    /// up. An invalid pattern is an [`Error::InvalidArgument`].
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<(), Error> {
        self.with_session(|session, now| session.subscribe_pattern(pattern, None, now))
    }

    /// Like [`subscribe_pattern`](Self::subscribe_pattern), with a listener.
    pub fn subscribe_pattern_with_listener(
        &self,
        pattern: &str,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), Error> {
        self.with_session(|session, now| {
            session.subscribe_pattern(pattern, Some(Box::new(listener)), now)
        })
    }

    /// Leaves the group: the listener hears of the revocation (after an
    /// auto-commit), LeaveGroup is sent and the assignment is cleared.
    pub fn unsubscribe(&self) -> Result<(), Error> {
        self.with_session(|session, now| session.unsubscribe(now))
    }

    /// The subscribed topics (for a pattern, the topics it matches now).
    pub fn subscription(&self) -> Vec<String> {
        self.shared.lock().core.subscription()
    }

    /// Who this consumer is in its group (generation, member id, whether
    /// it leads), or `None` without a `group.id`.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        self.shared.lock().core.group_metadata()
    }

    /// Commits the delivered positions without waiting; `callback` gets the
    /// outcome. Callbacks run in the order the commits were made. A
    /// retriable failure is retried only while no newer commit of the same
    /// partitions exists; otherwise it is reported as
    /// `CommitFailed(Retriable | NoAnswer)`, since the newer commit carries
    /// newer offsets (Java does not retry `commitAsync` at all).
    ///
    /// The callback runs on the driver (a task on tokio, a thread
    /// otherwise): keep it short. If it panics, the driver stops and
    /// waiting calls return [`Error::Runtime`].
    pub fn commit_async(
        &self,
        callback: impl FnOnce(Result<(), Error>) + Send + 'static,
    ) -> Result<(), Error> {
        self.with_session(|session, now| session.commit_async(None, Box::new(callback), now))
    }

    /// Commits exactly `offsets` without waiting; `callback` gets the
    /// outcome, like [`commit_async`](Self::commit_async).
    pub fn commit_offsets_async(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        callback: impl FnOnce(Result<(), Error>) + Send + 'static,
    ) -> Result<(), Error> {
        self.with_session(|session, now| {
            session.commit_async(Some(offsets), Box::new(callback), now)
        })
    }

    /// Stores the offset after `record` as its partition's offset to
    /// commit, with `enable.auto.offset.store=false` (librdkafka's
    /// `offset_store`, Sarama's `MarkMessage`): auto-commit, `commit()`,
    /// and the commits before a revocation and on close then send only
    /// stored offsets, so records finished out of poll order are never
    /// committed before they are done.
    ///
    /// ```no_run
    /// # use odradek_client::{Blocking, Consumer, Runtime};
    /// # fn f<R: Runtime>() -> Result<(), odradek_core::Error> {
    /// // Consumer: odradek_blocking::Consumer (the others alike)
    /// let consumer = Consumer::<R, Blocking>::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("group.id", "workers"),
    ///     ("enable.auto.offset.store", "false"),
    /// ])?;
    /// consumer.subscribe(["jobs"])?;
    /// for record in consumer.iter() {
    ///     let record = record?;
    ///     // ... hand the record to a worker; once it is done:
    ///     consumer.store_offset(&record)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn store_offset(&self, record: &ConsumerRecord) -> Result<(), Error> {
        self.command(|core, _| core.store_offset(record))
    }

    /// Stores `offsets` (each the next offset to read) as the offsets to
    /// commit; see [`store_offset`](Self::store_offset).
    pub fn store_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.command(|core, _| core.store_offsets(offsets))
    }

    // The waiting calls, each written once as a `Wait`; the `Async` and
    // `Blocking` impls below only await or block on it.

    fn poll_wait(
        timeout: Duration,
        max_records: usize,
    ) -> Wait<ConsumerRecords, impl Check<ConsumerRecords>> {
        let check = move |session: &mut Session, now| match session.take_records(max_records, now) {
            Ok(records) if records.is_empty() && records.reached_end().is_empty() => None,
            other => Some(other),
        };
        Wait::new(Some(timeout), check, Ok(ConsumerRecords::default()))
    }

    fn recv_wait() -> Wait<ConsumerRecord, impl Check<ConsumerRecord>> {
        // End-of-partition markers are for `poll`: a record at a time has
        // no place for them.
        let check = |session: &mut Session, now| match session.take_records(1, now) {
            Ok(records) => records.into_iter().next().map(Ok),
            Err(e) => Some(Err(e)),
        };
        Wait::new(None, check, Err(Error::Closed))
    }

    fn position_wait(&self, partition: &TopicPartition) -> Wait<i64, impl Check<i64>> {
        let timeout = self.shared.lock().core.config().default_api_timeout;
        let on_timeout = Err(Error::Timeout(Operation::Position(partition.clone())));
        let partition = partition.clone();
        let check =
            move |session: &mut Session, now| session.core.position(&partition, now).transpose();
        Wait::new(Some(timeout), check, on_timeout)
    }

    /// Starts an offsets lookup of `partitions` with `start`; the wait maps
    /// its answer.
    fn query_wait<T>(
        &self,
        partitions: Vec<TopicPartition>,
        start: impl FnOnce(&mut odradek_core::Consumer, Duration, Instant) -> Result<QueryId, Error>,
        map: fn(BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>) -> T,
    ) -> Result<Wait<T, impl Check<T>>, Error> {
        let timeout = self.shared.lock().core.config().default_api_timeout;
        let id = self.command(|core, now| start(core, timeout, now))?;
        // The core enforces the timeout and reports it as the result.
        let check = move |session: &mut Session, _| {
            let result: Option<OffsetsResult> = session.take_query_result(id);
            result.map(|found| found.map(map))
        };
        let on_timeout = Err(Error::Timeout(Operation::OffsetsLookup(partitions)));
        Ok(Wait::new(Some(timeout + ANSWER_GRACE), check, on_timeout))
    }

    fn commit_wait(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<Wait<(), impl Check<()>>, Error> {
        let (id, limit) = self.with_session(|session, now| session.start_commit(offsets, now))?;
        let mut outcome = ForgetCommit::new(self.shared.clone(), id);
        let check = move |session: &mut Session, _| outcome.take(session);
        Ok(Wait::new(
            Some(limit),
            check,
            Err(Error::Timeout(Operation::Commit)),
        ))
    }

    fn committed_wait(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Wait<Committed, impl Check<Committed>>, Error> {
        let (id, limit) =
            self.with_session(|session, now| session.start_committed(partitions, now))?;
        let check = move |session: &mut Session, _| session.take_committed_result(id);
        let on_timeout = Err(Error::Timeout(Operation::CommittedOffsets));
        Ok(Wait::new(Some(limit), check, on_timeout))
    }

    fn close_wait(&self, options: CloseOptions) -> Wait<(), impl Check<()>> {
        self.with_session(|session, now| session.close(options, now));
        let check = |session: &mut Session, _| session.stopped().map(|s| s.close_result());
        let on_timeout = Err(Error::Timeout(Operation::Close));
        let limit = options.close_timeout().saturating_add(CLOSE_GRACE);
        Wait::new(Some(limit), check, on_timeout)
    }
}

/// Committed offsets per partition, as `committed` returns them.
type Committed = BTreeMap<TopicPartition, Option<OffsetAndMetadata>>;

impl<R: AsyncRuntime> Consumer<R, Async> {
    async fn wait<T, C>(&self, wait: Wait<T, C>) -> Result<T, Error>
    where
        C: Check<T>,
    {
        self.shared.wait_async(&self.runtime, wait).await
    }

    /// Returns buffered records (at most `max.poll.records`) as soon as any
    /// are available, or an empty set when `timeout` passes. Cancel safe:
    /// records are taken in one step as the future completes, so dropping
    /// it earlier loses none.
    pub async fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.wait(Self::poll_wait(timeout, usize::MAX)).await
    }

    /// Like [`poll`](Self::poll), returning at most `max_records` records
    /// (kafka-python's `poll(max_records=…)`; capped at
    /// `max.poll.records`). Cancel safe, like `poll`.
    ///
    /// ```no_run
    /// # use odradek_client::{AsyncRuntime, Consumer};
    /// # async fn f<R: AsyncRuntime>(consumer: &Consumer<R>) -> Result<(), odradek_core::Error> {
    /// use std::time::Duration;
    /// // consumer: &odradek_tokio::Consumer (or odradek_async_std's)
    /// let batch = consumer.poll_max(Duration::from_secs(1), 10).await?;
    /// assert!(batch.len() <= 10);
    /// # Ok(()) }
    /// ```
    pub async fn poll_max(
        &self,
        timeout: Duration,
        max_records: usize,
    ) -> Result<ConsumerRecords, Error> {
        self.wait(Self::poll_wait(timeout, max_records)).await
    }

    /// The next record, waiting as long as it takes; [`Error::Closed`] once
    /// the consumer is closed. Cancel safe, like [`poll`](Self::poll).
    pub async fn recv(&self) -> Result<ConsumerRecord, Error> {
        self.wait(Self::recv_wait()).await
    }

    /// The records as a stream, one at a time, each as
    /// [`recv`](Self::recv) returns it; the stream ends after the consumer
    /// closes. Cancel safe, like `recv`.
    ///
    /// ```no_run
    /// # use odradek_client::{AsyncRuntime, Consumer};
    /// use futures_lite::StreamExt;
    /// # async fn f<R: AsyncRuntime>(consumer: &Consumer<R>) -> Result<(), odradek_core::Error> {
    /// // consumer: &odradek_tokio::Consumer (or odradek_async_std's)
    /// let mut records = consumer.stream();
    /// while let Some(record) = records.next().await {
    ///     let record = record?;
    ///     println!("{}@{}", record.partition(), record.offset());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&self) -> RecordStream<'_, R> {
        RecordStream {
            consumer: self,
            pending: None,
            done: false,
        }
    }

    /// The offset of the next record `poll` returns for `partition`,
    /// waiting up to `default.api.timeout.ms` for it to be resolved.
    pub async fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        self.wait(self.position_wait(partition)).await
    }

    /// The first offset of each partition.
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.beginning_offsets(partitions, timeout, now)
        };
        self.wait(self.query_wait(partitions.to_vec(), start, offsets_only)?)
            .await
    }

    /// The end offset of each partition (the last stable offset with
    /// read_committed).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.end_offsets(partitions, timeout, now)
        };
        self.wait(self.query_wait(partitions.to_vec(), start, offsets_only)?)
            .await
    }

    /// Per partition, the first offset with a timestamp at or after the
    /// given one, or `None` if there is none.
    pub async fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, Error> {
        let timestamps: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        let partitions = timestamps.iter().map(|(tp, _)| tp.clone()).collect();
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.offsets_for_times(timestamps, timeout, now)
        };
        self.wait(self.query_wait(partitions, start, std::convert::identity)?)
            .await
    }

    /// Commits the positions of every assigned partition (the records
    /// returned so far) and waits for the coordinator to accept them.
    pub async fn commit(&self) -> Result<(), Error> {
        self.wait(self.commit_wait(None)?).await
    }

    /// Commits exactly `offsets` (with their metadata) and waits.
    pub async fn commit_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.wait(self.commit_wait(Some(offsets))?).await
    }

    /// The group's committed offsets for `partitions` (`None` where there
    /// is none).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, Error> {
        self.wait(self.committed_wait(partitions)?).await
    }

    /// Closes the consumer: a group member commits (with auto-commit),
    /// hears of the revocation and leaves; then connections close and
    /// pending calls fail with [`Error::Closed`]. Returns within about 5 s
    /// whatever the brokers do ([`CloseOptions::new`]).
    pub async fn close(&self) -> Result<(), Error> {
        self.close_with(CloseOptions::new()).await
    }

    /// Closes with `options`: a caller's timeout (Java's
    /// `close(Duration)`), or no final commit (kafka-python's
    /// `close(autocommit=False)`). Returns within the timeout plus a
    /// second to close the connections.
    ///
    /// ```no_run
    /// # use odradek_client::{AsyncRuntime, Consumer};
    /// # async fn f<R: AsyncRuntime>(consumer: &Consumer<R>) -> Result<(), odradek_core::Error> {
    /// use std::time::Duration;
    /// use odradek_core::CloseOptions;
    /// // consumer: &odradek_tokio::Consumer (or odradek_async_std's)
    /// let options = CloseOptions::new()
    ///     .timeout(Duration::from_secs(1))
    ///     .without_commit();
    /// consumer.close_with(options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn close_with(&self, options: CloseOptions) -> Result<(), Error> {
        self.wait(self.close_wait(options)).await
    }
}

impl<R: Runtime> Consumer<R, Blocking> {
    fn wait<T, C>(&self, wait: Wait<T, C>) -> Result<T, Error>
    where
        C: Check<T>,
    {
        self.shared.wait_blocking(&self.runtime, wait)
    }

    /// Returns buffered records (at most `max.poll.records`) as soon as any
    /// are available, or an empty set when `timeout` passes.
    pub fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.wait(Self::poll_wait(timeout, usize::MAX))
    }

    /// Like [`poll`](Self::poll), returning at most `max_records` records
    /// (kafka-python's `poll(max_records=…)`; capped at
    /// `max.poll.records`).
    ///
    /// ```no_run
    /// # use odradek_client::{Blocking, Consumer, Runtime};
    /// # fn f<R: Runtime>(consumer: &Consumer<R, Blocking>) -> Result<(), odradek_core::Error> {
    /// use std::time::Duration;
    /// // consumer: &odradek_blocking::Consumer
    /// let batch = consumer.poll_max(Duration::from_secs(1), 10)?;
    /// assert!(batch.len() <= 10);
    /// # Ok(()) }
    /// ```
    pub fn poll_max(
        &self,
        timeout: Duration,
        max_records: usize,
    ) -> Result<ConsumerRecords, Error> {
        self.wait(Self::poll_wait(timeout, max_records))
    }

    /// The next record, waiting as long as it takes; [`Error::Closed`] once
    /// the consumer is closed.
    pub fn recv(&self) -> Result<ConsumerRecord, Error> {
        self.wait(Self::recv_wait())
    }

    /// The records one at a time, each as [`recv`](Self::recv) returns it;
    /// the iterator ends after yielding [`Error::Closed`].
    ///
    /// ```no_run
    /// # use odradek_client::{Blocking, Consumer, Runtime};
    /// # fn f<R: Runtime>(consumer: &Consumer<R, Blocking>) -> Result<(), odradek_core::Error> {
    /// // consumer: &odradek_blocking::Consumer
    /// for record in consumer.iter() {
    ///     let record = record?;
    ///     println!("{}@{}", record.partition(), record.offset());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> Iter<'_, R> {
        Iter {
            consumer: self,
            done: false,
        }
    }

    /// The offset of the next record `poll` returns for `partition`,
    /// waiting up to `default.api.timeout.ms` for it to be resolved.
    pub fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        self.wait(self.position_wait(partition))
    }

    /// The first offset of each partition.
    pub fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.beginning_offsets(partitions, timeout, now)
        };
        self.wait(self.query_wait(partitions.to_vec(), start, offsets_only)?)
    }

    /// The end offset of each partition (the last stable offset with
    /// read_committed).
    pub fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.end_offsets(partitions, timeout, now)
        };
        self.wait(self.query_wait(partitions.to_vec(), start, offsets_only)?)
    }

    /// Per partition, the first offset with a timestamp at or after the
    /// given one, or `None` if there is none.
    pub fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, Error> {
        let timestamps: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        let partitions = timestamps.iter().map(|(tp, _)| tp.clone()).collect();
        let start = |core: &mut odradek_core::Consumer, timeout, now| {
            core.offsets_for_times(timestamps, timeout, now)
        };
        self.wait(self.query_wait(partitions, start, std::convert::identity)?)
    }

    /// Commits the positions of every assigned partition (the records
    /// returned so far) and waits for the coordinator to accept them.
    pub fn commit(&self) -> Result<(), Error> {
        self.wait(self.commit_wait(None)?)
    }

    /// Commits exactly `offsets` (with their metadata) and waits.
    pub fn commit_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.wait(self.commit_wait(Some(offsets))?)
    }

    /// The group's committed offsets for `partitions` (`None` where there
    /// is none).
    pub fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, Error> {
        self.wait(self.committed_wait(partitions)?)
    }

    /// Closes the consumer: a group member commits (with auto-commit),
    /// hears of the revocation and leaves; then connections close and
    /// pending calls fail with [`Error::Closed`]. Returns within about 5 s
    /// whatever the brokers do ([`CloseOptions::new`]).
    pub fn close(&self) -> Result<(), Error> {
        self.close_with(CloseOptions::new())
    }

    /// Closes with `options`: a caller's timeout (Java's
    /// `close(Duration)`), or no final commit (kafka-python's
    /// `close(autocommit=False)`). Returns within the timeout plus a
    /// second to close the connections.
    ///
    /// ```no_run
    /// # use odradek_client::{Blocking, Consumer, Runtime};
    /// # fn f<R: Runtime>(consumer: &Consumer<R, Blocking>) -> Result<(), odradek_core::Error> {
    /// use std::time::Duration;
    /// use odradek_core::CloseOptions;
    /// // consumer: &odradek_blocking::Consumer
    /// consumer.close_with(CloseOptions::new().timeout(Duration::from_secs(10)))?;
    /// # Ok(()) }
    /// ```
    pub fn close_with(&self, options: CloseOptions) -> Result<(), Error> {
        self.wait(self.close_wait(options))
    }
}

impl<R: Runtime, W: Waiting> std::fmt::Debug for Consumer<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime, W: Waiting> FromConfig for Consumer<R, W> {
    type Error = Error;

    fn from_config(config: ConsumerConfig) -> Result<Self, Error> {
        Self::new(config)
    }
}

impl<R: Runtime, W: Waiting> FromBuilder for Consumer<R, W> {
    fn from_builder(config: ConsumerConfig, parts: BuilderParts) -> Result<Self, Error> {
        Self::with_parts(config, parts)
    }
}

impl<R: Runtime, W: Waiting> Drop for Consumer<R, W> {
    fn drop(&mut self) {
        // Never blocks: the driver closes the connections and exits.
        self.shared
            .lock()
            .close(CloseOptions::new(), self.runtime.now());
        self.shared.wake_driver();
    }
}

/// A `recv` call in progress.
type RecvFuture<'a> = Pin<Box<dyn Future<Output = Result<ConsumerRecord, Error>> + Send + 'a>>;

/// The consumer's records as a [`Stream`], one at a time; see
/// [`Consumer::stream`].
pub struct RecordStream<'a, R: AsyncRuntime> {
    consumer: &'a Consumer<R, Async>,
    pending: Option<RecvFuture<'a>>,
    done: bool,
}

impl<R: AsyncRuntime> std::fmt::Debug for RecordStream<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime> Stream for RecordStream<'_, R> {
    type Item = Result<ConsumerRecord, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let consumer = self.consumer;
        let future = self
            .pending
            .get_or_insert_with(|| Box::pin(consumer.recv()));
        match future.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.pending = None;
                self.done = ends(&result);
                Poll::Ready(Some(result))
            }
        }
    }
}

/// The consumer's records as an [`Iterator`], one at a time; see
/// [`Consumer::iter`].
pub struct Iter<'a, R: Runtime> {
    consumer: &'a Consumer<R, Blocking>,
    done: bool,
}

impl<R: Runtime> std::fmt::Debug for Iter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Iterator for Iter<'_, R> {
    type Item = Result<ConsumerRecord, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.consumer.recv();
        self.done = ends(&result);
        Some(result)
    }
}

impl<R: Runtime> std::iter::FusedIterator for Iter<'_, R> {}

/// A stream or iterator of records ends once the driver is gone: closed,
/// or stopped by a panic (reported once, as [`Error::Runtime`]).
fn ends(result: &Result<ConsumerRecord, Error>) -> bool {
    matches!(result, Err(Error::Closed | Error::Runtime(_)))
}
