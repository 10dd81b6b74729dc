//! What the consumer logs for one rebalance and one commit, captured with a
//! `tracing` subscriber: the steps inside a `rebalance` span and a `commit`
//! span, with generation and member id, at the levels the README gives
//! (`info` for rebalance steps, `debug` for requests and commits), and
//! nothing at `info` in steady state; and the warning for fetches that keep
//! failing before their response is complete.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use odradek_core::OffsetAndMetadata;
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn a_rebalance_and_a_commit_are_logged_inside_their_spans() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut config = config();
        config.group_id = Some("g".into());
        config.enable_auto_commit = false;
        config.session_timeout = Duration::from_secs(10);
        config.heartbeat_interval = Duration::from_secs(1);
        let mut cluster = Cluster::new(config, 1);
        cluster.in_order = true;
        cluster.topic("t", 1);
        cluster.log("t", 0).append_values(5);
        cluster.group.leader = Some("leader-0".into());
        cluster.group.assignment = vec![tp("t", 0)];
        cluster.consumer.subscribe(["t"], cluster.now).unwrap();
        cluster.run_until(Duration::from_secs(10), |c| {
            let _ = c.poll();
            let assigned = c.rebalance_events();
            if !assigned.is_empty() {
                c.consumer.ack_rebalance(c.now);
            }
            !c.consumer.assignment().is_empty()
        });
        let joining = captured.take();
        let steps = lines_with(&joining, "rebalance{group=g}");
        let wanted = [
            "joining the group",
            "joined the group",
            "assignment received",
        ];
        for step in wanted {
            let line = steps
                .iter()
                .find(|l| l.contains(step))
                .unwrap_or_else(|| panic!("no {step:?} in the rebalance span:\n{joining}"));
            assert!(line.contains(" INFO "), "{line}");
        }
        let joined = lines_with(&joining, "joined the group")[0];
        assert!(
            joined.contains("generation=1 member_id=member-1 leader=false"),
            "{joined}"
        );
        let assigned = lines_with(&joining, "assignment received")[0];
        assert!(assigned.contains("generation=1"), "{assigned}");
        assert!(assigned.contains("member_id=member-1"), "{assigned}");
        assert!(assigned.contains("added=[t-0]"), "{assigned}");
        // Requests at debug, each in its own span with the API and broker.
        assert!(
            joining.lines().any(|l| l.contains(" DEBUG ")
                && l.contains("request{api=JoinGroup")
                && l.contains("broker=broker1:9092")
                && l.contains("response received")),
            "{joining}"
        );

        // Steady state: fetches and heartbeats say nothing at info.
        for _ in 0..5 {
            cluster.poll().unwrap();
            cluster.advance(Duration::from_secs(1));
        }
        let steady = captured.take();
        let loud: Vec<&str> = steady
            .lines()
            .filter(|l| l.contains(" INFO ") || l.contains(" WARN "))
            .collect();
        assert!(loud.is_empty(), "{loud:#?}");

        let offsets = [(tp("t", 0), OffsetAndMetadata::new(5))].into();
        cluster
            .consumer
            .commit(Some(offsets), Duration::from_secs(5), cluster.now)
            .unwrap();
        cluster.drive();
        let committing = captured.take();
        let commit = lines_with(&committing, "commit{group=g commit=1 kind=Sync}");
        assert!(
            commit
                .iter()
                .any(|l| l.contains("commit sent") && l.contains("t-0")),
            "{committing}"
        );
        assert!(
            commit.iter().any(|l| l.contains("commit done")),
            "{committing}"
        );
    });
}

#[test]
fn fetches_failing_mid_response_are_logged_once_they_repeat() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut cluster = Cluster::new(config(), 1);
        cluster.topic("t", 1);
        for _ in 0..20 {
            cluster.log("t", 0).append_values(50);
        }
        // Every response is cut after 4 KiB and the connection closed.
        cluster.broker(1).script.push(Box::new(|h, _| {
            (h.api_key == odradek_core::protocol::ApiKey::Fetch.code())
                .then_some(Action::PartialThenDisconnect(4096))
        }));
        cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
        cluster.advance(Duration::from_secs(5));
        let log = captured.take();
        let warnings = lines_with(&log, "asking for less");
        assert!(!warnings.is_empty(), "no warning:\n{log}");
        assert!(
            warnings
                .iter()
                .all(|l| l.contains("WARN") && l.contains("broker=1")),
            "{warnings:?}"
        );
    });
}
