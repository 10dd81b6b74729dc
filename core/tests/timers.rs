//! The timer contract, over random scenarios: after any input and a full
//! drain, `poll_timeout` is never at or before the `now` of that input. A
//! deadline in the past would make an adapter spin (it wakes at once, the
//! consumer does nothing, and the same deadline comes back).
//!
//! Each case runs a consumer (manual assignment or a group member) against
//! scripted brokers whose every answer is chosen by the case: answered,
//! late, never, cut off, or with a retriable error; while the application
//! polls, seeks, pauses, commits, queries offsets and subscribes at random
//! times. The harness checks the contract after every step (see
//! `Cluster::next_wakeup`), and the test checks it again after each
//! command.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use odradek_core::group::Assignors;
use odradek_core::protocol::{ApiKey, ErrorCode};
use odradek_core::{ConsumerConfig, OffsetReset};
use proptest::prelude::*;
use support::*;

/// How a broker treats one request.
#[derive(Debug, Clone)]
enum Reply {
    Normal,
    Late(u64),
    Never,
    CutOff,
    Disconnect,
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        6 => Just(Reply::Normal),
        2 => (1u64..5_000).prop_map(Reply::Late),
        1 => Just(Reply::Never),
        1 => Just(Reply::CutOff),
        1 => Just(Reply::Disconnect),
    ]
}

/// What the application (or the world) does next.
#[derive(Debug, Clone)]
enum Step {
    Wait(u64),
    /// Time passes, and the next input is not the timer but a broker's
    /// reply or a poll (an adapter that reads its sockets first).
    Late(u64),
    Poll,
    Seek(i32, i64),
    SeekToEnd(i32),
    Pause(i32),
    Resume(i32),
    Commit,
    Committed,
    EndOffsets(u64),
    Subscribe,
    Unsubscribe,
    BrokerDown,
    BrokerUp,
    FetchError(i32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..15_000).prop_map(Step::Wait),
        2 => (1u64..15_000).prop_map(Step::Late),
        4 => Just(Step::Poll),
        1 => (0i32..2, 0i64..20).prop_map(|(p, o)| Step::Seek(p, o)),
        1 => (0i32..2).prop_map(Step::SeekToEnd),
        1 => (0i32..2).prop_map(Step::Pause),
        1 => (0i32..2).prop_map(Step::Resume),
        1 => Just(Step::Commit),
        1 => Just(Step::Committed),
        1 => (0u64..3_000).prop_map(Step::EndOffsets),
        1 => Just(Step::Subscribe),
        1 => Just(Step::Unsubscribe),
        1 => Just(Step::BrokerDown),
        1 => Just(Step::BrokerUp),
        1 => (0i32..2).prop_map(Step::FetchError),
    ]
}

fn consumer_config(group: bool, zero_backoff: bool) -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = OffsetReset::Earliest;
    c.request_timeout = Duration::from_secs(3);
    if zero_backoff {
        // The edge that would spin without the table's granularity.
        c.retry_backoff = Duration::ZERO;
        c.retry_backoff_max = Duration::ZERO;
        c.reconnect_backoff = Duration::ZERO;
        c.reconnect_backoff_max = Duration::ZERO;
    }
    if group {
        c.group_id = Some("g".into());
        c.session_timeout = Duration::from_secs(10);
        c.heartbeat_interval = Duration::from_secs(1);
        c.max_poll_interval = Duration::from_secs(30);
        c.auto_commit_interval = Duration::from_secs(2);
        c.partition_assignment_strategy = Assignors::from_names("range").unwrap();
    }
    c
}

fn assert_future(cluster: &Cluster, after: &str) {
    if let Some(at) = cluster.consumer.poll_timeout() {
        assert!(
            at > cluster.now,
            "after {after}: poll_timeout is {:?} before now",
            cluster.now - at
        );
    }
}

fn run(group: bool, zero_backoff: bool, replies: Vec<Reply>, steps: Vec<Step>) {
    let mut cluster = Cluster::new(consumer_config(group, zero_backoff), 2);
    cluster.in_order = true;
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10);
    cluster.log("t", 1).append_values(10);
    cluster.group.assignment = vec![tp("t", 0), tp("t", 1)];
    // Every broker answers from one shared list of choices, then normally.
    let replies = Rc::new(RefCell::new(replies.into_iter()));
    for id in [1, 2] {
        let replies = replies.clone();
        cluster.broker(id).script.push(Box::new(move |header, _| {
            if header.api_key == ApiKey::ApiVersions.code() {
                return None;
            }
            match replies.borrow_mut().next()? {
                Reply::Normal => None,
                Reply::Late(ms) => Some(Action::Delay(Duration::from_millis(ms))),
                Reply::Never => Some(Action::Ignore),
                Reply::CutOff => Some(Action::PartialThenDisconnect(7)),
                Reply::Disconnect => Some(Action::Disconnect),
            }
        }));
    }
    let partitions = [tp("t", 0), tp("t", 1)];
    if group {
        cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    } else {
        cluster
            .consumer
            .assign(partitions.clone(), cluster.now)
            .unwrap();
    }
    cluster.drive();
    assert_future(&cluster, "start");
    for step in steps {
        let now = cluster.now;
        let consumer = &mut cluster.consumer;
        // Commands may fail (unassigned partition, no group, a rebalance):
        // only the timer contract matters here.
        match &step {
            Step::Wait(ms) => cluster.advance(Duration::from_millis(*ms)),
            Step::Late(ms) => {
                cluster.now += Duration::from_millis(*ms);
                let _ = cluster.poll();
            }
            Step::Poll => {
                let _ = cluster.poll();
                while cluster.consumer.poll_rebalance().is_some() {}
                cluster.consumer.ack_rebalance(cluster.now);
            }
            Step::Seek(p, offset) => {
                let _ = consumer.seek(&partitions[*p as usize], *offset, now);
            }
            Step::SeekToEnd(p) => {
                let _ = consumer.seek_to_end(&partitions[*p as usize..=*p as usize], now);
            }
            Step::Pause(p) => {
                let _ = consumer.pause(&partitions[*p as usize..=*p as usize], now);
            }
            Step::Resume(p) => {
                let _ = consumer.resume(&partitions[*p as usize..=*p as usize], now);
            }
            Step::Commit => {
                let _ = consumer.commit(None, Duration::from_secs(5), now);
            }
            Step::Committed => {
                let _ = consumer.committed(&partitions, Duration::from_secs(5), now);
            }
            Step::EndOffsets(ms) => {
                let _ = consumer.end_offsets(&partitions, Duration::from_millis(*ms), now);
            }
            Step::Subscribe => {
                if group {
                    let _ = consumer.subscribe(["t"], now);
                }
            }
            Step::Unsubscribe => {
                if group {
                    let _ = consumer.unsubscribe(now);
                }
            }
            Step::BrokerDown => cluster.broker(1).up = false,
            Step::BrokerUp => cluster.broker(1).up = true,
            Step::FetchError(p) => {
                cluster.log("t", *p as usize).fetch_error = ErrorCode::NOT_LEADER_OR_FOLLOWER.0;
            }
        }
        cluster.drive();
        assert_future(&cluster, &format!("{step:?}"));
        if let Step::FetchError(p) = step {
            // One failed fetch is enough; the partition heals.
            cluster.advance(Duration::from_millis(300));
            cluster.log("t", p as usize).fetch_error = 0;
        }
    }
    // And time can always move on: the consumer settles.
    cluster.advance(Duration::from_secs(60));
    assert_future(&cluster, "the end");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn poll_timeout_is_never_in_the_past_after_a_drain(
        group in any::<bool>(),
        zero_backoff in any::<bool>(),
        replies in prop::collection::vec(reply(), 0..60),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        run(group, zero_backoff, replies, steps);
    }
}
