//! [`ConsumerInterceptor`]: code that sees every poll's records before the
//! application does and every commit once it completes (Java's and
//! krafka's `ConsumerInterceptor`), for tracing, auditing or metrics of
//! your own. Set them on the builder
//! ([`ConsumerBuilder::interceptor`](crate::ConsumerBuilder::interceptor));
//! several run in the order added.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::types::{ConsumerRecords, OffsetAndMetadata, TopicPartition};

/// Sees records and commits on their way. Both methods do nothing by
/// default; implement the ones you need.
///
/// They run on the consumer's own paths (`on_consume` inside `poll`,
/// `on_commit` on the driver) while it holds its lock: keep them short,
/// and do not call the consumer from them (such a call panics with
/// directions rather than deadlocking). A panic in an interceptor is
/// caught: it is logged once, counted in the metrics
/// (`interceptor_panics_total`), and the records and commits go on as if
/// the interceptor had returned.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use odradek_core::{
///     ConsumerInterceptor, ConsumerRecords, Error, OffsetAndMetadata, TopicPartition,
/// };
///
/// #[derive(Default)]
/// struct Counting {
///     records: AtomicU64,
/// }
///
/// impl ConsumerInterceptor for Counting {
///     fn on_consume(&self, records: &ConsumerRecords) {
///         self.records.fetch_add(records.len() as u64, Ordering::Relaxed);
///     }
///     fn on_commit(
///         &self,
///         offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
///         result: &Result<(), Error>,
///     ) {
///         println!("committed {} partitions: {result:?}", offsets.len());
///     }
/// }
/// ```
pub trait ConsumerInterceptor: Send + Sync {
    /// A poll is about to return `records` (never called with none).
    fn on_consume(&self, records: &ConsumerRecords) {
        let _ = records;
    }

    /// A commit of `offsets` completed with `result`: the application's
    /// (`commit`, `commit_async`, from a rebalance listener) and
    /// auto-commits alike, in the order they were made.
    fn on_commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        result: &Result<(), Error>,
    ) {
        let _ = (offsets, result);
    }
}

/// Shared interceptors: keep an `Arc` to read what yours gathered.
impl<T: ConsumerInterceptor + ?Sized> ConsumerInterceptor for std::sync::Arc<T> {
    fn on_consume(&self, records: &ConsumerRecords) {
        (**self).on_consume(records);
    }

    fn on_commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        result: &Result<(), Error>,
    ) {
        (**self).on_commit(offsets, result);
    }
}
