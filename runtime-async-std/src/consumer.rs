//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a notification from the driver.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use odradek_core::{ConsumerConfig, Error};

use crate::driver::{self, Shared, State};

/// A Kafka consumer driven by a background thread.
///
/// Its futures need no particular executor: they work under
/// `async_std::task::block_on`, `smol::block_on` or any other. Every method
/// takes `&self`, so a consumer can be shared (for example in an `Arc`)
/// between a task that polls and one that seeks or pauses. Dropping it
/// closes it in the background; [`Consumer::close`] waits.
pub struct Consumer {
    shared: Arc<Shared>,
}

impl Consumer {
    /// A consumer with `config`. Starts the thread that drives it, so it
    /// may be called from anywhere, inside an executor or not.
    pub fn new(mut config: ConsumerConfig) -> Result<Self, Error> {
        if config.random_seed.is_none() {
            config.random_seed = Some(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            );
        }
        let core = odradek_core::Consumer::new(config, Instant::now())?;
        let shared = Arc::new(Shared::new(core));
        // The core's errors have no kind for a local resource failure; this
        // is the closest (and as rare as running out of threads).
        driver::spawn(shared.clone())
            .map_err(|e| Error::Runtime(format!("could not start the consumer's thread: {e}")))?;
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
        // Created once, and never polled again once it fired.
        let mut timer = timeout.map(async_io::Timer::after);
        loop {
            // Listen before checking, so a change between the check and
            // the wait is not missed.
            let listener = self.shared.changed.listen();
            let outcome = {
                let mut state = self.shared.lock();
                let outcome = check(&mut state, Instant::now());
                match outcome {
                    None if state.is_finished() => Some(Err(Error::Closed)),
                    outcome => outcome,
                }
            };
            // `check` may have changed the core (taking records lets it
            // fetch more): the driver must drain it.
            self.shared.wake_driver();
            if outcome.is_some() {
                return outcome;
            }
            match &mut timer {
                Some(timer) => {
                    let notified = async {
                        listener.await;
                        true
                    };
                    let expired = async {
                        timer.await;
                        false
                    };
                    if !future::or(notified, expired).await {
                        return None;
                    }
                }
                None => listener.await,
            }
        }
    }

    odradek_core::consumer_api!("odradek_async_std"; async, await; "thread", " Cancel safe.");
}

odradek_core::consumer_impls!();

odradek_core::record_stream!(futures_lite::Stream);
