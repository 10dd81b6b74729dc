//! The consumer's error type: one variant per kind of failure, each with the
//! data a caller needs to act on it.

use crate::config::ConfigError;
use crate::protocol::{ApiKey, ErrorCode, UnsupportedVersion};
use crate::records::RecordsError;
use crate::types::{BrokerAddress, TopicPartition};

/// Everything the consumer can fail with.
///
/// Fatal errors are sticky: once the consumer reports
/// [`Error::UnsupportedBroker`], every later call reports it again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A broker lacks an API the consumer needs, at every version Odradek
    /// implements.
    #[error("broker {broker} cannot serve this consumer: {source}")]
    UnsupportedBroker {
        /// The broker.
        broker: BrokerAddress,
        /// The API and both version ranges.
        source: UnsupportedVersion,
    },
    /// Fetch positions fell outside the partitions' logs and
    /// `auto.offset.reset` is `none`.
    #[error("offsets out of range and auto.offset.reset is none: {}", list_offsets(.partitions))]
    OffsetOutOfRange {
        /// Each partition with the offset that was out of range.
        partitions: Vec<(TopicPartition, i64)>,
    },
    /// Partitions have no position and `auto.offset.reset` is `none`.
    #[error("no offset for {} and auto.offset.reset is none", list(.partitions))]
    NoOffsetForPartition {
        /// The partitions without a position.
        partitions: Vec<TopicPartition>,
    },
    /// A fetched record batch could not be decoded; the position stays at
    /// `offset`, so the same error repeats until the application seeks past it.
    #[error("corrupt record batch in {partition} at offset {offset}: {source}")]
    CorruptRecord {
        /// The partition.
        partition: TopicPartition,
        /// The position where reading stopped.
        offset: i64,
        /// What was wrong with the batch.
        source: RecordsError,
    },
    /// The log was truncated below the position (after an unclean leader
    /// election) and `auto.offset.reset` is `none`.
    #[error("log truncation in {partition}: position {offset}, the log now ends at {end_offset}")]
    LogTruncation {
        /// The partition.
        partition: TopicPartition,
        /// The position the consumer had.
        offset: i64,
        /// The end of the log's matching epoch on the new leader.
        end_offset: i64,
    },
    /// A broker refused a request for a partition with a non-retriable error
    /// (e.g. `TOPIC_AUTHORIZATION_FAILED`).
    #[error("{api} for {partition} failed: {code}")]
    Partition {
        /// The request.
        api: ApiKey,
        /// The partition.
        partition: TopicPartition,
        /// The broker's error code.
        code: ErrorCode,
    },
    /// An argument was invalid (unassigned partition, negative offset, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An operation did not finish within its timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
    /// A commit could not be made because the group is rebalancing; it can
    /// be retried once the rebalance is over (after the next `poll`).
    #[error("commit refused: the group is rebalancing")]
    RebalanceInProgress,
    /// A commit failed for good: the member's generation moved on (its
    /// partitions may belong to another member now), or the commit ran out
    /// of time or retries.
    #[error("commit failed: {reason}")]
    CommitFailed {
        /// What happened.
        reason: String,
    },
    /// Another member with the same `group.instance.id` joined the group:
    /// this consumer is fenced and cannot continue.
    #[error("fenced: another consumer joined with group.instance.id `{instance_id}`")]
    FencedInstanceId {
        /// The static member id.
        instance_id: String,
    },
    /// The group coordinator refused a request with a non-retriable error
    /// (authorization, an invalid session timeout, an inconsistent
    /// protocol, a full group, ...).
    #[error("group `{group}`: {api} failed: {code}")]
    Group {
        /// The group id.
        group: String,
        /// The request.
        api: ApiKey,
        /// The coordinator's error code.
        code: ErrorCode,
    },
    /// The operation needs a consumer group (`group.id`, or `subscribe`).
    #[error("{0} needs a consumer group (set group.id)")]
    NoGroup(&'static str),
    /// The adapter could not get a resource from its runtime (a thread, a
    /// task): the consumer cannot run.
    #[error("runtime failure: {0}")]
    Runtime(String),
}

fn list(partitions: &[TopicPartition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_offsets(partitions: &[(TopicPartition, i64)]) -> String {
    partitions
        .iter()
        .map(|(tp, offset)| format!("{tp} at {offset}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// True for errors after which the consumer cannot continue: exactly
    /// the errors that are sticky, returned again by every later call.
    /// A JoinGroup or SyncGroup refusal ends the membership for good;
    /// other [`Error::Group`] errors are reported once.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::UnsupportedBroker { .. }
                | Error::Config(_)
                | Error::Closed
                | Error::FencedInstanceId { .. }
                | Error::Group {
                    api: ApiKey::JoinGroup | ApiKey::SyncGroup,
                    ..
                }
        )
    }
}
