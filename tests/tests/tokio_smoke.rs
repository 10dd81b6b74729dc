//! A first end-to-end check of the tokio adapter against tansu.

use std::time::Duration;

use odradek_tests::Broker;
use odradek_tests::produced::{ProduceSpec, produce};
use odradek_tokio::{Consumer, OffsetReset, TopicPartition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_what_confluent_kafka_produced() {
    let broker = Broker::start().expect("start tansu");
    broker.create_topic("smoke", 2).expect("topic");
    let mut spec = ProduceSpec::new("smoke", 3, 2000);
    spec.partitions = 2;
    produce(&broker, &spec).expect("produce");

    let consumer = Consumer::builder()
        .bootstrap_servers(broker.bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .expect("consumer");
    consumer
        .assign([
            TopicPartition::new("smoke", 0),
            TopicPartition::new("smoke", 1),
        ])
        .unwrap();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen < 2000 && tokio::time::Instant::now() < deadline {
        let records = consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll");
        seen += records.len();
    }
    assert_eq!(seen, 2000);
    consumer.close().await.unwrap();
}
