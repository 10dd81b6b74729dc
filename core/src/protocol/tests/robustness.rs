//! Hostile input for every decoder: random bytes and mutated valid
//! encodings never panic, and every failure is a typed error naming the
//! message and version.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng};

use crate::protocol::{
    ApiKey, DecodeError, FrameDecoder, RequestBody, ResponseBody, decode_request,
};

/// Picks an API and one of its versions from two arbitrary numbers.
fn api_and_version(index: usize, offset: u16) -> (ApiKey, i16) {
    let api = ApiKey::ALL[index % ApiKey::ALL.len()];
    let range = api.versions();
    let span = (range.max - range.min + 1) as u16;
    (api, range.min + (offset % span) as i16)
}

fn check_error(result: Result<impl Sized, DecodeError>, version: i16) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(!e.api.is_empty(), "error without a message name: {e:?}");
        prop_assert_eq!(e.version, version, "error with the wrong version: {:?}", e);
    }
    Ok(())
}

/// A mutation of an encoded message.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Set(at, b) if len > 0 => bytes[at % len] = b,
            Mutation::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Mutation::Remove(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        index in any::<usize>(),
        offset in any::<u16>(),
        bytes in vec(any::<u8>(), 0..256),
    ) {
        let (api, version) = api_and_version(index, offset);
        let bytes = Bytes::from(bytes);
        check_error(RequestBody::decode(api, bytes.clone(), version), version)?;
        check_error(ResponseBody::decode(api, bytes, version), version)?;
    }

    #[test]
    fn mutated_encodings_never_panic(
        index in any::<usize>(),
        offset in any::<u16>(),
        seed in any::<[u8; 32]>(),
        mutations in vec(mutation(), 1..6),
    ) {
        let (api, version) = api_and_version(index, offset);
        let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);

        let mut encoded = BytesMut::new();
        ResponseBody::sample(api, &mut rng, version).encode(&mut encoded, version).unwrap();
        let mut bytes = encoded.to_vec();
        mutate(&mut bytes, &mutations);
        check_error(ResponseBody::decode(api, Bytes::from(bytes), version), version)?;

        let mut encoded = BytesMut::new();
        RequestBody::sample(api, &mut rng, version).encode(&mut encoded, version).unwrap();
        let mut bytes = encoded.to_vec();
        mutate(&mut bytes, &mutations);
        check_error(RequestBody::decode(api, Bytes::from(bytes), version), version)?;
    }

    #[test]
    fn random_streams_through_the_frame_decoder_never_panic(
        stream in vec(any::<u8>(), 0..512),
        chunk in 1usize..64,
    ) {
        let mut frames = FrameDecoder::new(256);
        for piece in stream.chunks(chunk) {
            frames.push(piece);
            while let Ok(Some(frame)) = frames.next_frame() {
                let _ = decode_request(frame);
            }
        }
    }
}
