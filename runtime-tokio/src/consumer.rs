//! The user-facing consumer: commands go straight to the core under a
//! lock; waiting calls sleep on a notification from the driver.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use odradek_core::{ConsumerConfig, ConsumerRecord, Error};

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
        let listener_thread = driver::ListenerThread::default();
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

    /// The records as a stream (ends after the consumer closes).
    pub fn stream(&self) -> RecordStream<'_> {
        RecordStream {
            consumer: self,
            pending: None,
            done: false,
        }
    }

    odradek_core::consumer_api!("odradek_tokio"; async, await; "task", " Cancel safe.");
}

odradek_core::consumer_impls!();

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
