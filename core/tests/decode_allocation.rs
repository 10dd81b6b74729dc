//! Protocol decoders allocate in proportion to the bytes they parse, never
//! in proportion to a length or count the input merely claims.
//!
//! This test binary's global allocator is `cap::Cap`. Each decode runs with
//! the allocator's hard limit set to what was allocated before plus a budget
//! proportional to the input; an allocation past it fails, which aborts the
//! test binary, so an over-allocating decoder cannot pass.
//!
//! The limit is process-wide, so this binary runs without libtest's
//! threads (`harness = false`): `main` runs each check in turn.

use bytes::{Bytes, BytesMut};
use odradek_core::protocol::{ApiKey, FrameDecoder, RequestBody, ResponseBody};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Decoded structs are larger than their encodings (a 3-byte flexible
/// struct of compact strings becomes a ~100-byte Rust value), and vectors
/// grow by doubling; this factor covers both, with a fixed allowance for
/// small overheads. What it rules out is allocation driven by a claimed
/// length, which is unbounded in the input size.
const BYTES_PER_INPUT_BYTE: usize = 96;
const FIXED_ALLOWANCE: usize = 64 * 1024;

fn within_budget<T>(input_len: usize, decode: impl FnOnce() -> T) -> T {
    let budget = input_len * BYTES_PER_INPUT_BYTE + FIXED_ALLOWANCE;
    ALLOCATOR.set_limit(ALLOCATOR.allocated() + budget).unwrap();
    let result = decode();
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    result
}

fn decode_everything(api: ApiKey, version: i16, input: &Bytes) {
    within_budget(input.len(), || {
        let request = RequestBody::decode(api, input.clone(), version).is_ok();
        let response = ResponseBody::decode(api, input.clone(), version).is_ok();
        (request, response)
    });
}

/// Array and string lengths that claim gigabytes, at every position a
/// length could sit in the first bytes of a message.
fn hostile_lengths_cost_nothing() {
    let claims: [&[u8]; 4] = [
        &[0x7f, 0xff, 0xff, 0xff],       // i32::MAX elements or bytes
        &[0x7f, 0xff],                   // i16::MAX string length
        &[0xff, 0xff, 0xff, 0xff, 0x07], // compact length 2^31-1
        &[0xfe, 0xff, 0xff, 0xff, 0x0f], // compact length 2^32-2
    ];
    for &api in ApiKey::ALL {
        for version in api.versions().iter() {
            for claim in claims {
                for at in 0..12 {
                    let mut input = vec![0u8; at];
                    input.extend_from_slice(claim);
                    input.extend_from_slice(&[0u8; 2]);
                    decode_everything(api, version, &Bytes::from(input));
                }
            }
        }
    }
}

/// Six-byte responses whose first array claims two billion entries (the
/// shape that aborts kafka-protocol 0.18's decoders) are typed errors.
fn six_byte_bombs_are_typed_errors() {
    use odradek_core::protocol::DecodeErrorKind;
    let cases = [
        // ApiVersions v0: error code, then the api_keys array.
        (ApiKey::ApiVersions, 0, [0x00, 0x00, 0x7f, 0xff, 0xff, 0xff]),
        // Metadata v0: the brokers array comes first.
        (ApiKey::Metadata, 0, [0x7f, 0xff, 0xff, 0xff, 0x00, 0x00]),
        // Fetch v4: throttle time, then the responses array.
        (ApiKey::Fetch, 4, [0x00, 0x00, 0x00, 0x00, 0x7f, 0xff]),
    ];
    for (api, version, bytes) in cases {
        let input = Bytes::copy_from_slice(&bytes);
        let err = within_budget(input.len(), || {
            ResponseBody::decode(api, input.clone(), version)
        })
        .expect_err("a two-billion-entry claim in six bytes must fail");
        assert!(
            matches!(
                err.kind,
                DecodeErrorKind::LengthExceedsInput { .. } | DecodeErrorKind::UnexpectedEnd { .. }
            ),
            "{api} v{version}: {err}"
        );
    }
    // And across every API and version, no six-byte input of this shape
    // allocates beyond the budget.
    for &api in ApiKey::ALL {
        for version in api.versions().iter() {
            for bytes in [
                [0x00, 0x00, 0x7f, 0xff, 0xff, 0xff],
                [0x7f, 0xff, 0xff, 0xff, 0x00, 0x00],
            ] {
                decode_everything(api, version, &Bytes::copy_from_slice(&bytes));
            }
        }
    }
}

/// The frame decoder does not reserve room for a frame before its bytes arrive.
fn announced_frames_are_not_preallocated() {
    let mut frames = FrameDecoder::new(100 * 1024 * 1024);
    within_budget(8, || {
        frames.push(&(99 * 1024 * 1024i32).to_be_bytes());
        frames.push(&[1, 2, 3, 4]);
        assert_eq!(frames.next_frame(), Ok(None));
    });
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn api_and_version(index: usize, offset: u16) -> (ApiKey, i16) {
    let api = ApiKey::ALL[index % ApiKey::ALL.len()];
    let range = api.versions();
    (
        api,
        range.min + (offset % (range.max - range.min + 1) as u16) as i16,
    )
}

fn random_input_allocates_in_proportion() {
    let strategy = (any::<usize>(), any::<u16>(), vec(any::<u8>(), 0..2048));
    runner(1024)
        .run(&strategy, |(index, offset, bytes)| {
            let (api, version) = api_and_version(index, offset);
            decode_everything(api, version, &Bytes::from(bytes));
            Ok(())
        })
        .unwrap();
}

/// Many minimal elements: the largest amplification an honest-looking input
/// can reach (an array count that matches the bytes that follow, every
/// element as small as it can be).
fn dense_arrays_allocate_in_proportion() {
    let strategy = (any::<usize>(), any::<u16>(), any::<u8>(), 0usize..4096);
    runner(1024)
        .run(&strategy, |(index, offset, fill, len)| {
            let (api, version) = api_and_version(index, offset);
            let mut input = BytesMut::new();
            input.extend_from_slice(&(len as i32).to_be_bytes());
            input.extend_from_slice(&vec![fill; len]);
            decode_everything(api, version, &input.freeze());
            Ok(())
        })
        .unwrap();
}

fn main() {
    let checks: [(&str, fn()); 5] = [
        ("hostile_lengths_cost_nothing", hostile_lengths_cost_nothing),
        (
            "six_byte_bombs_are_typed_errors",
            six_byte_bombs_are_typed_errors,
        ),
        (
            "announced_frames_are_not_preallocated",
            announced_frames_are_not_preallocated,
        ),
        (
            "random_input_allocates_in_proportion",
            random_input_allocates_in_proportion,
        ),
        (
            "dense_arrays_allocate_in_proportion",
            dense_arrays_allocate_in_proportion,
        ),
    ];
    for (name, check) in checks {
        check();
        println!("test {name} ... ok");
    }
}
