//! Literal-byte and format-edge tests of the records module.

use bytes::Bytes;

use super::*;

fn hex(s: &str) -> Bytes {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex");
    digits
        .chunks(2)
        .map(|p| p[0] << 4 | p[1])
        .collect::<Vec<u8>>()
        .into()
}

fn single_batch(bytes: Bytes) -> RecordBatch {
    let mut reader = RecordBatchReader::new(Some(bytes));
    let batch = reader.next().expect("one batch").expect("decodes");
    assert!(reader.next().is_none());
    assert!(!reader.is_truncated());
    batch
}

fn owned(batch: &RecordBatch) -> Vec<Record> {
    batch
        .records()
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A transactional batch at offset 5 with a gap: offsets 5 and 8.
const DATA_BATCH: &str = "
    0000000000000005 0000004a 00000007 02 c2f42011
    0010 00000003 0000018bcfe56800 0000018bcfe5680a
    00000000000003e8 0002 00000032 00000002
    22 00 00 00 04 6b31 0a 68656c6c6f 02 02 68 02 76
    0c 00 14 06 01 01 00";

/// A COMMIT marker of producer 1000, epoch 2, coordinator epoch 5.
const CONTROL_BATCH: &str = "
    0000000000000008 00000042 00000007 02 c7c7e5d2
    0030 00000000 0000018bcfe56814 0000018bcfe56814
    00000000000003e8 0002 ffffffff 00000001
    20 00 00 00 08 00000001 0c 000000000005 00";

#[test]
fn literal_batch_decodes_to_expected_fields() {
    let batch = single_batch(hex(DATA_BATCH));
    assert_eq!(batch.base_offset(), 5);
    assert_eq!(batch.last_offset_delta(), 3);
    assert_eq!(batch.last_offset(), 8);
    assert_eq!(batch.next_offset(), 9);
    assert_eq!(batch.partition_leader_epoch(), 7);
    assert_eq!(batch.magic(), 2);
    assert_eq!(batch.crc(), 0xc2f4_2011);
    assert_eq!(batch.compression(), Compression::None);
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert!(batch.is_transactional());
    assert!(!batch.is_control());
    assert!(!batch.has_delete_horizon());
    assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
    assert_eq!(batch.max_timestamp(), 1_700_000_000_010);
    assert_eq!(batch.producer_id(), 1000);
    assert_eq!(batch.producer_epoch(), 2);
    assert_eq!(batch.base_sequence(), 50);
    assert_eq!(batch.record_count(), 2);
    assert_eq!(batch.size_in_bytes(), 86);
    assert_eq!(batch.control_record(), Ok(None));

    let records = batch.records().unwrap();
    let refs: Vec<RecordRef<'_>> = records.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0].offset(), 5);
    assert_eq!(refs[0].timestamp(), 1_700_000_000_000);
    assert_eq!(refs[0].key(), Some(&b"k1"[..]));
    assert_eq!(refs[0].value(), Some(&b"hello"[..]));
    let headers: Vec<Header<'_>> = refs[0].headers().iter().collect();
    assert_eq!(
        headers,
        [Header {
            key: b"h",
            value: Some(b"v")
        }]
    );
    assert_eq!(headers[0].key_str(), Some("h"));
    // The gap in offset deltas (0, then 3) is kept exactly.
    assert_eq!(refs[1].offset(), 8);
    assert_eq!(refs[1].timestamp(), 1_700_000_000_010);
    assert_eq!(refs[1].key(), None);
    assert_eq!(refs[1].value(), None);
    assert!(refs[1].headers().is_empty());

    let owned = owned(&batch);
    assert_eq!(owned[0].key(), Some(&b"k1"[..]));
    assert_eq!(
        owned[0].headers().last(b"h").and_then(|h| h.value),
        Some(&b"v"[..])
    );
    assert_eq!(owned[1].offset(), 8);
}

#[test]
fn uncompressed_records_share_the_fetched_buffer() {
    let fetched = hex(DATA_BATCH);
    let range = fetched.as_ptr_range();
    let batch = single_batch(fetched.clone());
    let record = owned(&batch).remove(0);
    let value = record.value_bytes().unwrap();
    assert!(range.contains(&value.as_ptr()), "value was copied");
}

#[test]
fn builder_reproduces_the_literal_batch() {
    let encoded = RecordBatchBuilder::new(5)
        .partition_leader_epoch(7)
        .producer(1000, 2, 50)
        .transactional(true)
        .record(
            NewRecord::new()
                .with_key("k1")
                .with_value("hello")
                .with_timestamp(1_700_000_000_000)
                .with_header("h", "v"),
        )
        .record(
            NewRecord::new()
                .with_timestamp(1_700_000_000_010)
                .with_offset_delta(3),
        )
        .encode()
        .unwrap();
    assert_eq!(encoded, hex(DATA_BATCH));
}

#[test]
fn literal_control_batch() {
    let batch = single_batch(hex(CONTROL_BATCH));
    assert!(batch.is_control());
    assert!(batch.is_transactional());
    assert_eq!(batch.base_sequence(), NO_SEQUENCE);
    assert_eq!(
        batch.control_record(),
        Ok(Some(ControlRecord {
            version: 0,
            kind: ControlRecordType::Commit
        }))
    );
    let encoded = RecordBatchBuilder::end_transaction_marker(
        8,
        1000,
        2,
        ControlRecordType::Commit,
        5,
        1_700_000_000_020,
    )
    .partition_leader_epoch(7)
    .encode()
    .unwrap();
    assert_eq!(encoded, hex(CONTROL_BATCH));
}

#[test]
fn abort_marker_and_control_key_errors() {
    let abort = RecordBatchBuilder::end_transaction_marker(0, 1, 0, ControlRecordType::Abort, 0, 0)
        .encode()
        .unwrap();
    assert_eq!(
        single_batch(abort)
            .control_record()
            .unwrap()
            .map(|c| c.kind),
        Some(ControlRecordType::Abort)
    );
    assert!(ControlRecord::parse(None).is_err());
    assert!(ControlRecord::parse(Some(&[0, 0, 0])).is_err());
    assert!(ControlRecord::parse(Some(&[0xff, 0xff, 0, 0])).is_err());
    assert_eq!(
        ControlRecord::parse(Some(&[0, 3, 0, 7, 9])).unwrap(),
        ControlRecord {
            version: 3,
            kind: ControlRecordType::Other(7)
        }
    );
}

#[test]
fn crc_mismatch_is_typed() {
    let mut bytes = hex(DATA_BATCH).to_vec();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    let err = RecordBatchReader::new(Some(bytes.into()))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            RecordsError::CrcMismatch {
                base_offset: 5,
                expected: 0xc2f4_2011,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn reader_stops_after_an_error() {
    let mut bytes = hex(DATA_BATCH).to_vec();
    bytes[30] ^= 0x40;
    bytes.extend_from_slice(&hex(CONTROL_BATCH));
    let mut reader = RecordBatchReader::new(Some(bytes.into()));
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
    assert!(!reader.is_truncated());
}

#[test]
fn null_and_empty_records_are_empty() {
    let mut reader = RecordBatchReader::new(None);
    assert!(reader.next().is_none());
    assert!(!reader.is_truncated());
    let mut reader = RecordBatchReader::new(Some(Bytes::new()));
    assert!(reader.next().is_none());
    assert!(!reader.is_truncated());
}

#[test]
fn partial_batch_at_the_end_is_skipped() {
    let whole = [hex(DATA_BATCH), hex(CONTROL_BATCH)].concat();
    let first_len = hex(DATA_BATCH).len();
    for cut in 1..hex(CONTROL_BATCH).len() {
        let mut reader =
            RecordBatchReader::new(Some(Bytes::copy_from_slice(&whole[..first_len + cut])));
        let batch = reader.next().unwrap().unwrap();
        assert_eq!(batch.base_offset(), 5);
        assert!(reader.next().is_none(), "cut {cut}");
        assert!(reader.is_truncated(), "cut {cut}");
        assert_eq!(reader.remaining_bytes(), cut);
    }
    let mut reader = RecordBatchReader::new(Some(Bytes::from(whole)));
    assert_eq!(reader.by_ref().count(), 2);
    assert!(!reader.is_truncated());
}

#[test]
fn impossible_lengths_and_magics_are_errors_not_truncation() {
    let mut bytes = hex(DATA_BATCH).to_vec();
    bytes[8..12].copy_from_slice(&5i32.to_be_bytes());
    let err = RecordBatchReader::new(Some(bytes.clone().into()))
        .next()
        .unwrap();
    assert!(
        matches!(err, Err(RecordsError::MalformedBatch { .. })),
        "{err:?}"
    );

    let mut bytes = hex(DATA_BATCH).to_vec();
    bytes[16] = 3;
    let err = RecordBatchReader::new(Some(bytes.into())).next().unwrap();
    assert_eq!(
        err.unwrap_err(),
        RecordsError::UnsupportedMagic {
            base_offset: 5,
            magic: 3
        }
    );

    // A v2 batch too short for its header.
    let mut bytes = hex(DATA_BATCH)[..40].to_vec();
    bytes[8..12].copy_from_slice(&28i32.to_be_bytes());
    let err = RecordBatchReader::new(Some(bytes.into())).next().unwrap();
    assert!(
        matches!(err, Err(RecordsError::MalformedBatch { .. })),
        "{err:?}"
    );
}

/// Re-computes the CRC of a v2 batch so that edits get past the check.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn unknown_codec_and_bad_header_fields() {
    let mut bytes = hex(DATA_BATCH).to_vec();
    bytes[22] |= 0x07;
    fix_crc(&mut bytes);
    assert_eq!(
        RecordBatchReader::new(Some(bytes.into()))
            .next()
            .unwrap()
            .unwrap_err(),
        RecordsError::UnknownCompression {
            base_offset: 5,
            codec: 7
        }
    );

    let mut bytes = hex(DATA_BATCH).to_vec();
    bytes[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    fix_crc(&mut bytes);
    assert!(matches!(
        RecordBatchReader::new(Some(bytes.into())).next().unwrap(),
        Err(RecordsError::MalformedBatch { .. })
    ));
}

#[test]
fn record_count_mismatches_are_malformed_records() {
    for (count, index) in [(1i32, 1u32), (3, 2)] {
        let mut bytes = hex(DATA_BATCH).to_vec();
        bytes[57..61].copy_from_slice(&count.to_be_bytes());
        fix_crc(&mut bytes);
        let batch = single_batch(bytes.into());
        let records = batch.records().unwrap();
        let results: Vec<_> = records.iter().collect();
        let err = results.last().unwrap().as_ref().unwrap_err();
        assert!(
            matches!(err, RecordsError::MalformedRecord { index: i, .. } if *i == index),
            "{err:?}"
        );
    }
}

#[test]
fn malformed_record_reports_position_and_reason() {
    let mut bytes = hex(DATA_BATCH).to_vec();
    // Record 1's key length becomes -2.
    let at = bytes.len() - 3;
    bytes[at] = 0x03;
    fix_crc(&mut bytes);
    let batch = single_batch(bytes.into());
    let records = batch.records().unwrap();
    let mut iter = records.iter();
    assert!(iter.next().unwrap().is_ok());
    assert_eq!(
        iter.next().unwrap().unwrap_err(),
        RecordsError::MalformedRecord {
            base_offset: 5,
            index: 1,
            position: 18,
            reason: "negative key length"
        }
    );
    assert!(iter.next().is_none());
}

#[test]
fn log_append_time_uses_max_timestamp() {
    let bytes = RecordBatchBuilder::new(0)
        .timestamp_type(TimestampType::LogAppendTime)
        .max_timestamp(99)
        .record(NewRecord::new().with_timestamp(1))
        .record(NewRecord::new().with_timestamp(2))
        .encode()
        .unwrap();
    let batch = single_batch(bytes);
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert!(owned(&batch).iter().all(|r| r.timestamp() == 99));
}

#[test]
fn compacted_batch_keeps_last_offset_and_empty_batches_decode() {
    let bytes = RecordBatchBuilder::new(100)
        .last_offset_delta(9)
        .record(NewRecord::new().with_value("a").with_offset_delta(2))
        .encode()
        .unwrap();
    let batch = single_batch(bytes);
    assert_eq!(batch.next_offset(), 110);
    assert_eq!(owned(&batch)[0].offset(), 102);

    for codec in [Compression::None, Compression::Zstd] {
        let empty = RecordBatchBuilder::new(7)
            .compression(codec)
            .last_offset_delta(3)
            .encode()
            .unwrap();
        let batch = single_batch(empty);
        assert_eq!(batch.record_count(), 0);
        assert_eq!(batch.next_offset(), 11);
        assert!(owned(&batch).is_empty());
    }
}

#[test]
fn delete_horizon() {
    let bytes = RecordBatchBuilder::new(0)
        .delete_horizon(12345)
        .record(NewRecord::new().with_timestamp(12350))
        .encode()
        .unwrap();
    let batch = single_batch(bytes);
    assert_eq!(batch.delete_horizon_ms(), Some(12345));
    assert_eq!(owned(&batch)[0].timestamp(), 12350);
}

#[test]
fn duplicate_header_keys_and_null_header_values_are_kept() {
    let bytes = RecordBatchBuilder::new(0)
        .record(
            NewRecord::new()
                .with_header("a", "1")
                .with_null_header("b")
                .with_header("a", "2"),
        )
        .encode()
        .unwrap();
    let record = owned(&single_batch(bytes)).remove(0);
    assert_eq!(
        record.header_pairs(),
        vec![
            (Bytes::from("a"), Some(Bytes::from("1"))),
            (Bytes::from("b"), None),
            (Bytes::from("a"), Some(Bytes::from("2"))),
        ]
    );
    assert_eq!(record.headers().last(b"a").unwrap().value, Some(&b"2"[..]));
}

// ---- legacy message sets -------------------------------------------------

/// Magic 1, offset 3, timestamp 1_600_000_000_000, key "a", value "bc".
const LEGACY_V1: &str =
    "0000000000000003 00000019 011ad8b1 01 00 00000174876e8000 00000001 61 00000002 6263";
/// Magic 0, offset 4, null key, value "z".
const LEGACY_V0: &str = "0000000000000004 0000000f dbbaf3de 00 00 ffffffff 00000001 7a";

#[test]
fn literal_legacy_messages() {
    let bytes = [hex(LEGACY_V1), hex(LEGACY_V0)].concat();
    let batches: Vec<RecordBatch> = RecordBatchReader::new(Some(bytes.into()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].magic(), 1);
    assert_eq!(batches[0].timestamp_type(), TimestampType::CreateTime);
    assert_eq!(batches[0].next_offset(), 4);
    assert_eq!(batches[0].producer_id(), NO_PRODUCER_ID);
    let first = owned(&batches[0]);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].offset(), first[0].timestamp()),
        (3, 1_600_000_000_000)
    );
    assert_eq!(
        (first[0].key(), first[0].value()),
        (Some(&b"a"[..]), Some(&b"bc"[..]))
    );
    assert!(first[0].headers().is_empty());
    assert_eq!(batches[1].magic(), 0);
    assert_eq!(batches[1].timestamp_type(), TimestampType::NoTimestamp);
    let second = owned(&batches[1]);
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].offset(), second[0].timestamp()),
        (4, NO_TIMESTAMP)
    );
    assert_eq!(
        (second[0].key(), second[0].value()),
        (None, Some(&b"z"[..]))
    );
}

#[test]
fn legacy_crc_mismatch() {
    let mut bytes = hex(LEGACY_V1).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(matches!(
        RecordBatchReader::new(Some(bytes.into())).next().unwrap(),
        Err(RecordsError::CrcMismatch { base_offset: 3, .. })
    ));
}

/// Encodes one legacy message (test-only: the client never writes these).
fn legacy_message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = vec![magic as u8, attributes as u8];
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A compressed wrapper around `inner` (a message set), as 0.10 producers wrote.
fn legacy_wrapper(
    offset: i64,
    magic: i8,
    codec: Compression,
    log_append: bool,
    timestamp: i64,
    inner: &[u8],
) -> Vec<u8> {
    let mut compressed = Vec::new();
    compression::compress(codec, inner, &mut compressed).unwrap();
    let attributes = codec.id() as i8 | if log_append { 0x08 } else { 0 };
    legacy_message(
        offset,
        magic,
        attributes,
        timestamp,
        None,
        Some(&compressed),
    )
}

#[test]
fn legacy_compressed_magic1_relative_offsets() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
        let inner: Vec<u8> = (0..3)
            .flat_map(|i| {
                legacy_message(
                    i,
                    1,
                    0,
                    1000 + i,
                    Some(b"k"),
                    Some(format!("v{i}").as_bytes()),
                )
            })
            .collect();
        // Wrapper offset = absolute offset of the last inner message.
        let wrapper = legacy_wrapper(12, 1, codec, false, 1002, &inner);
        let batch = single_batch(wrapper.into());
        assert_eq!(batch.compression(), codec);
        assert_eq!(
            (
                batch.base_offset(),
                batch.last_offset(),
                batch.record_count()
            ),
            (10, 12, 3)
        );
        let records = owned(&batch);
        let got: Vec<(i64, i64, Bytes)> = records
            .into_iter()
            .map(|r| (r.offset(), r.timestamp(), r.value_bytes().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 1000, Bytes::from("v0")),
                (11, 1001, Bytes::from("v1")),
                (12, 1002, Bytes::from("v2"))
            ],
            "{codec}"
        );
    }
}

#[test]
fn legacy_log_append_time_wrapper_overrides_inner_timestamps() {
    let inner: Vec<u8> = (0..2)
        .flat_map(|i| legacy_message(i, 1, 0, 5, None, Some(b"x")))
        .collect();
    let batch = single_batch(legacy_wrapper(1, 1, Compression::Gzip, true, 777, &inner).into());
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert!(owned(&batch).iter().all(|r| r.timestamp() == 777));
}

#[test]
fn legacy_compressed_magic0_absolute_offsets() {
    let inner: Vec<u8> = (20..23)
        .flat_map(|i| legacy_message(i, 0, 0, 0, None, Some(b"x")))
        .collect();
    let batch = single_batch(legacy_wrapper(22, 0, Compression::Snappy, false, 0, &inner).into());
    let offsets: Vec<i64> = owned(&batch).iter().map(|r| r.offset()).collect();
    assert_eq!(offsets, [20, 21, 22]);
    assert_eq!(batch.next_offset(), 23);
}

#[test]
fn legacy_magic0_lz4_with_kafka_3160_header_checksum() {
    let inner: Vec<u8> = (0..2)
        .flat_map(|i| legacy_message(i, 0, 0, 0, None, Some(b"payload")))
        .collect();
    let mut frame = Vec::new();
    compression::compress(Compression::Lz4, &inner, &mut frame).unwrap();
    // Kafka 0.8/0.9 hashed the magic number into the header checksum.
    frame[6] = (compression::xxh32(&frame[..6], 0) >> 8) as u8;
    let wrapper = legacy_message(1, 0, Compression::Lz4.id() as i8, 0, None, Some(&frame));
    let batch = single_batch(wrapper.into());
    assert_eq!(owned(&batch).len(), 2);
}

#[test]
fn legacy_wrapper_errors() {
    let inner = legacy_message(0, 1, 0, 0, None, Some(b"x"));
    // Inner magic differs from the wrapper's.
    let bad = legacy_wrapper(0, 0, Compression::Gzip, false, 0, &inner);
    assert!(matches!(
        RecordBatchReader::new(Some(bad.into())).next().unwrap(),
        Err(RecordsError::MalformedBatch { .. })
    ));
    // Wrapper offset below the last relative inner offset.
    let two: Vec<u8> = (0..2)
        .flat_map(|i| legacy_message(i, 1, 0, 0, None, None))
        .collect();
    let bad = legacy_wrapper(0, 1, Compression::Gzip, false, 0, &two);
    assert!(matches!(
        RecordBatchReader::new(Some(bad.into())).next().unwrap(),
        Err(RecordsError::MalformedBatch { .. })
    ));
    // Null wrapper value, empty inner set, nested compression, zstd in magic 1.
    let null = legacy_message(0, 1, 1, 0, None, None);
    let empty = legacy_wrapper(0, 1, Compression::Gzip, false, 0, &[]);
    let nested = legacy_wrapper(
        0,
        1,
        Compression::Gzip,
        false,
        0,
        &legacy_wrapper(0, 1, Compression::Gzip, false, 0, &inner),
    );
    let zstd = legacy_message(0, 1, 4, 0, None, Some(b"x"));
    for bad in [null, empty, nested, zstd] {
        assert!(matches!(
            RecordBatchReader::new(Some(bad.into())).next().unwrap(),
            Err(RecordsError::MalformedBatch { .. })
        ));
    }
    // A corrupted inner CRC is a CRC error naming the inner message.
    let mut inner_bad = legacy_message(0, 1, 0, 0, None, Some(b"x"));
    let last = inner_bad.len() - 1;
    inner_bad[last] ^= 1;
    let bad = legacy_wrapper(0, 1, Compression::Gzip, false, 0, &inner_bad);
    assert!(matches!(
        RecordBatchReader::new(Some(bad.into())).next().unwrap(),
        Err(RecordsError::CrcMismatch { .. })
    ));
}

#[test]
fn mixed_legacy_and_v2_stream() {
    let bytes = [hex(LEGACY_V1), hex(DATA_BATCH), hex(LEGACY_V0)].concat();
    let offsets: Vec<i64> = RecordBatchReader::new(Some(bytes.into()))
        .flat_map(|b| owned(&b.unwrap()))
        .map(|r| r.offset())
        .collect();
    assert_eq!(offsets, [3, 5, 8, 4]);
}

#[test]
fn legacy_partial_message_at_the_end_is_truncation() {
    let whole = [hex(LEGACY_V1), hex(LEGACY_V0)].concat();
    let first = hex(LEGACY_V1).len();
    for cut in 1..hex(LEGACY_V0).len() {
        let mut reader =
            RecordBatchReader::new(Some(Bytes::copy_from_slice(&whole[..first + cut])));
        assert!(reader.next().unwrap().is_ok());
        assert!(reader.next().is_none());
        assert!(reader.is_truncated(), "cut {cut}");
    }
}

mod legacy_fuzz {
    use proptest::prelude::*;

    use super::*;

    fn exercise(bytes: Vec<u8>) {
        let limits = DecodeLimits::default().with_max_decompressed_bytes(1 << 20);
        for batch in RecordBatchReader::with_limits(Some(bytes.into()), limits) {
            let Ok(batch) = batch else { continue };
            let _ = (
                batch.next_offset(),
                batch.timestamp_type(),
                format!("{batch:?}"),
            );
            let Ok(records) = batch.records() else {
                continue;
            };
            for record in &records {
                let _ = record.map(|r| (r.offset(), r.timestamp(), r.to_record()));
            }
        }
    }

    /// Recomputes the CRC-32 of a legacy message whose header is intact.
    fn fix_legacy_crc(message: &mut [u8]) {
        if message.len() > 16 {
            let crc = crc32fast::hash(&message[16..]);
            message[12..16].copy_from_slice(&crc.to_be_bytes());
        }
    }

    fn mutate(bytes: &mut [u8], edits: &[(prop::sample::Index, u8)], from: usize) {
        for (i, b) in edits {
            if bytes.len() > from {
                let at = from + i.index(bytes.len() - from);
                bytes[at] = *b;
            }
        }
    }

    fn codec() -> impl Strategy<Value = Compression> {
        prop::sample::select(vec![
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Inner messages with edited bodies (CRC fixed), wrapped, then the
        /// wrapper edited too (CRC fixed): never a panic.
        #[test]
        fn mutated_legacy_message_sets_never_panic(
            magic in 0..2i8,
            codec in codec(),
            log_append in any::<bool>(),
            wrapper_offset in prop_oneof![0..10i64, any::<i64>()],
            values in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..16)), 0..5),
            inner_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            inner_from in prop_oneof![3 => Just(16usize), 1 => Just(0usize)],
            outer_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            fix_outer in prop::bool::weighted(0.9),
        ) {
            let mut inner = Vec::new();
            for (i, value) in values.iter().enumerate() {
                let mut message = legacy_message(i as i64, magic, 0, i as i64, None, value.as_deref());
                mutate(&mut message, &inner_edits, inner_from);
                fix_legacy_crc(&mut message);
                inner.extend_from_slice(&message);
            }
            let mut outer = if codec == Compression::None {
                inner
            } else {
                legacy_wrapper(wrapper_offset, magic, codec, log_append, 99, &inner)
            };
            mutate(&mut outer, &outer_edits, 0);
            if fix_outer {
                fix_legacy_crc(&mut outer);
            }
            exercise(outer);
        }
    }
}

#[test]
fn crc_checking_can_be_turned_off() {
    let mut bytes = RecordBatchBuilder::new(0)
        .record(NewRecord::new().with_value("x"))
        .encode()
        .unwrap()
        .to_vec();
    bytes[20] ^= 0xff; // the last byte of the CRC field
    let bytes = Bytes::from(bytes);
    let checked = RecordBatchReader::new(Some(bytes.clone())).next().unwrap();
    assert!(matches!(checked, Err(RecordsError::CrcMismatch { .. })));
    let limits = DecodeLimits::default().with_crc_check(false);
    let batch = RecordBatchReader::with_limits(Some(bytes), limits)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.records().unwrap().iter().count(), 1);
}
