//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a notification from the driver.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use odradek_core::{
    ConsumerBuilder, ConsumerConfig, ConsumerRecord, ConsumerRecords, Error, FromConfig,
    OffsetAndTimestamp, OffsetsResult, TopicPartition, offsets_only,
};

use crate::driver::{self, Shared, State};

/// How long `close` waits for the driver to finish closing connections
/// (the group's part takes at most `GROUP_CLOSE_TIMEOUT` of it).
const CLOSE_TIMEOUT: Duration =
    odradek_core::GROUP_CLOSE_TIMEOUT.saturating_add(Duration::from_secs(1));

/// A Kafka consumer driven by a tokio task.
///
/// Every method takes `&self`, so a consumer can be shared (for example in
/// an `Arc`) between a task that polls and one that seeks or pauses.
/// Dropping it closes it in the background; [`Consumer::close`] waits.
pub struct Consumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl FromConfig for Consumer {
    type Error = Error;

    fn from_config(config: ConsumerConfig) -> Result<Self, Error> {
        Consumer::new(config)
    }
}

impl Consumer {
    /// A typed builder: `Consumer::builder().bootstrap_servers("…").build()`.
    pub fn builder() -> ConsumerBuilder<Consumer> {
        ConsumerBuilder::new()
    }

    /// A consumer configured with Java/librdkafka property names.
    ///
    /// ```no_run
    /// # fn f() -> Result<(), odradek_tokio::Error> {
    /// let consumer = odradek_tokio::Consumer::from_properties([
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
        Consumer::new(ConsumerConfig::from_properties(properties)?)
    }

    /// A consumer with `config`. Must be called within a tokio runtime: it
    /// spawns the task that drives the consumer.
    pub fn new(mut config: ConsumerConfig) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgument(
                "odradek-tokio consumers must be created inside a tokio runtime".into(),
            )
        })?;
        if config.random_seed.is_none() {
            config.random_seed = Some(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            );
        }
        let core = odradek_core::Consumer::new(config, Instant::now())?;
        let listener_thread = driver::ListenerThread::default();
        let mut session = State::new(core);
        session.set_listener_scope(listener_thread.scope());
        let shared = Arc::new(Shared {
            state: Mutex::new(session),
            changed: tokio::sync::Notify::new(),
            wake_driver: tokio::sync::Notify::new(),
            listener_thread,
        });
        runtime.spawn(driver::run(shared.clone()));
        Ok(Consumer { shared })
    }

    /// Runs a command on the core, then lets the driver act on its outputs.
    fn command<T>(&self, f: impl FnOnce(&mut odradek_core::Consumer, Instant) -> T) -> T {
        let result = f(&mut self.shared.lock().core, Instant::now());
        self.shared.wake_driver.notify_one();
        result
    }

    /// Runs a command on the whole session (core, listener, callbacks).
    fn with_session<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let result = f(&mut self.shared.lock(), Instant::now());
        self.shared.wake_driver.notify_one();
        result
    }

    /// Waits until `check` returns `Some`, or `timeout` passes (`None`).
    /// `check` runs under the lock and must finish the job in that one step,
    /// which is what makes the waiting calls cancel safe.
    async fn wait<T>(
        &self,
        timeout: Option<Duration>,
        mut check: impl FnMut(&mut State, Instant) -> Option<Result<T, Error>>,
    ) -> Option<Result<T, Error>> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let outcome = {
                let mut state = self.shared.lock();
                let outcome = check(&mut state, Instant::now());
                match outcome {
                    None if state.is_finished() => Some(Err(Error::Closed)),
                    outcome => outcome,
                }
            };
            self.shared.wake_driver.notify_one();
            if outcome.is_some() {
                return outcome;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return None;
                    }
                }
                None => notified.await,
            }
        }
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

    /// Returns buffered records (at most `max.poll.records`) as soon as any
    /// are available, or an empty set when `timeout` passes. Cancel safe.
    pub async fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.wait(Some(timeout), |state, now| {
            match state.poll_records(usize::MAX, now) {
                Ok(records) if records.is_empty() => None,
                other => Some(other),
            }
        })
        .await
        .unwrap_or_else(|| Ok(ConsumerRecords::default()))
    }

    /// The next record, waiting as long as it takes. Cancel safe.
    pub async fn recv(&self) -> Result<ConsumerRecord, Error> {
        self.wait(None, |state, now| match state.poll_records(1, now) {
            Ok(records) => records.into_iter().next().map(Ok),
            Err(e) => Some(Err(e)),
        })
        .await
        .unwrap_or(Err(Error::Closed))
    }

    /// The records as a stream (ends after the consumer closes).
    pub fn stream(&self) -> RecordStream<'_> {
        RecordStream {
            consumer: self,
            pending: None,
            done: false,
        }
    }

    /// Makes `offset` the next record returned for `partition`, dropping
    /// anything fetched from before.
    pub fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.command(|core, now| core.seek(partition, offset, now))
    }

    /// Moves the partitions to the start of their logs.
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.seek_to_beginning(partitions, now))
    }

    /// Moves the partitions to the end of their logs.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.command(|core, now| core.seek_to_end(partitions, now))
    }

    /// The offset of the next record `poll` returns for `partition`,
    /// waiting up to `default.api.timeout.ms` for it to be resolved.
    pub async fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        let timeout = self.shared.lock().core.config().default_api_timeout;
        self.wait(Some(timeout), |state, now| {
            state.core.position(partition, now).transpose()
        })
        .await
        .unwrap_or_else(|| {
            Err(Error::Timeout(format!(
                "position of {partition} not resolved"
            )))
        })
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

    async fn query(
        &self,
        start: impl FnOnce(
            &mut odradek_core::Consumer,
            Duration,
            Instant,
        ) -> Result<odradek_core::QueryId, Error>,
    ) -> OffsetsResult {
        let timeout = self.shared.lock().core.config().default_api_timeout;
        let id = self.command(|core, now| start(core, timeout, now))?;
        // The core enforces the timeout and reports it as the result; the
        // margin only guards against a driver that stopped.
        self.wait(Some(timeout + Duration::from_secs(1)), |state, _| {
            state.take_query_result(id)
        })
        .await
        .unwrap_or_else(|| Err(Error::Timeout("offsets query".into())))
    }

    /// The first offset of each partition.
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let found = self
            .query(|core, timeout, now| core.beginning_offsets(partitions, timeout, now))
            .await?;
        Ok(offsets_only(found))
    }

    /// The end offset of each partition (the last stable offset with
    /// read_committed).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let found = self
            .query(|core, timeout, now| core.end_offsets(partitions, timeout, now))
            .await?;
        Ok(offsets_only(found))
    }

    /// Per partition, the first offset with a timestamp at or after the
    /// given one, or `None` if there is none.
    pub async fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, Error> {
        let timestamps: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        self.query(|core, timeout, now| core.offsets_for_times(timestamps, timeout, now))
            .await
    }

    odradek_core::group_api!(async, await; "task");
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Never blocks: the driver closes the connections and exits.
        self.shared.lock().close(Instant::now());
        self.shared.wake_driver.notify_one();
    }
}

/// Forgets a commit's outcome if the waiting call is dropped first.
struct ForgetCommit<'a>(&'a Shared, odradek_core::CommitId);

impl Drop for ForgetCommit<'_> {
    fn drop(&mut self) {
        self.0.lock().forget_commit(self.1);
    }
}

/// A `recv` call in progress.
type RecvFuture<'a> = Pin<Box<dyn Future<Output = Result<ConsumerRecord, Error>> + Send + 'a>>;

/// The consumer's records as a [`Stream`], one at a time.
pub struct RecordStream<'a> {
    consumer: &'a Consumer,
    pending: Option<RecvFuture<'a>>,
    done: bool,
}

impl std::fmt::Debug for RecordStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for RecordStream<'_> {
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
                if matches!(result, Err(Error::Closed)) {
                    self.done = true;
                }
                Poll::Ready(Some(result))
            }
        }
    }
}
