//! The rebalance listener: the application's hook into rebalances, called
//! by the client layer at a safe point (inside the application's poll).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::consumer::{CommitId, Consumer};
use crate::error::{CommitFailure, Error};
use crate::group::RebalanceEvent;
use crate::types::{OffsetAndMetadata, TopicPartition};

/// Reacts to partitions being assigned, revoked or lost.
///
/// The callbacks run on the application's poll (never on a background
/// thread), one at a time, before any record of a newly assigned partition
/// is returned. The consumer does not go on with the rebalance until the
/// callback returns, and commits made through the [`RebalanceContext`] in
/// [`on_partitions_revoked`](Self::on_partitions_revoked) reach the
/// coordinator before the member rejoins: the partitions cannot move to
/// another member with those offsets uncommitted.
///
/// Use the context, not the consumer itself, from inside a callback: the
/// callbacks run while the client layer holds the consumer's lock, so it
/// panics (with directions) on such a call rather than deadlock.
pub trait RebalanceListener: Send {
    /// `partitions` were added to the assignment.
    fn on_partitions_assigned(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    );

    /// `partitions` are being taken away: commit their offsets now.
    fn on_partitions_revoked(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    );

    /// `partitions` were lost: they may already belong to another member,
    /// so nothing can be committed for them. By default this calls
    /// [`on_partitions_revoked`](Self::on_partitions_revoked) (commits made
    /// from it fail), as in the Java client.
    fn on_partitions_lost(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.on_partitions_revoked(context, partitions);
    }
}

/// A listener that does nothing: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopListener;

impl RebalanceListener for NoopListener {
    fn on_partitions_assigned(&mut self, _: &mut RebalanceContext<'_>, _: &[TopicPartition]) {}
    fn on_partitions_revoked(&mut self, _: &mut RebalanceContext<'_>, _: &[TopicPartition]) {}
}

/// What a listener may do to the consumer while handling a rebalance.
#[derive(Debug)]
pub struct RebalanceContext<'a> {
    consumer: &'a mut Consumer,
    now: Instant,
    lost: bool,
}

impl RebalanceContext<'_> {
    /// Commits the delivered positions of every partition, including those
    /// being revoked. The commit completes before the rebalance goes on;
    /// its failure is reported by the next poll.
    pub fn commit(&mut self) -> Result<CommitId, Error> {
        self.commit_offsets_inner(None)
    }

    /// Commits exactly `offsets`, like [`commit`](Self::commit).
    pub fn commit_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<CommitId, Error> {
        self.commit_offsets_inner(Some(offsets))
    }

    fn commit_offsets_inner(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<CommitId, Error> {
        if self.lost {
            return Err(Error::CommitFailed {
                reason: CommitFailure::PartitionsLost,
            });
        }
        let timeout = self.consumer.config().default_api_timeout;
        self.consumer
            .commit_from_listener(offsets, timeout, self.now)
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer.assignment()
    }

    /// Starts `partition` at `offset` instead of its committed offset.
    pub fn seek(&mut self, partition: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.consumer.seek(partition, offset, self.now)
    }

    /// Pauses fetching of `partitions`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer.pause(partitions, self.now)
    }
}

/// Hands every pending rebalance event to `listener`, then lets the
/// consumer go on. The client layer calls this around each poll.
pub fn dispatch_rebalance(
    consumer: &mut Consumer,
    listener: &mut dyn RebalanceListener,
    now: Instant,
) {
    let mut any = false;
    while let Some(event) = consumer.poll_rebalance() {
        any = true;
        let lost = matches!(event, RebalanceEvent::Lost(_));
        let mut context = RebalanceContext {
            consumer: &mut *consumer,
            now,
            lost,
        };
        match &event {
            RebalanceEvent::Assigned(p) => listener.on_partitions_assigned(&mut context, p),
            RebalanceEvent::Revoked(p) => listener.on_partitions_revoked(&mut context, p),
            RebalanceEvent::Lost(p) => listener.on_partitions_lost(&mut context, p),
        }
    }
    if any {
        consumer.ack_rebalance(now);
    }
}
