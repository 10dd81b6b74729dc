//! The consumer's threads end after `close` and after a drop. Alone in its
//! own test binary so no other test's threads are counted.

#![cfg(target_os = "linux")]

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use odradek_blocking::{Consumer, OffsetReset, TopicPartition};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn wait_for_threads(expected: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() != expected {
        assert!(
            Instant::now() < deadline,
            "{what}: {} threads, expected {expected}",
            threads()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn no_thread_outlives_close_or_drop() {
    // A broker that accepts and never answers, so reader threads block.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let mut accepted = Vec::new();
        for stream in listener.incoming().flatten() {
            accepted.push(stream);
        }
    });
    thread::sleep(Duration::from_millis(50));
    let baseline = threads();
    let start = || {
        let consumer = Consumer::builder()
            .bootstrap_servers(addr.as_str())
            .auto_offset_reset(OffsetReset::Earliest)
            .build()
            .unwrap();
        consumer.assign([TopicPartition::new("t", 0)]).unwrap();
        // The driver and a connection's reader.
        wait_for_threads(baseline + 2, "while connected");
        consumer
    };

    let consumer = start();
    consumer.close().unwrap();
    wait_for_threads(baseline, "after close");

    drop(start());
    wait_for_threads(baseline, "after drop");
}
