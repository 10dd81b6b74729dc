//! The methods every adapter's `Consumer` offers, written once. Each is a
//! thin call into the [`Session`](crate::Session) under the adapter's lock,
//! or a wait on it; only whether the waiting ones are `async` differs
//! between adapters.

/// Generates the methods of an adapter's `Consumer` inside its `impl`
/// block: `consumer_api!("odradek_tokio"; async, await; "task", " Cancel
/// safe.")` for an async adapter, `consumer_api!("odradek_blocking";;
/// "thread", "")` for a blocking one. The crate name is for the doc
/// examples, the next string says where commit callbacks run, and the last
/// is appended to the docs of the waiting reads.
///
/// The `Consumer` must have `new(config)`, `shared` (whose `lock()` derefs
/// to a [`Session`](crate::Session) and which has `wake_driver()` and
/// `now()`, the adapter's clock: core reads none) and
/// `wait(limit, |session, now| ..)` (async or not); [`consumer_impls!`]
/// provides the rest.
#[doc(hidden)]
#[macro_export]
macro_rules! consumer_api {
    ($krate:literal; $($async:ident, $await:ident)?; $callbacks_run_on:literal, $waiting_note:literal) => {
        /// A typed builder: `Consumer::builder().bootstrap_servers("…").build()`.
        pub fn builder() -> $crate::ConsumerBuilder<Consumer> {
            $crate::ConsumerBuilder::new()
        }

        /// A consumer configured with Java/librdkafka property names.
        ///
        /// ```no_run
        #[doc = concat!("# fn f() -> Result<(), ", $krate, "::Error> {")]
        #[doc = concat!("let consumer = ", $krate, "::Consumer::from_properties([")]
        ///     ("bootstrap.servers", "localhost:9092"),
        ///     ("auto.offset.reset", "earliest"),
        /// ])?;
        /// # Ok(()) }
        /// ```
        pub fn from_properties<I, K, V>(properties: I) -> Result<Self, $crate::Error>
        where
            I: IntoIterator<Item = (K, V)>,
            K: AsRef<str>,
            V: AsRef<str>,
        {
            Consumer::new($crate::ConsumerConfig::from_properties(properties)?)
        }

        /// Runs a command on the core, then lets the driver act on its outputs.
        fn command<T>(&self, f: impl FnOnce(&mut $crate::Consumer, std::time::Instant) -> T) -> T {
            let result = f(&mut self.shared.lock().core, self.shared.now());
            self.shared.wake_driver();
            result
        }

        /// Runs a command on the whole session (core, listener, callbacks).
        fn with_session<T>(
            &self,
            f: impl FnOnce(&mut $crate::Session, std::time::Instant) -> T,
        ) -> T {
            let result = f(&mut self.shared.lock(), self.shared.now());
            self.shared.wake_driver();
            result
        }

        /// Replaces the assignment (manual assignment, no consumer group).
        pub fn assign(
            &self,
            partitions: impl IntoIterator<Item = $crate::TopicPartition>,
        ) -> Result<(), $crate::Error> {
            self.command(|core, now| core.assign(partitions, now))
        }

        /// The assigned partitions.
        pub fn assignment(&self) -> Vec<$crate::TopicPartition> {
            self.shared.lock().core.assignment()
        }

        #[doc = concat!(
            "Returns buffered records (at most `max.poll.records`) as soon as any\n",
            "are available, or an empty set when `timeout` passes.", $waiting_note
        )]
        pub $($async)? fn poll(&self, timeout: std::time::Duration) -> Result<$crate::ConsumerRecords, $crate::Error> {
            self.wait(Some(timeout), |state, now| {
                match state.take_records(usize::MAX, now) {
                    Ok(records) if records.is_empty() => None,
                    other => Some(other),
                }
            })
            $(.$await)?
            .unwrap_or_else(|| Ok($crate::ConsumerRecords::default()))
        }

        #[doc = concat!("The next record, waiting as long as it takes.", $waiting_note)]
        pub $($async)? fn recv(&self) -> Result<$crate::ConsumerRecord, $crate::Error> {
            self.wait(None, |state, now| match state.take_records(1, now) {
                Ok(records) => records.into_iter().next().map(Ok),
                Err(e) => Some(Err(e)),
            })
            $(.$await)?
            .unwrap_or(Err($crate::Error::Closed))
        }

        /// Makes `offset` the next record returned for `partition`, dropping
        /// anything fetched from before.
        pub fn seek(&self, partition: &$crate::TopicPartition, offset: i64) -> Result<(), $crate::Error> {
            self.command(|core, now| core.seek(partition, offset, now))
        }

        /// Moves the partitions to the start of their logs.
        pub fn seek_to_beginning(&self, partitions: &[$crate::TopicPartition]) -> Result<(), $crate::Error> {
            self.command(|core, now| core.seek_to_beginning(partitions, now))
        }

        /// Moves the partitions to the end of their logs.
        pub fn seek_to_end(&self, partitions: &[$crate::TopicPartition]) -> Result<(), $crate::Error> {
            self.command(|core, now| core.seek_to_end(partitions, now))
        }

        /// The offset of the next record `poll` returns for `partition`,
        /// waiting up to `default.api.timeout.ms` for it to be resolved.
        pub $($async)? fn position(&self, partition: &$crate::TopicPartition) -> Result<i64, $crate::Error> {
            let timeout = self.shared.lock().core.config().default_api_timeout;
            self.wait(Some(timeout), |state, now| {
                state.core.position(partition, now).transpose()
            })
            $(.$await)?
            .unwrap_or_else(|| {
                Err($crate::Error::Timeout(format!(
                    "position of {partition} not resolved"
                )))
            })
        }

        /// Stops fetching the partitions (their buffered records are dropped).
        pub fn pause(&self, partitions: &[$crate::TopicPartition]) -> Result<(), $crate::Error> {
            self.command(|core, now| core.pause(partitions, now))
        }

        /// Resumes fetching the partitions.
        pub fn resume(&self, partitions: &[$crate::TopicPartition]) -> Result<(), $crate::Error> {
            self.command(|core, now| core.resume(partitions, now))
        }

        /// The paused partitions.
        pub fn paused(&self) -> Vec<$crate::TopicPartition> {
            self.shared.lock().core.paused()
        }

        $($async)? fn query(
            &self,
            start: impl FnOnce(
                &mut $crate::Consumer,
                std::time::Duration,
                std::time::Instant,
            ) -> Result<$crate::QueryId, $crate::Error>,
        ) -> $crate::OffsetsResult {
            let timeout = self.shared.lock().core.config().default_api_timeout;
            let id = self.command(|core, now| start(core, timeout, now))?;
            // The core enforces the timeout and reports it as the result; the
            // margin only guards against a driver that stopped.
            self.wait(Some(timeout + std::time::Duration::from_secs(1)), |state, _| {
                state.take_query_result(id)
            })
            $(.$await)?
            .unwrap_or_else(|| Err($crate::Error::Timeout("offsets query".into())))
        }

        /// The first offset of each partition.
        pub $($async)? fn beginning_offsets(
            &self,
            partitions: &[$crate::TopicPartition],
        ) -> Result<std::collections::BTreeMap<$crate::TopicPartition, i64>, $crate::Error> {
            let found = self
                .query(|core, timeout, now| core.beginning_offsets(partitions, timeout, now))
                $(.$await)??;
            Ok($crate::offsets_only(found))
        }

        /// The end offset of each partition (the last stable offset with
        /// read_committed).
        pub $($async)? fn end_offsets(
            &self,
            partitions: &[$crate::TopicPartition],
        ) -> Result<std::collections::BTreeMap<$crate::TopicPartition, i64>, $crate::Error> {
            let found = self
                .query(|core, timeout, now| core.end_offsets(partitions, timeout, now))
                $(.$await)??;
            Ok($crate::offsets_only(found))
        }

        /// Per partition, the first offset with a timestamp at or after the
        /// given one, or `None` if there is none.
        pub $($async)? fn offsets_for_times(
            &self,
            timestamps: impl IntoIterator<Item = ($crate::TopicPartition, i64)>,
        ) -> Result<
                std::collections::BTreeMap<$crate::TopicPartition, Option<$crate::OffsetAndTimestamp>>,
                $crate::Error,
            > {
            let timestamps: Vec<($crate::TopicPartition, i64)> = timestamps.into_iter().collect();
            self.query(|core, timeout, now| core.offsets_for_times(timestamps, timeout, now))
                $(.$await)?
        }

        /// Joins the consumer group (`group.id`) for `topics`, replacing any
        /// earlier subscription (and listener). Partitions are assigned during
        /// `poll`.
        pub fn subscribe<I, S>(&self, topics: I) -> Result<(), $crate::Error>
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.with_session(|session, now| session.subscribe(topics, None, now))
        }

        /// Like [`subscribe`](Self::subscribe), with a listener that hears of
        /// assigned, revoked and lost partitions (called inside `poll`).
        pub fn subscribe_with_listener<I, S>(
            &self,
            topics: I,
            listener: impl $crate::RebalanceListener + 'static,
        ) -> Result<(), $crate::Error>
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.with_session(|session, now| {
                session.subscribe(topics, Some(Box::new(listener)), now)
            })
        }

        /// Joins the consumer group for every topic whose whole name matches
        /// the regular expression `pattern`, re-evaluated at each metadata
        /// refresh (`metadata.max.age.ms`), so new matching topics are picked
        /// up. An invalid pattern is an [`Error::InvalidArgument`]($crate::Error::InvalidArgument).
        pub fn subscribe_pattern(&self, pattern: &str) -> Result<(), $crate::Error> {
            self.with_session(|session, now| session.subscribe_pattern(pattern, None, now))
        }

        /// Like [`subscribe_pattern`](Self::subscribe_pattern), with a listener.
        pub fn subscribe_pattern_with_listener(
            &self,
            pattern: &str,
            listener: impl $crate::RebalanceListener + 'static,
        ) -> Result<(), $crate::Error> {
            self.with_session(|session, now| {
                session.subscribe_pattern(pattern, Some(Box::new(listener)), now)
            })
        }

        /// Leaves the group: the listener hears of the revocation (after an
        /// auto-commit), LeaveGroup is sent and the assignment is cleared.
        pub fn unsubscribe(&self) -> Result<(), $crate::Error> {
            self.with_session(|session, now| session.unsubscribe(now))
        }

        /// The subscribed topics (for a pattern, the topics it matches now).
        pub fn subscription(&self) -> Vec<String> {
            self.shared.lock().core.subscription()
        }

        /// Who this consumer is in its group (generation, member id, whether
        /// it leads), or `None` without a `group.id`.
        pub fn group_metadata(&self) -> Option<$crate::GroupMetadata> {
            self.shared.lock().core.group_metadata()
        }

        /// Commits the positions of every assigned partition (the records
        /// returned so far) and waits for the coordinator to accept them.
        pub $($async)? fn commit(&self) -> Result<(), $crate::Error> {
            self.commit_and_wait(None)$(.$await)?
        }

        /// Commits exactly `offsets` (with their metadata) and waits.
        pub $($async)? fn commit_offsets(
            &self,
            offsets: std::collections::BTreeMap<$crate::TopicPartition, $crate::OffsetAndMetadata>,
        ) -> Result<(), $crate::Error> {
            self.commit_and_wait(Some(offsets))$(.$await)?
        }

        $($async)? fn commit_and_wait(
            &self,
            offsets: Option<
                std::collections::BTreeMap<$crate::TopicPartition, $crate::OffsetAndMetadata>,
            >,
        ) -> Result<(), $crate::Error> {
            let (id, limit) =
                self.with_session(|session, now| session.start_commit(offsets, now))?;
            let _forget = ForgetCommit(&self.shared, id);
            self.wait(Some(limit), |state, _| state.take_commit_result(id))$(.$await)?
                .unwrap_or_else(|| Err($crate::Error::Timeout("commit".into())))
        }

        #[doc = concat!(
            "Commits the delivered positions without waiting; `callback` gets the\n",
            "outcome (on the driver ", $callbacks_run_on, ": keep it short)."
        )]
        pub fn commit_async(
            &self,
            callback: impl FnOnce(Result<(), $crate::Error>) + Send + 'static,
        ) -> Result<(), $crate::Error> {
            self.with_session(|session, now| session.commit_async(None, Box::new(callback), now))
        }

        /// Commits exactly `offsets` without waiting; `callback` gets the
        /// outcome, like [`commit_async`](Self::commit_async).
        pub fn commit_offsets_async(
            &self,
            offsets: std::collections::BTreeMap<$crate::TopicPartition, $crate::OffsetAndMetadata>,
            callback: impl FnOnce(Result<(), $crate::Error>) + Send + 'static,
        ) -> Result<(), $crate::Error> {
            self.with_session(|session, now| {
                session.commit_async(Some(offsets), Box::new(callback), now)
            })
        }

        /// The group's committed offsets for `partitions` (`None` where there
        /// is none).
        pub $($async)? fn committed(
            &self,
            partitions: &[$crate::TopicPartition],
        ) -> Result<
            std::collections::BTreeMap<$crate::TopicPartition, Option<$crate::OffsetAndMetadata>>,
            $crate::Error,
        > {
            let (id, limit) =
                self.with_session(|session, now| session.start_committed(partitions, now))?;
            self.wait(Some(limit), |state, _| state.take_committed_result(id))$(.$await)?
                .unwrap_or_else(|| Err($crate::Error::Timeout("committed offsets".into())))
        }

        /// Closes the consumer: a group member commits (with auto-commit),
        /// hears of the revocation and leaves; then connections close and
        /// pending calls fail with [`Error::Closed`]($crate::Error::Closed).
        /// Returns within a bounded time whatever the brokers do.
        pub $($async)? fn close(&self) -> Result<(), $crate::Error> {
            self.with_session(|session, now| session.close(now));
            let finished = self
                .wait(Some($crate::CLOSE_TIMEOUT), |state, _| {
                    state.is_finished().then_some(Ok(()))
                })$(.$await)?;
            match finished {
                Some(Ok(())) | Some(Err($crate::Error::Closed)) => Ok(()),
                Some(Err(e)) => Err(e),
                None => Err($crate::Error::Timeout(
                    "the consumer's driver did not stop".into(),
                )),
            }
        }
    };
}

/// The trait implementations and helpers every adapter's `Consumer` shares,
/// outside its `impl` block: `Debug`, `FromConfig`, a `Drop` that closes
/// in the background, and the `ForgetCommit` guard [`consumer_api!`] uses.
/// Needs `Shared` (with `lock()`, `wake_driver()` and `now()`) in scope.
#[doc(hidden)]
#[macro_export]
macro_rules! consumer_impls {
    () => {
        impl std::fmt::Debug for Consumer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Consumer")
                    .field("assignment", &self.assignment())
                    .finish_non_exhaustive()
            }
        }

        impl $crate::FromConfig for Consumer {
            type Error = $crate::Error;

            fn from_config(config: $crate::ConsumerConfig) -> Result<Self, $crate::Error> {
                Consumer::new(config)
            }
        }

        impl Drop for Consumer {
            fn drop(&mut self) {
                // Never blocks: the driver closes the connections and exits.
                self.shared.lock().close(self.shared.now());
                self.shared.wake_driver();
            }
        }

        /// Forgets a commit's outcome if the waiting call is dropped first.
        struct ForgetCommit<'a>(&'a Shared, $crate::CommitId);

        impl Drop for ForgetCommit<'_> {
            fn drop(&mut self) {
                self.0.lock().forget_commit(self.1);
            }
        }
    };
}

/// The records of an async adapter's `Consumer` as a stream:
/// `record_stream!(futures_core::Stream)`, naming the `Stream` trait as the
/// adapter's crate reaches it. Emits `Consumer::stream` and `RecordStream`.
#[doc(hidden)]
#[macro_export]
macro_rules! record_stream {
    ($stream:path) => {
        impl Consumer {
            /// The records as a stream (ends after the consumer closes).
            pub fn stream(&self) -> RecordStream<'_> {
                RecordStream {
                    consumer: self,
                    pending: None,
                    done: false,
                }
            }
        }

        /// A `recv` call in progress.
        type RecvFuture<'a> = std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<$crate::ConsumerRecord, $crate::Error>>
                    + Send
                    + 'a,
            >,
        >;

        /// The consumer's records as a stream, one at a time; see
        /// [`Consumer::stream`].
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

        impl $stream for RecordStream<'_> {
            type Item = Result<$crate::ConsumerRecord, $crate::Error>;

            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                use std::task::Poll;
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
                        if matches!(result, Err($crate::Error::Closed)) {
                            self.done = true;
                        }
                        Poll::Ready(Some(result))
                    }
                }
            }
        }
    };
}
