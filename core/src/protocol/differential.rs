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

use super::Message;
use super::wire::Cx;
use super::wire::sample::Sample;

/// Cases per version; every version of every message runs this many.
const CASES: u32 = 48;

/// Runs the differential check for `Ours` against `Theirs` at every version.
pub(crate) fn check<Ours, Theirs>()
where
    Ours: Message + Sample,
    Theirs: Encodable + Decodable + std::fmt::Debug,
{
    for version in Ours::VERSIONS.iter() {
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
        consumer_protocol_subscription: ConsumerProtocolSubscription => kp::ConsumerProtocolSubscription;
        consumer_protocol_assignment: ConsumerProtocolAssignment => kp::ConsumerProtocolAssignment;
    }
}
