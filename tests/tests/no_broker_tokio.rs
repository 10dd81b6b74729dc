//! What only odradek-tokio has, with no broker: creation outside a tokio
//! runtime, and the runtime shutting down under a consumer. The scenarios
//! every async adapter shares are in `no_broker_async.rs`.

use std::time::Duration;

use odradek_tests::silent::refused_address;
use odradek_tokio::{Consumer, Error, Misuse, OffsetReset, TopicPartition};

fn consumer(bootstrap: &str) -> Consumer {
    let consumer = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .expect("consumer");
    consumer
        .assign([TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .expect("assign");
    consumer
}

#[test]
fn creating_a_consumer_outside_a_runtime_says_why_it_cannot() {
    let result = Consumer::builder()
        .bootstrap_servers("127.0.0.1:9092")
        .build();
    match result {
        Err(Error::InvalidArgument(misuse)) => {
            assert_eq!(misuse, Misuse::OutsideRuntime("tokio"));
            assert!(
                misuse.to_string().contains("inside a tokio runtime"),
                "{misuse}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A runtime that shuts down drops the driver task with it: waiting calls
/// then end with `Closed` instead of waiting for a driver that is gone.
#[test]
fn a_runtime_shut_down_under_the_consumer_ends_waiting_calls() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let consumer = {
        let _inside = runtime.enter();
        consumer(&refused_address())
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    // `recv` needs no timer, so any executor can poll it now; on a thread,
    // so that a hang fails the test instead of hanging it.
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(futures_lite::future::block_on(consumer.recv()));
    });
    let received = received
        .recv_timeout(Duration::from_secs(2))
        .expect("recv ended");
    assert!(matches!(received, Err(Error::Closed)), "{received:?}");
}
