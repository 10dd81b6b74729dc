//! Proves the real-broker harness works on both brokers: each starts, takes
//! topics, accepts records from an independent client in every compression,
//! and restarts on the same port (tansu empty, crabka with its data).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use odradek_tests::produced::{Compression, ProduceSpec, produce};
use odradek_tests::{Broker, BrokerKind};

fn accepts(broker: &Broker) -> bool {
    TcpStream::connect_timeout(&broker.addr(), Duration::from_secs(1)).is_ok()
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn produce_every_compression_with_confluent_kafka(kind: BrokerKind) {
    let broker = Broker::start(kind).expect("start broker");
    assert!(
        broker.bootstrap().starts_with("127.0.0.1:"),
        "{}",
        broker.bootstrap()
    );
    for compression in Compression::ALL {
        let topic = format!("harness-{}", compression.name());
        broker.create_topic(&topic, 3).expect("create topic");

        let mut spec = ProduceSpec::new(&topic, 42, 1000);
        spec.partitions = 3;
        spec.compression = compression;
        spec.with_headers = true;
        spec.null_key_every = 7;
        let summary = produce(&broker, &spec).unwrap_or_else(|e| {
            panic!(
                "produce {compression:?}: {e}\nbroker log:\n{}",
                broker.log_tail()
            )
        });

        assert_eq!(summary.count, 1000, "{compression:?}: {}", summary.json);
        assert_eq!(summary.delivered, 1000, "{compression:?}: {}", summary.json);
        assert_eq!(summary.failed, 0, "{compression:?}: {}", summary.json);
        assert_eq!(
            summary.partitions.len(),
            3,
            "{compression:?}: {}",
            summary.json
        );
        for (p, s) in &summary.partitions {
            // Fresh topic, idempotent producer: partition p holds its records
            // at offsets 0..n in index order.
            let expected = spec.partition_records(*p).count() as u64;
            assert_eq!(
                s.count, expected,
                "{compression:?} partition {p}: {}",
                summary.json
            );
            assert_eq!(
                s.first_offset, 0,
                "{compression:?} partition {p}: {}",
                summary.json
            );
            assert_eq!(
                s.last_offset,
                expected as i64 - 1,
                "{compression:?} partition {p}: {}",
                summary.json
            );
        }
    }
}

fn create_topic_twice_fails(kind: BrokerKind) {
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic("dup", 2).expect("first create");
    let err = broker
        .create_topic("dup", 2)
        .expect_err("second create must fail");
    // TOPIC_ALREADY_EXISTS (36).
    assert!(err.message().contains("already exists"), "{err}");
}

fn restart_comes_back_on_the_same_port(kind: BrokerKind) {
    let mut broker = Broker::start(kind).expect("start broker");
    let addr = broker.addr();
    let first_pid = broker.pid().expect("running");
    broker
        .create_topic("before-restart", 1)
        .expect("create topic");
    produce(&broker, &ProduceSpec::new("before-restart", 1, 10)).expect("produce before restart");

    // A client connection open across the restart must not stop the rebind.
    let held = TcpStream::connect(addr).expect("connect before restart");
    broker.restart().expect("restart");
    drop(held);
    assert_eq!(broker.addr(), addr);
    let second_pid = broker.pid().expect("running after restart");
    assert_ne!(first_pid, second_pid);
    assert!(
        !process_exists(first_pid),
        "old broker process {first_pid} still exists"
    );
    assert!(broker.is_running());
    assert!(accepts(&broker));
    if kind.persists() {
        // The topic and its records are still there.
        let err = broker
            .create_topic("before-restart", 1)
            .expect_err("the topic survives the restart");
        assert!(err.message().contains("already exists"), "{err}");
        let summary = produce(&broker, &ProduceSpec::new("before-restart", 2, 10))
            .expect("produce after restart");
        assert_eq!(summary.partitions[&0].first_offset, 10, "{}", summary.json);
    } else {
        // In-memory storage: the old topic is gone, so creating it again works.
        broker
            .create_topic("before-restart", 1)
            .expect("re-create topic after restart");
        produce(&broker, &ProduceSpec::new("before-restart", 2, 10))
            .expect("produce after restart");
    }

    // stop() really stops; restart() after stop() works too.
    broker.stop();
    assert!(
        !process_exists(second_pid),
        "stopped broker process {second_pid} still exists"
    );
    assert!(!accepts(&broker), "port still accepts after stop");
    assert_eq!(broker.pid(), None);

    // If someone else holds the port, restart() must not mistake their
    // listener for the broker: it retries until the port is free again.
    let squatter = TcpListener::bind(addr).expect("hold the port");
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(squatter);
    });
    let t0 = Instant::now();
    broker
        .restart()
        .expect("restart after the port is released");
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "restart did not wait for the port"
    );
    released.join().unwrap();
    assert!(broker.is_running());
    broker
        .create_topic("after-squatter", 1)
        .expect("create topic on the restarted broker");

    let pid = broker.pid().unwrap();
    let dir = broker.log_path().parent().unwrap().to_path_buf();
    let log = std::fs::read_to_string(broker.log_path()).unwrap();
    assert!(log.contains(&format!("starting {kind}")), "{log}");
    drop(broker);
    assert!(
        !process_exists(pid),
        "dropped broker process {pid} still exists"
    );
    assert!(
        !dir.exists(),
        "broker directory {} not removed",
        dir.display()
    );
}

odradek_tests::for_each_broker!(
    produce_every_compression_with_confluent_kafka,
    create_topic_twice_fails,
    restart_comes_back_on_the_same_port,
);
