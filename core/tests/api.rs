//! The API users bring from Java, kafka-python and rdkafka, against a
//! scripted broker and a fake clock: lag from the last fetch, seeks of
//! every assigned partition, per-call record limits, per-topic views,
//! payload sizes and typed payloads.

mod support;

use std::time::Duration;

use odradek_core::payload::{FromPayload, PayloadErrorSource, PayloadPart};
use odradek_core::{ConsumerConfig, OffsetReset};
use support::*;

fn earliest() -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = OffsetReset::Earliest;
    c
}

/// Two topics: `a` with 2 partitions of 10 values each, `bb` with 1 of 4 (topic ids come from the name length).
fn two_topics() -> Cluster {
    let mut cluster = Cluster::new(earliest(), 1);
    // Answers in request order, as a broker does (a ListOffsets waits
    // behind a fetch that long-polls).
    cluster.in_order = true;
    cluster.topic("a", 2);
    cluster.topic("bb", 1);
    cluster.log("a", 0).append_values(10);
    cluster.log("a", 1).append_values(10);
    cluster.log("bb", 0).append_values(4);
    cluster
        .consumer
        .assign([tp("a", 0), tp("a", 1), tp("bb", 0)], cluster.now)
        .unwrap();
    cluster
}

#[test]
fn lag_comes_from_the_last_fetch_and_is_none_before_it() {
    let mut cluster = two_topics();
    assert_eq!(
        cluster.consumer.lag(&tp("a", 0)),
        None,
        "nothing fetched yet"
    );
    assert_eq!(cluster.consumer.lag(&tp("z", 0)), None, "not assigned");
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.high_watermark(&tp("a", 0)).is_some()
            && c.consumer.high_watermark(&tp("bb", 0)).is_some()
    });
    assert_eq!(cluster.consumer.high_watermark(&tp("a", 0)), Some(10));
    // Fetched but not returned: the position is still 0.
    assert_eq!(cluster.consumer.lag(&tp("a", 0)), Some(10));
    let taken = cluster.consumer.take_records_up_to(3, cluster.now).unwrap();
    for record in &taken {
        let tp = record.topic_partition().clone();
        let position = cluster
            .consumer
            .position(&tp, cluster.now)
            .unwrap()
            .unwrap();
        let high = cluster.consumer.high_watermark(&tp).unwrap();
        assert_eq!(cluster.consumer.lag(&tp), Some(high - position));
    }
    let requests_before = cluster.log.len();
    for _ in 0..3 {
        cluster.consumer.lag(&tp("a", 1));
    }
    cluster.drive();
    assert!(
        cluster.log.len() <= requests_before + 3,
        "lag makes no request of its own"
    );
}

#[test]
fn seek_to_beginning_and_end_with_no_partitions_move_every_assigned_partition() {
    let mut cluster = two_topics();
    let all = cluster.poll_n(24, Duration::from_secs(5));
    assert_eq!(all.len(), 24);
    cluster
        .consumer
        .seek_to_beginning(&[], cluster.now)
        .unwrap();
    let again = cluster.poll_n(24, Duration::from_secs(5));
    assert_eq!(again.len(), 24, "every partition read again");
    cluster.consumer.seek_to_end(&[], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        [tp("a", 0), tp("a", 1), tp("bb", 0)]
            .iter()
            .all(|tp| c.consumer.position(tp, c.now).unwrap().is_some())
    });
    for (tp, end) in [(tp("a", 0), 10), (tp("a", 1), 10), (tp("bb", 0), 4)] {
        assert_eq!(cluster.consumer.position(&tp, cluster.now), Ok(Some(end)));
    }
}

#[test]
fn a_per_call_limit_and_per_topic_views() {
    let mut cluster = two_topics();
    cluster.run_until(Duration::from_secs(5), |c| c.consumer.buffered_bytes() > 0);
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.high_watermark(&tp("bb", 0)).is_some()
    });
    let few = cluster.consumer.take_records_up_to(5, cluster.now).unwrap();
    assert_eq!(few.len(), 5);
    let rest = cluster.poll_n(19, Duration::from_secs(5));
    assert_eq!(rest.len(), 19);
    let few_a = few.by_topic("a").count();
    let few_b = few.by_topic("bb").count();
    assert_eq!(few_a + few_b, 5);
    assert!(few.by_topic("bb").all(|r| r.topic() == "bb"));
    assert_eq!(few.by_topic("nope").count(), 0);
}

/// Four records: a null key and value, an empty value, text, and bytes
/// that are not UTF-8.
fn odd_payloads() -> Vec<odradek_core::ConsumerRecord> {
    use odradek_core::records::{NewRecord, RecordBatchBuilder};
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("p", 1);
    let bytes = RecordBatchBuilder::new(0)
        .record(NewRecord::new())
        .record(NewRecord::new().with_key("k").with_value(""))
        .record(NewRecord::new().with_value(&br#"{"id": 7, "name": "seven"}"#[..]))
        .record(NewRecord::new().with_value(&[0xff, 0xfe, b'x'][..]))
        .encode()
        .unwrap();
    cluster.log("p", 0).append_batch(0, 4, bytes);
    cluster.consumer.assign([tp("p", 0)], cluster.now).unwrap();
    cluster.poll_n(4, Duration::from_secs(5))
}

#[test]
fn serialized_sizes_are_minus_one_for_null_as_java() {
    let records = odd_payloads();
    let sizes: Vec<(i32, i32)> = records
        .iter()
        .map(|r| (r.serialized_key_size(), r.serialized_value_size()))
        .collect();
    assert_eq!(sizes, vec![(-1, -1), (1, 0), (-1, 26), (-1, 3)]);
}

#[test]
fn payloads_as_text_or_the_applications_types_fail_per_record() {
    let records = odd_payloads();
    assert_eq!(records[0].value_str().unwrap(), None, "null is None");
    assert_eq!(records[1].key_str().unwrap(), Some("k"));
    assert_eq!(records[1].value_str().unwrap(), Some(""));
    assert!(records[2].value_str().unwrap().unwrap().contains("seven"));
    let bad = records[3].value_str().unwrap_err();
    assert_eq!(bad.partition, tp("p", 0));
    assert_eq!(bad.offset, 3);
    assert_eq!(bad.part, PayloadPart::Value);
    assert!(bad.source.is::<std::str::Utf8Error>(), "{bad}");
    assert!(bad.to_string().contains("p-0 at offset 3"), "{bad}");
    // The next record is still readable: only that one is bad.
    assert!(records[2].value_as::<String>().is_ok());

    /// The application's own type: a payload of exactly one byte.
    #[derive(Debug, PartialEq)]
    struct OneByte(u8);
    impl FromPayload<'_> for OneByte {
        type Error = PayloadErrorSource;
        fn from_payload(bytes: &[u8]) -> Result<Self, Self::Error> {
            match bytes {
                [b] => Ok(OneByte(*b)),
                _ => Err(format!("{} bytes, not 1", bytes.len()).into()),
            }
        }
    }
    assert_eq!(records[1].key_as::<OneByte>().unwrap(), Some(OneByte(b'k')));
    let wrong = records[3].value_as::<OneByte>().unwrap_err();
    assert!(wrong.to_string().contains("3 bytes, not 1"), "{wrong}");
    assert!(wrong.type_name.ends_with("OneByte"));
}

#[cfg(feature = "json")]
#[test]
fn json_payloads_through_serde() {
    use odradek_core::payload::Json;
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Named {
        id: u32,
        name: String,
    }
    let records = odd_payloads();
    let Json(named) = records[2].value_as::<Json<Named>>().unwrap().unwrap();
    assert_eq!(
        named,
        Named {
            id: 7,
            name: "seven".into()
        }
    );
    let bad = records[1].value_as::<Json<Named>>().unwrap_err();
    assert!(bad.source.is::<serde_json::Error>(), "{bad}");
}

#[test]
fn with_enable_partition_eof_a_poll_reports_each_partition_reaching_its_end_once() {
    let mut cluster = Cluster::new(
        {
            let mut c = earliest();
            c.enable_partition_eof = true;
            c
        },
        1,
    );
    cluster.in_order = true;
    cluster.topic("e", 2);
    cluster.log("e", 0).append_values(3);
    cluster
        .consumer
        .assign([tp("e", 0), tp("e", 1)], cluster.now)
        .unwrap();
    let mut records = 0;
    let mut ends: Vec<(usize, odradek_core::TopicPartition)> = Vec::new();
    cluster.run_until(Duration::from_secs(5), |c| {
        let polled = c.consumer.take_records(c.now).unwrap();
        records += polled.len();
        for tp in polled.reached_end() {
            ends.push((records, tp.clone()));
        }
        ends.len() >= 2
    });
    // The empty partition at once; e-0 only after its three records.
    assert!(ends.contains(&(3, tp("e", 0))), "{ends:?}");
    assert!(ends.iter().any(|(_, p)| p == &tp("e", 1)), "{ends:?}");
    // Once per time: nothing more while nothing new arrives.
    cluster.advance(Duration::from_secs(1));
    let again = cluster.consumer.take_records(cluster.now).unwrap();
    assert!(again.reached_end().is_empty(), "{:?}", again.reached_end());
    // New records, read to the end: e-0 is reported again.
    cluster.log("e", 0).append_values(2);
    let mut after = Vec::new();
    cluster.run_until(Duration::from_secs(5), |c| {
        let polled = c.consumer.take_records(c.now).unwrap();
        after.extend(polled.reached_end().iter().cloned());
        !after.is_empty()
    });
    assert_eq!(after, vec![tp("e", 0)]);

    // Off by default: never reported.
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("e", 1);
    cluster.consumer.assign([tp("e", 0)], cluster.now).unwrap();
    cluster.advance(Duration::from_secs(1));
    let polled = cluster.consumer.take_records(cluster.now).unwrap();
    assert!(polled.reached_end().is_empty());
}

#[test]
fn an_idle_connection_closes_after_connections_max_idle_ms_and_reopens_when_needed() {
    let mut cluster = Cluster::new(
        {
            let mut c = earliest();
            c.connections_max_idle = Some(Duration::from_secs(5));
            c
        },
        1,
    );
    cluster.in_order = true;
    cluster.topic("i", 1);
    cluster.log("i", 0).append_values(3);
    cluster.consumer.assign([tp("i", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(3, Duration::from_secs(5)).len(), 3);
    // Fetching keeps the connection busy; paused, it has nothing to do.
    cluster.advance(Duration::from_secs(10));
    let opened = cluster.opened.len();
    cluster.consumer.pause(&[tp("i", 0)], cluster.now).unwrap();
    cluster.advance(Duration::from_secs(4));
    assert!(cluster.open_links(1) > 0, "not idle long enough yet");
    cluster.advance(Duration::from_secs(2));
    assert_eq!(cluster.open_links(1), 0, "closed for idleness");
    assert!(
        !cluster
            .events
            .iter()
            .any(|e| matches!(e, odradek_core::Event::ConnectionError { .. })),
        "an idle close is not an error: {:?}",
        cluster.events
    );
    // Needed again: a new connection, and the records keep coming.
    cluster.log("i", 0).append_values(2);
    cluster.consumer.resume(&[tp("i", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(2, Duration::from_secs(5)).len(), 2);
    assert!(cluster.opened.len() > opened);
}
