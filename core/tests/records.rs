//! Property tests of the records module: round trips through our encoder and
//! decoder with every codec, differential tests against `kafka-protocol`
//! 0.18 in both directions, and arbitrary/mutated input that must never panic.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use odradek_core::records::{
    Compression, DecodeLimits, NewRecord, RecordBatch, RecordBatchBuilder, RecordBatchReader,
    RecordsError, TimestampType,
};
use proptest::prelude::*;

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

fn kp_codec(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

/// One record as a test describes it.
#[derive(Debug, Clone)]
struct Spec {
    /// Added to the previous offset delta + 1, so offsets can have gaps.
    gap: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn blob() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..48))
}

fn spec(timestamps: impl Strategy<Value = i64>) -> impl Strategy<Value = Spec> {
    (
        prop_oneof![4 => Just(0), 1 => 0..5i32, 1 => 0..100_000i32],
        timestamps,
        blob(),
        blob(),
        prop::collection::vec(("[a-z0-9.-]{0,8}", blob()), 0..4),
    )
        .prop_map(|(gap, timestamp, key, value, headers)| Spec {
            gap,
            timestamp,
            key,
            value,
            headers,
        })
}

/// Offset deltas of `specs`, the first starting at `first`.
fn deltas(specs: &[Spec], first: i32) -> Vec<i32> {
    let mut next = first;
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = if i == 0 { first } else { next + s.gap };
            next = d + 1;
            d
        })
        .collect()
}

fn new_record(s: &Spec, delta: i32) -> NewRecord {
    NewRecord {
        offset_delta: Some(delta),
        timestamp: s.timestamp,
        key: s.key.clone().map(Bytes::from),
        value: s.value.clone().map(Bytes::from),
        headers: s
            .headers
            .iter()
            .map(|(k, v)| (Bytes::from(k.clone()), v.clone().map(Bytes::from)))
            .collect(),
    }
}

/// Everything about a record we compare across decoders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn ours_decode(bytes: Bytes) -> Result<Vec<(RecordBatch, Vec<Seen>)>, RecordsError> {
    let mut reader = RecordBatchReader::new(Some(bytes));
    let mut out = Vec::new();
    for batch in &mut reader {
        let batch = batch?;
        let records = batch.records()?;
        let mut seen = Vec::new();
        // Borrowed and owned iteration must agree.
        let owned: Vec<_> = records.clone().into_iter().collect::<Result<_, _>>()?;
        for (r, o) in records.iter().zip(&owned) {
            let r = r?;
            assert_eq!(r.to_record(), *o);
            seen.push(Seen {
                offset: r.offset(),
                timestamp: r.timestamp(),
                key: r.key().map(<[u8]>::to_vec),
                value: r.value().map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .iter()
                    .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
            });
        }
        assert_eq!(seen.len(), owned.len());
        out.push((batch, seen));
    }
    assert!(!reader.is_truncated());
    Ok(out)
}

fn expected(
    specs: &[Spec],
    base_offset: i64,
    deltas: &[i32],
    timestamp_override: Option<i64>,
) -> Vec<Seen> {
    specs
        .iter()
        .zip(deltas)
        .map(|(s, d)| Seen {
            offset: base_offset + i64::from(*d),
            timestamp: timestamp_override.unwrap_or(s.timestamp),
            key: s.key.clone(),
            value: s.value.clone(),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone().into_bytes(), v.clone()))
                .collect(),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct BatchMeta {
    base_offset: i64,
    leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
}

fn batch_meta() -> impl Strategy<Value = BatchMeta> {
    (
        0..(1i64 << 50),
        any::<i32>(),
        prop_oneof![Just(-1i64), 0..i64::MAX],
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                base_offset,
                leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
            )| BatchMeta {
                base_offset,
                leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
            },
        )
}

fn builder(
    meta: &BatchMeta,
    codec: Compression,
    specs: &[Spec],
    deltas: &[i32],
) -> RecordBatchBuilder {
    RecordBatchBuilder::new(meta.base_offset)
        .compression(codec)
        .partition_leader_epoch(meta.leader_epoch)
        .producer(meta.producer_id, meta.producer_epoch, meta.base_sequence)
        .transactional(meta.transactional)
        .records(specs.iter().zip(deltas).map(|(s, d)| new_record(s, *d)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Our encoder, then our decoder, with every codec and arbitrary
    /// timestamps (deltas may wrap), LogAppendTime, control and gaps.
    #[test]
    fn round_trip_every_codec(
        meta in batch_meta(),
        codec in codec(),
        specs in prop::collection::vec(spec(any::<i64>()), 0..24),
        first_delta in 0..3i32,
        log_append in any::<bool>(),
        control in any::<bool>(),
        append_time in any::<i64>(),
    ) {
        let deltas = deltas(&specs, first_delta);
        let mut b = builder(&meta, codec, &specs, &deltas).control(control);
        if log_append {
            b = b.timestamp_type(TimestampType::LogAppendTime).max_timestamp(append_time);
        }
        let bytes = b.encode().unwrap();
        let decoded = ours_decode(bytes.clone()).unwrap();
        prop_assert_eq!(decoded.len(), 1);
        let (batch, seen) = &decoded[0];
        prop_assert_eq!(batch.base_offset(), meta.base_offset);
        prop_assert_eq!(batch.compression(), codec);
        prop_assert_eq!(batch.partition_leader_epoch(), meta.leader_epoch);
        prop_assert_eq!(batch.producer_id(), meta.producer_id);
        prop_assert_eq!(batch.producer_epoch(), meta.producer_epoch);
        prop_assert_eq!(batch.base_sequence(), meta.base_sequence);
        prop_assert_eq!(batch.is_transactional(), meta.transactional);
        prop_assert_eq!(batch.is_control(), control);
        prop_assert_eq!(batch.record_count() as usize, specs.len());
        prop_assert_eq!(batch.size_in_bytes(), bytes.len());
        prop_assert_eq!(batch.last_offset_delta(), deltas.last().copied().unwrap_or(0));
        let ts_type = if log_append { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
        prop_assert_eq!(batch.timestamp_type(), ts_type);
        let over = log_append.then_some(append_time);
        prop_assert_eq!(seen, &expected(&specs, meta.base_offset, &deltas, over));
    }

    /// Several batches back to back, then a cut anywhere in the last one:
    /// every complete batch is returned and the reader reports truncation.
    #[test]
    fn concatenated_batches_and_truncated_tail(
        batches in prop::collection::vec((codec(), prop::collection::vec(spec(0..1_000i64), 1..6)), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut all = Vec::new();
        let mut offset = 0;
        let mut ends = Vec::new();
        for (codec, specs) in &batches {
            let deltas = deltas(specs, 0);
            RecordBatchBuilder::new(offset)
                .compression(*codec)
                .records(specs.iter().zip(&deltas).map(|(s, d)| new_record(s, *d)))
                .encode_into(&mut all)
                .unwrap();
            offset += i64::from(*deltas.last().unwrap()) + 1;
            ends.push(all.len());
        }
        let complete = ours_decode(Bytes::from(all.clone())).unwrap();
        prop_assert_eq!(complete.len(), batches.len());

        let last_start = if ends.len() > 1 { ends[ends.len() - 2] } else { 0 };
        let cut_at = last_start + 1 + cut.index(all.len() - last_start - 1);
        let mut reader = RecordBatchReader::new(Some(Bytes::copy_from_slice(&all[..cut_at])));
        let got = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        prop_assert_eq!(got.len(), batches.len() - 1);
        prop_assert!(reader.is_truncated());
        prop_assert_eq!(reader.remaining_bytes(), cut_at - last_start);
    }
}

// ---- differential tests against kafka-protocol ------------------------------

/// Records kafka-protocol would build for the same batch. Header keys are
/// unique here: kafka-protocol keeps headers in a map and drops duplicates.
fn kp_records(meta: &BatchMeta, specs: &[Spec], deltas: &[i32]) -> Vec<KpRecord> {
    specs
        .iter()
        .zip(deltas)
        .map(|(s, d)| KpRecord {
            transactional: meta.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: meta.leader_epoch,
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            timestamp_type: KpTimestampType::Creation,
            offset: meta.base_offset + i64::from(*d),
            sequence: meta.base_sequence.wrapping_add(*d),
            timestamp: s.timestamp,
            key: s.key.clone().map(Bytes::from),
            value: s.value.clone().map(Bytes::from),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from)))
                .collect(),
        })
        .collect()
}

fn unique_headers(mut specs: Vec<Spec>) -> Vec<Spec> {
    for s in &mut specs {
        let mut seen = std::collections::HashSet::new();
        s.headers.retain(|(k, _)| seen.insert(k.clone()));
    }
    specs
}

fn differential_specs() -> impl Strategy<Value = Vec<Spec>> {
    // kafka-protocol subtracts timestamps without wrapping, so keep them in a
    // range where the difference cannot overflow.
    prop::collection::vec(spec(-(1i64 << 40)..(1i64 << 41)), 1..24).prop_map(unique_headers)
}

fn kp_seen(r: &KpRecord) -> Seen {
    Seen {
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.as_ref().map(|b| b.to_vec()),
        value: r.value.as_ref().map(|b| b.to_vec()),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|b| b.to_vec())))
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Batches we encode decode in kafka-protocol to the same records and
    /// batch fields.
    #[test]
    fn ours_decodes_in_kafka_protocol(meta in batch_meta(), codec in codec(), specs in differential_specs()) {
        let deltas = deltas(&specs, 0);
        let bytes = builder(&meta, codec, &specs, &deltas).encode().unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut bytes.clone()).unwrap();
        prop_assert_eq!(sets.len(), 1);
        prop_assert_eq!(sets[0].compression, kp_codec(codec));
        let records = &sets[0].records;
        let seen: Vec<Seen> = records.iter().map(kp_seen).collect();
        prop_assert_eq!(seen, expected(&specs, meta.base_offset, &deltas, None));
        for (r, d) in records.iter().zip(&deltas) {
            prop_assert_eq!(r.producer_id, meta.producer_id);
            prop_assert_eq!(r.producer_epoch, meta.producer_epoch);
            prop_assert_eq!(r.partition_leader_epoch, meta.leader_epoch);
            prop_assert_eq!(r.transactional, meta.transactional);
            prop_assert!(!r.control);
            prop_assert_eq!(r.timestamp_type, KpTimestampType::Creation);
            prop_assert_eq!(r.sequence, meta.base_sequence.wrapping_add(*d));
        }
    }

    /// Batches kafka-protocol encodes decode in ours to the same records;
    /// where both encoders are deterministic and make the same choices, the
    /// bytes are identical.
    #[test]
    fn kafka_protocol_decodes_in_ours(meta in batch_meta(), codec in codec(), specs in differential_specs()) {
        let deltas = deltas(&specs, 0);
        let records = kp_records(&meta, &specs, &deltas);
        let mut theirs = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut theirs,
            &records,
            &RecordEncodeOptions { version: 2, compression: kp_codec(codec) },
        )
        .unwrap();
        let theirs = theirs.freeze();

        let decoded = ours_decode(theirs.clone()).unwrap();
        prop_assert_eq!(decoded.len(), 1);
        let (batch, seen) = &decoded[0];
        prop_assert_eq!(seen, &expected(&specs, meta.base_offset, &deltas, None));
        prop_assert_eq!(batch.compression(), codec);
        prop_assert_eq!(batch.producer_id(), meta.producer_id);
        prop_assert_eq!(batch.producer_epoch(), meta.producer_epoch);
        prop_assert_eq!(batch.base_sequence(), meta.base_sequence);
        prop_assert_eq!(batch.partition_leader_epoch(), meta.leader_epoch);
        prop_assert_eq!(batch.is_transactional(), meta.transactional);
        prop_assert_eq!(batch.last_offset_delta(), *deltas.last().unwrap());

        // LZ4 differs: kafka-protocol uses liblz4's HC mode with a content
        // checksum, we use lz4_flex's fast mode without one, as Java does.
        if codec != Compression::Lz4 {
            let ours = builder(&meta, codec, &specs, &deltas).encode().unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }
}

// ---- arbitrary input never panics -------------------------------------------

/// Decodes everything reachable from `bytes`, touching every accessor.
fn exercise(bytes: Bytes) {
    let limits = DecodeLimits::default().with_max_decompressed_bytes(1 << 20);
    let mut reader = RecordBatchReader::with_limits(Some(bytes), limits);
    for batch in &mut reader {
        let Ok(batch) = batch else { continue };
        let _ = format!("{batch:?}");
        let _ = (
            batch.last_offset(),
            batch.next_offset(),
            batch.timestamp_type(),
            batch.delete_horizon_ms(),
            batch.is_control(),
            batch.is_transactional(),
        );
        let _ = batch.control_record();
        let Ok(records) = batch.records() else {
            continue;
        };
        for record in &records {
            let Ok(record) = record else { continue };
            let _ = format!("{record:?}");
            for header in record.headers() {
                let _ = header.key_str();
            }
            let owned = record.to_record();
            let _ = (
                owned.header_pairs(),
                owned.key_bytes(),
                owned.value_bytes(),
                format!("{owned:?}"),
            );
        }
        for record in records {
            let _ = record.map(|r| (r.headers().len(), r.key().map(<[u8]>::len)));
        }
    }
    let _ = (reader.is_truncated(), reader.remaining_bytes());
}

/// A valid batch with random contents, to be mutated.
fn valid_batch() -> impl Strategy<Value = Vec<u8>> {
    (
        batch_meta(),
        codec(),
        prop::collection::vec(spec(any::<i64>()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(meta, codec, specs, control)| {
            let deltas = deltas(&specs, 0);
            builder(&meta, codec, &specs, &deltas)
                .control(control)
                .encode()
                .unwrap()
                .to_vec()
        })
}

/// Recomputes the CRC-32C of the first batch so that edits reach the parser.
fn fix_crc(batch: &mut [u8]) {
    if batch.len() > 21 && batch[16] == 2 {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        4 => (any::<prop::sample::Index>(), 0..8u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Flip(i, bit) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        Mutation::Insert(i, b) => {
            let at = i.index(bytes.len());
            bytes.insert(at, *b);
        }
        Mutation::Remove(i) => {
            let at = i.index(bytes.len());
            bytes.remove(at);
        }
        Mutation::Truncate(i) => {
            let at = i.index(bytes.len());
            bytes.truncate(at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(Bytes::from(bytes));
    }

    /// Mutations of valid batches, with the CRC fixed up so that they get
    /// past the checksum into the header, record and decompression parsers.
    #[test]
    fn mutated_batches_never_panic(
        mut bytes in valid_batch(),
        mutations in prop::collection::vec(mutation(), 1..6),
        fix in prop::bool::weighted(0.9),
    ) {
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if fix {
            fix_crc(&mut bytes);
        }
        exercise(Bytes::from(bytes));
    }

    /// A valid v2 header around random records data, for every codec: the
    /// decompressors and the record parser see garbage behind a good CRC.
    #[test]
    fn garbage_behind_a_valid_header_never_panics(
        codec in codec(),
        count in prop_oneof![0..4i32, any::<i32>()],
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = RecordBatchBuilder::new(0).compression(codec).encode().unwrap().to_vec();
        bytes.truncate(61);
        bytes[57..61].copy_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&body);
        let len = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&len.to_be_bytes());
        fix_crc(&mut bytes);
        exercise(Bytes::from(bytes));
    }
}

#[test]
fn garbage_behind_magic_bytes_of_each_codec() {
    // Codec magic numbers followed by junk: headers that parse, bodies that don't.
    let prefixes: [(Compression, &[u8]); 4] = [
        (Compression::Gzip, &[0x1f, 0x8b, 0x08, 0x00]),
        (
            Compression::Snappy,
            b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\x7f\xff\xff\xff",
        ),
        (
            Compression::Lz4,
            &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82],
        ),
        (Compression::Zstd, &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]),
    ];
    for (codec, prefix) in prefixes {
        for junk in [&[][..], &[0u8; 16], &[0xffu8; 64]] {
            let mut bytes = RecordBatchBuilder::new(0)
                .compression(codec)
                .encode()
                .unwrap()
                .to_vec();
            bytes.truncate(61);
            bytes[57..61].copy_from_slice(&1i32.to_be_bytes());
            bytes.extend_from_slice(prefix);
            bytes.extend_from_slice(junk);
            let len = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&len.to_be_bytes());
            fix_crc(&mut bytes);
            let batch = RecordBatchReader::new(Some(bytes.into()))
                .next()
                .unwrap()
                .unwrap();
            // lz4_flex reads a frame that ends right after its header as
            // empty; the declared record is then missing.
            let failed = match batch.records() {
                Err(RecordsError::Decompression { codec: c, .. }) => c == codec,
                Ok(records) => codec == Compression::Lz4 && records.iter().any(|r| r.is_err()),
                Err(_) => false,
            };
            assert!(failed, "{codec} {junk:?}");
        }
    }
}
