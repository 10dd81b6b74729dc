//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a condition variable the driver signals.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use odradek_core::{ConsumerConfig, ConsumerRecord, Error};

use crate::driver::{self, Shared, State};

/// A Kafka consumer driven by a background thread.
///
/// Every method takes `&self` and the consumer is `Send + Sync`, so it can
/// be shared (for example in an `Arc`) between a thread that polls and one
/// that seeks or pauses. Dropping it closes it in the background;
/// [`Consumer::close`] waits.
pub struct Consumer {
    shared: Arc<Shared>,
}

impl Consumer {
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

    odradek_core::consumer_api!("odradek_blocking"; ; "thread", "");
}

odradek_core::consumer_impls!();

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
