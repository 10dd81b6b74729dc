//! The consumer's error type: one variant per kind of failure, each with the
//! data a caller needs to act on it.

use crate::config::ConfigError;
use crate::conn::{AuthFailure, TlsFailure};
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
    /// SASL authentication with a broker failed (a wrong password, an
    /// unknown user, a mechanism the broker does not offer, a broker that
    /// could not prove it knows the password). The consumer keeps
    /// retrying with backoff, reporting each failure once.
    #[error("SASL authentication with {broker} failed: {cause}")]
    Authentication {
        /// The broker.
        broker: BrokerAddress,
        /// What failed.
        cause: AuthFailure,
    },
    /// TLS with a broker failed (an untrusted, expired or misnamed
    /// certificate, a listener that does or does not speak TLS). The
    /// consumer keeps retrying with backoff, reporting each failure once.
    #[error("TLS with {broker} failed: {cause}")]
    Tls {
        /// The broker.
        broker: BrokerAddress,
        /// What failed.
        cause: TlsFailure,
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
    /// The partition's log was truncated below the position (an unclean
    /// leader election lost records the consumer had read) and
    /// `auto.offset.reset` is `none`. Each truncation is returned by one
    /// poll; the partition then stays stopped until the application seeks
    /// (typically to `divergent_offset`, after deciding what to do about
    /// the records it read past it).
    #[error(
        "log truncation in {partition}: position {position}, {}",
        divergent(.divergent_offset)
    )]
    LogTruncation {
        /// The partition.
        partition: TopicPartition,
        /// The position the consumer had (the next offset it would read).
        position: i64,
        /// The first divergent offset: the first offset known to diverge
        /// from what the consumer read, where the leader's copy of the
        /// position's epoch ends. `None` when the leader no longer knows
        /// that epoch at all.
        divergent_offset: Option<i64>,
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
    /// The call was a mistake: an unassigned partition, a negative
    /// offset, an invalid pattern, mixing `assign` and `subscribe`, ...
    #[error("invalid argument: {0}")]
    InvalidArgument(Misuse),
    /// An operation did not finish within its timeout.
    #[error("timed out: {0}")]
    Timeout(Operation),
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
        reason: CommitFailure,
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
    /// The consumer's background driver could not start, or stopped by a
    /// panic: the consumer cannot run.
    #[error("runtime failure: {0}")]
    Runtime(RuntimeFailure),
}

/// A caller's mistake, and what was wrong with the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// `store_offset(s)` with `enable.auto.offset.store` on: positions are
    /// stored by every poll already.
    #[error(
        "store_offset needs enable.auto.offset.store=false (every poll stores positions otherwise)"
    )]
    AutoOffsetStore,
    /// The partition is not in the assignment.
    #[error("partition {0} is not assigned")]
    NotAssigned(TopicPartition),
    /// An empty topic name or a negative partition.
    #[error("invalid partition `{0}`")]
    InvalidPartition(TopicPartition),
    /// Offsets start at 0.
    #[error("negative offset {offset} for {partition}")]
    NegativeOffset {
        /// The partition.
        partition: TopicPartition,
        /// The offset given.
        offset: i64,
    },
    /// Timestamps are milliseconds since the epoch, not negative.
    #[error("negative timestamp {timestamp} for {partition}")]
    NegativeTimestamp {
        /// The partition.
        partition: TopicPartition,
        /// The timestamp given.
        timestamp: i64,
    },
    /// A commit of a negative offset or partition.
    #[error("invalid offset to commit for {0}")]
    InvalidCommitOffset(TopicPartition),
    /// An empty (or blank) topic name.
    #[error("invalid topic name `{0}`")]
    InvalidTopic(String),
    /// A topic pattern that is not a regular expression.
    #[error("invalid topic pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern given.
        pattern: String,
        /// What the regular expression parser said.
        reason: String,
    },
    /// `assign` while subscribed to topics: unsubscribe first.
    #[error("assign while subscribed: unsubscribe first")]
    AssignWhileSubscribed,
    /// `subscribe` while partitions are assigned by hand: assign none first.
    #[error("subscribe after assign: unassign (assign no partitions) first")]
    SubscribeAfterAssign,
    /// The consumer was created outside the runtime its crate drives it with.
    #[error("{0} consumers must be created inside a {0} runtime")]
    OutsideRuntime(&'static str),
}

/// What did not finish in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Operation {
    /// Resolving a partition's position (`position`).
    #[error("the position of {0}")]
    Position(TopicPartition),
    /// An offsets lookup (`beginning_offsets`, `end_offsets`,
    /// `offsets_for_times`); the partitions still unanswered.
    #[error("offsets for {}", list(.0))]
    OffsetsLookup(Vec<TopicPartition>),
    /// A commit the caller waited for.
    #[error("a commit")]
    Commit,
    /// A committed-offsets lookup (`committed`).
    #[error("the committed offsets")]
    CommittedOffsets,
    /// Closing: the driver did not stop.
    #[error("closing: the consumer's driver did not stop")]
    Close,
}

/// Why a commit failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitFailure {
    /// The member lost its membership: without a generation the commit
    /// could overwrite offsets another member owns now.
    #[error("the member is not in the group (it lost its membership)")]
    NotAMember,
    /// The group's generation moved on; the partitions may belong to
    /// another member now.
    #[error(
        "the group's generation moved on ({0}); the partitions may belong to another member now"
    )]
    GenerationMoved(ErrorCode),
    /// The coordinator did not accept it within its timeout.
    #[error("timed out before the coordinator accepted it")]
    TimedOut,
    /// The coordinator refused it with a retriable error, and it was not
    /// retried: an asynchronous commit or auto-commit that a newer commit
    /// replaces (the newer one carries newer offsets).
    #[error("the coordinator refused it with {0} and a newer commit replaces it")]
    Retriable(ErrorCode),
    /// The connection to the coordinator closed before it answered, and
    /// it was not retried (as [`Retriable`](Self::Retriable)).
    #[error("no answer from the coordinator, and a newer commit replaces it")]
    NoAnswer,
    /// A commit from a listener told of lost partitions.
    #[error("the partitions were lost to another member; nothing can be committed")]
    PartitionsLost,
}

/// Why the consumer's background driver cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeFailure {
    /// The runtime could not start the driver (a thread or a task).
    #[error("could not start the consumer's driver: {0}")]
    DriverNotStarted(String),
    /// The driver panicked (a commit callback, most likely); the message.
    #[error("the consumer's driver panicked: {0}")]
    DriverPanicked(String),
}

fn list(partitions: &[TopicPartition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn divergent(offset: &Option<i64>) -> String {
    match offset {
        Some(offset) => format!("first divergent offset {offset}"),
        None => "first divergent offset unknown (the leader no longer has its epoch)".into(),
    }
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
