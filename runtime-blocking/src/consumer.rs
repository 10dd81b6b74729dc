//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a condition variable the driver signals.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use odradek_core::{
    ConsumerBuilder, ConsumerConfig, ConsumerRecord, ConsumerRecords, Error, FromConfig,
    OffsetAndTimestamp, OffsetsResult, TopicPartition, offsets_only,
};

use crate::driver::{self, Shared, State};

/// How long `close` waits for the driver to finish closing connections
/// (the group's part takes at most `GROUP_CLOSE_TIMEOUT` of it).
const CLOSE_TIMEOUT: Duration =
    odradek_core::GROUP_CLOSE_TIMEOUT.saturating_add(Duration::from_secs(1));

/// A Kafka consumer driven by a background thread.
///
/// Every method takes `&self` and the consumer is `Send + Sync`, so it can
/// be shared (for example in an `Arc`) between a thread that polls and one
/// that seeks or pauses. Dropping it closes it in the background;
/// [`Consumer::close`] waits.
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
    /// # fn f() -> Result<(), odradek_blocking::Error> {
    /// let consumer = odradek_blocking::Consumer::from_properties([
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

    /// A consumer with `config`. Starts the thread that drives it.
    ///
    /// Fails with [`Error::Runtime`] if the operating system cannot create
    /// the driver thread.
    pub fn new(mut config: ConsumerConfig) -> Result<Self, Error> {
        if config.random_seed.is_none() {
            config.random_seed = Some(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            );
        }
        let core = odradek_core::Consumer::new(config, Instant::now())?;
        Ok(Consumer {
            shared: driver::start(core)?,
        })
    }

    /// Runs a command on the core, then lets the driver act on its outputs.
    fn command<T>(&self, f: impl FnOnce(&mut odradek_core::Consumer, Instant) -> T) -> T {
        let result = f(&mut self.shared.lock().core, Instant::now());
        self.shared.wake_driver();
        result
    }

    /// Runs a command on the whole session (core, listener, callbacks).
    fn with_session<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let result = f(&mut self.shared.lock(), Instant::now());
        self.shared.wake_driver();
        result
    }

    /// Waits until `check` returns `Some`, or `timeout` passes (`None`).
    /// `check` runs under the lock, so no signal from the driver is missed
    /// between a check and the wait that follows it.
    fn wait<T>(
        &self,
        timeout: Option<Duration>,
        mut check: impl FnMut(&mut State, Instant) -> Option<Result<T, Error>>,
    ) -> Option<Result<T, Error>> {
        // A timeout too large to represent is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.shared.lock();
        loop {
            let outcome = match check(&mut state, Instant::now()) {
                None if state.is_finished() => Some(Err(Error::Closed)),
                outcome => outcome,
            };
            self.shared.wake_driver();
            if outcome.is_some() {
                return outcome;
            }
            let changed = &self.shared.changed;
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    let waited = changed.wait_timeout(state, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
                None => changed.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
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
    /// are available, or an empty set when `timeout` passes.
    pub fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.wait(Some(timeout), |state, now| {
            match state.poll_records(usize::MAX, now) {
                Ok(records) if records.is_empty() => None,
                other => Some(other),
            }
        })
        .unwrap_or_else(|| Ok(ConsumerRecords::default()))
    }

    /// The next record, waiting as long as it takes.
    pub fn recv(&self) -> Result<ConsumerRecord, Error> {
        self.wait(None, |state, now| match state.poll_records(1, now) {
            Ok(records) => records.into_iter().next().map(Ok),
            Err(e) => Some(Err(e)),
        })
        .unwrap_or(Err(Error::Closed))
    }

    /// The records one at a time, each as [`recv`](Self::recv) returns it;
    /// the iterator ends after yielding [`Error::Closed`].
    ///
    /// ```no_run
    /// # fn f(consumer: &odradek_blocking::Consumer) -> Result<(), odradek_blocking::Error> {
    /// for record in consumer.iter() {
    ///     let record = record?;
    ///     println!("{}@{}", record.partition(), record.offset());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            consumer: self,
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
    pub fn position(&self, partition: &TopicPartition) -> Result<i64, Error> {
        let timeout = self.shared.lock().core.config().default_api_timeout;
        self.wait(Some(timeout), |state, now| {
            state.core.position(partition, now).transpose()
        })
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

    fn query(
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
        .unwrap_or_else(|| Err(Error::Timeout("offsets query".into())))
    }

    /// The first offset of each partition.
    pub fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let found =
            self.query(|core, timeout, now| core.beginning_offsets(partitions, timeout, now))?;
        Ok(offsets_only(found))
    }

    /// The end offset of each partition (the last stable offset with
    /// read_committed).
    pub fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        let found = self.query(|core, timeout, now| core.end_offsets(partitions, timeout, now))?;
        Ok(offsets_only(found))
    }

    /// Per partition, the first offset with a timestamp at or after the
    /// given one, or `None` if there is none.
    pub fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, Error> {
        let timestamps: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        self.query(|core, timeout, now| core.offsets_for_times(timestamps, timeout, now))
    }

    odradek_core::group_api!(; "thread");
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Never blocks: the driver closes the connections and exits.
        self.shared.lock().close(Instant::now());
        self.shared.wake_driver();
    }
}

/// Forgets a commit's outcome if the waiting call is dropped first.
struct ForgetCommit<'a>(&'a Shared, odradek_core::CommitId);

impl Drop for ForgetCommit<'_> {
    fn drop(&mut self) {
        self.0.lock().forget_commit(self.1);
    }
}

/// The consumer's records as an [`Iterator`], one at a time; see
/// [`Consumer::iter`].
pub struct Iter<'a> {
    consumer: &'a Consumer,
    done: bool,
}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<ConsumerRecord, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.consumer.recv();
        if matches!(result, Err(Error::Closed)) {
            self.done = true;
        }
        Some(result)
    }
}

impl std::iter::FusedIterator for Iter<'_> {}
