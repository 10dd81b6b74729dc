//! The consumer-group methods every adapter's `Consumer` offers, written
//! once. Each is a thin call into [`Session`](crate::Session); only whether
//! the waiting ones are `async` differs between adapters.

/// Generates the group methods of an adapter's `Consumer` inside its
/// `impl` block: `group_api!(async, await; "task")` for an async adapter,
/// `group_api!(; "thread")` for a blocking one (the string says where
/// commit callbacks run).
///
/// The `Consumer` must have `shared` (whose `lock()` derefs to a
/// [`Session`](crate::Session)), `with_session(|session, now| ..)`,
/// `wait(limit, |session, now| ..)` (async or not), a `CLOSE_TIMEOUT`
/// constant and a `ForgetCommit(&Shared, CommitId)` guard in scope.
#[doc(hidden)]
#[macro_export]
macro_rules! group_api {
    ($($async:ident, $await:ident)?; $callbacks_run_on:literal) => {
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
                .wait(Some(CLOSE_TIMEOUT), |state, _| {
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
