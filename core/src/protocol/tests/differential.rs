//! Differential tests against the `kafka-protocol` crate, which is generated
//! from Apache Kafka's own message schemas.
//!
//! For every message and every version we implement: a random value legal at
//! that version is encoded by us; `kafka-protocol` must decode those bytes
//! and re-encode them byte for byte; we must decode its bytes back to the
//! value we started from. That checks both encoders and both decoders against
//! each other on the same values, and our own round trip besides.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, Encodable};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::protocol::Message;
use crate::protocol::wire::Cx;
use crate::protocol::wire::sample::Sample;

/// Cases per version; every version of every message runs this many.
const CASES: u32 = 48;

/// Runs the differential check for `Ours` against `Theirs` at every version.
pub(crate) fn check<Ours, Theirs>()
where
    Ours: Message + Sample,
    Theirs: Encodable + Decodable + Default + std::fmt::Debug,
{
    for version in Ours::VERSIONS.iter() {
        defaults_agree::<Ours, Theirs>(version);
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&proptest::prelude::any::<[u8; 32]>(), |seed| {
            let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
            let cx = Cx::message(version, Ours::FLEXIBLE.contains(version));
            let value = Ours::sample(&mut rng, cx);
            agree::<Ours, Theirs>(&value, version)
        });
        if let Err(e) = result {
            panic!("{} v{version}: {e}", Ours::NAME);
        }
    }
}

/// Our `Default` and theirs encode to the same bytes: every untagged field's
/// schema default matches. (Tagged defaults are caught by the sampler, which
/// often picks sentinels such as -1 and the integer extremes.)
fn defaults_agree<Ours, Theirs>(version: i16)
where
    Ours: Message,
    Theirs: Encodable + Default + std::fmt::Debug,
{
    let mut ours = BytesMut::new();
    Ours::default()
        .encode(&mut ours, version)
        .unwrap_or_else(|e| {
            panic!(
                "{} v{version}: our default does not encode: {e}",
                Ours::NAME
            )
        });
    let mut theirs = BytesMut::new();
    Theirs::default()
        .encode(&mut theirs, version)
        .unwrap_or_else(|e| {
            panic!(
                "{} v{version}: their default does not encode: {e}",
                Ours::NAME
            )
        });
    assert_eq!(
        ours,
        theirs,
        "{} v{version}: defaults differ\n ours:   {:?}\n theirs: {:?}",
        Ours::NAME,
        Ours::default(),
        Theirs::default()
    );
}

/// The check for one value at one version.
pub(crate) fn agree<Ours, Theirs>(value: &Ours, version: i16) -> Result<(), TestCaseError>
where
    Ours: Message,
    Theirs: Encodable + Decodable + std::fmt::Debug,
{
    let mut ours = BytesMut::new();
    value
        .encode(&mut ours, version)
        .map_err(|e| TestCaseError::fail(format!("we failed to encode {value:?}: {e}")))?;
    let ours = ours.freeze();

    let mut input = ours.clone();
    let theirs_value = Theirs::decode(&mut input, version).map_err(|e| {
        TestCaseError::fail(format!(
            "kafka-protocol rejected our bytes {ours:02x?} for {value:?}: {e}"
        ))
    })?;
    if !input.is_empty() {
        return Err(TestCaseError::fail(format!(
            "kafka-protocol left {} of our bytes unread for {value:?}",
            input.len()
        )));
    }
    let mut theirs = BytesMut::new();
    theirs_value
        .encode(&mut theirs, version)
        .map_err(|e| TestCaseError::fail(format!("kafka-protocol failed to re-encode: {e}")))?;
    let theirs: Bytes = theirs.freeze();
    if theirs != ours {
        return Err(TestCaseError::fail(format!(
            "encodings differ for {value:?}\n ours:   {ours:02x?}\n theirs: {theirs:02x?}\n their value: {theirs_value:?}"
        )));
    }

    let decoded = Ours::decode_exact(theirs, version)
        .map_err(|e| TestCaseError::fail(format!("we failed to decode their bytes: {e}")))?;
    if &decoded != value {
        return Err(TestCaseError::fail(format!(
            "round trip changed the value\n before: {value:?}\n after:  {decoded:?}"
        )));
    }
    Ok(())
}

/// One `#[test]` per message pair.
macro_rules! differential {
    ($($test:ident: $ours:ty => $theirs:ty;)*) => {$(
        #[test]
        fn $test() {
            check::<$ours, $theirs>();
        }
    )*};
}

mod messages {
    use super::check;
    use crate::protocol::messages::*;
    use crate::protocol::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
    use kafka_protocol::messages as kp;

    differential! {
        api_versions_request: ApiVersionsRequest => kp::ApiVersionsRequest;
        api_versions_response: ApiVersionsResponse => kp::ApiVersionsResponse;
        metadata_request: MetadataRequest => kp::MetadataRequest;
        metadata_response: MetadataResponse => kp::MetadataResponse;
        fetch_request: FetchRequest => kp::FetchRequest;
        fetch_response: FetchResponse => kp::FetchResponse;
        list_offsets_request: ListOffsetsRequest => kp::ListOffsetsRequest;
        list_offsets_response: ListOffsetsResponse => kp::ListOffsetsResponse;
        offset_for_leader_epoch_request: OffsetForLeaderEpochRequest => kp::OffsetForLeaderEpochRequest;
        offset_for_leader_epoch_response: OffsetForLeaderEpochResponse => kp::OffsetForLeaderEpochResponse;
        offset_commit_request: OffsetCommitRequest => kp::OffsetCommitRequest;
        offset_commit_response: OffsetCommitResponse => kp::OffsetCommitResponse;
        offset_fetch_request: OffsetFetchRequest => kp::OffsetFetchRequest;
        offset_fetch_response: OffsetFetchResponse => kp::OffsetFetchResponse;
        find_coordinator_request: FindCoordinatorRequest => kp::FindCoordinatorRequest;
        find_coordinator_response: FindCoordinatorResponse => kp::FindCoordinatorResponse;
        join_group_request: JoinGroupRequest => kp::JoinGroupRequest;
        join_group_response: JoinGroupResponse => kp::JoinGroupResponse;
        sync_group_request: SyncGroupRequest => kp::SyncGroupRequest;
        sync_group_response: SyncGroupResponse => kp::SyncGroupResponse;
        heartbeat_request: HeartbeatRequest => kp::HeartbeatRequest;
        heartbeat_response: HeartbeatResponse => kp::HeartbeatResponse;
        leave_group_request: LeaveGroupRequest => kp::LeaveGroupRequest;
        leave_group_response: LeaveGroupResponse => kp::LeaveGroupResponse;
        describe_groups_request: DescribeGroupsRequest => kp::DescribeGroupsRequest;
        describe_groups_response: DescribeGroupsResponse => kp::DescribeGroupsResponse;
        list_groups_request: ListGroupsRequest => kp::ListGroupsRequest;
        list_groups_response: ListGroupsResponse => kp::ListGroupsResponse;
        produce_request: ProduceRequest => kp::ProduceRequest;
        produce_response: ProduceResponse => kp::ProduceResponse;
        create_topics_request: CreateTopicsRequest => kp::CreateTopicsRequest;
        create_topics_response: CreateTopicsResponse => kp::CreateTopicsResponse;
        delete_topics_request: DeleteTopicsRequest => kp::DeleteTopicsRequest;
        delete_topics_response: DeleteTopicsResponse => kp::DeleteTopicsResponse;
        sasl_handshake_request: SaslHandshakeRequest => kp::SaslHandshakeRequest;
        sasl_handshake_response: SaslHandshakeResponse => kp::SaslHandshakeResponse;
        sasl_authenticate_request: SaslAuthenticateRequest => kp::SaslAuthenticateRequest;
        sasl_authenticate_response: SaslAuthenticateResponse => kp::SaslAuthenticateResponse;
        consumer_protocol_subscription: ConsumerProtocolSubscription => kp::ConsumerProtocolSubscription;
        consumer_protocol_assignment: ConsumerProtocolAssignment => kp::ConsumerProtocolAssignment;
    }
}
