//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a notification from the driver.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use odradek_core::{ConsumerConfig, Error};

use crate::driver::{self, Shared, State};

/// A Kafka consumer driven by a tokio task.
///
/// Every method takes `&self`, so a consumer can be shared (for example in
/// an `Arc`) between a task that polls and one that seeks or pauses.
/// Dropping it closes it in the background; [`Consumer::close`] waits.
pub struct Consumer {
    shared: Arc<Shared>,
}

impl Consumer {
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
        let listener_thread = driver::listener_thread();
        let mut session = State::new(core);
        session.set_listener_scope(listener_thread.scope());
        let shared = Arc::new(Shared {
            state: Mutex::new(session),
            changed: tokio::sync::Notify::new(),
            driver_wakeup: tokio::sync::Notify::new(),
            listener_thread,
        });
        runtime.spawn(driver::run(shared.clone()));
        Ok(Consumer { shared })
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
            self.shared.wake_driver();
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

    odradek_core::consumer_api!("odradek_tokio"; async, await; "task", " Cancel safe.");
}

odradek_core::consumer_impls!();

odradek_core::record_stream!(futures_core::Stream);
