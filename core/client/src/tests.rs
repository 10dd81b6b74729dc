//! The driver policy, step by step, with a fake runtime and a fake clock:
//! no socket, no sleeping. Each test feeds the driver the inputs a runtime
//! would (connection reports, wake-ups, the clock moving) and checks what
//! it decided.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use odradek_core::{
    ConnId, ConsumerConfig, Error, OffsetAndMetadata, RuntimeFailure, TopicPartition,
};

use crate::driver::{Driver, Handled, Next};
use crate::runtime::{Connection, Link, Runtime};
use crate::session::Stopped;
use crate::shared::{ForgetCommit, Input, Report, Shared, Wait};

/// What the fake runtime saw.
#[derive(Default)]
struct Log {
    opened: Vec<Link>,
    sent: Vec<ConnId>,
    closed: Vec<ConnId>,
}

/// A runtime whose clock only moves when the test says so, and whose
/// connections only record what the driver does with them.
#[derive(Clone)]
struct Fake {
    clock: Arc<Mutex<Instant>>,
    log: Arc<Mutex<Log>>,
}

impl Fake {
    fn new() -> Self {
        Fake {
            clock: Arc::new(Mutex::new(base_instant())),
            log: Arc::default(),
        }
    }

    fn set(&self, now: Instant) {
        *self.clock.lock().unwrap() = now;
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

/// Any instant will do as the fake clock's start: only differences matter.
#[allow(clippy::disallowed_methods)]
fn base_instant() -> Instant {
    Instant::now()
}

struct FakeConn {
    conn: ConnId,
    log: Arc<Mutex<Log>>,
}

impl Connection for FakeConn {
    fn send(&mut self, _: Bytes) {
        self.log.lock().unwrap().sent.push(self.conn);
    }
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.log.lock().unwrap().closed.push(self.conn);
    }
}

impl Runtime for Fake {
    type Conn = FakeConn;

    fn start() -> Result<Self, Error> {
        Err(Error::Runtime(RuntimeFailure::DriverNotStarted(
            "the tests build the fake runtime".into(),
        )))
    }

    fn now(&self) -> Instant {
        *self.clock.lock().unwrap()
    }

    fn spawn_driver(&self, _: Driver<Self>) -> Result<(), Error> {
        Err(Error::Runtime(RuntimeFailure::DriverNotStarted(
            "the tests run the driver themselves".into(),
        )))
    }

    fn connect(&self, link: Link) -> FakeConn {
        let conn = link.conn();
        self.log().opened.push(link);
        FakeConn {
            conn,
            log: self.log.clone(),
        }
    }
}

/// A driver for a consumer assigned one partition, with `properties` on
/// top of a bootstrap address nothing is asked of.
fn driver(properties: &[(&str, &str)]) -> (Fake, Arc<Shared>, Driver<Fake>) {
    let fake = Fake::new();
    let mut all = vec![("bootstrap.servers", "127.0.0.1:9")];
    all.extend_from_slice(properties);
    let mut config = ConsumerConfig::from_properties(all).unwrap();
    config.random_seed = Some(7);
    let core = odradek_core::Consumer::new(config, fake.now()).unwrap();
    let shared = Arc::new(Shared::new(core, odradek_core::BuilderParts::default()));
    shared
        .lock()
        .core
        .assign([TopicPartition::new("t", 0)], fake.now())
        .unwrap();
    let driver = Driver::new(fake.clone(), shared.clone());
    (fake, shared, driver)
}

fn report(conn: ConnId, report: Report) -> Option<Input> {
    Some(Input::Conn(conn, report))
}

/// The first connection the driver opened.
fn first_conn(fake: &Fake) -> ConnId {
    fake.log()
        .opened
        .first()
        .expect("a connection was opened")
        .conn()
}

#[test]
fn reports_from_a_connection_already_closed_are_dropped() {
    let (fake, _, mut driver) = driver(&[]);
    let now = fake.now();
    assert!(matches!(driver.drain(), Next::Wait(_)));
    let conn = first_conn(&fake);

    let live = driver.handle(report(conn, Report::Connected), now);
    assert!(!live.stale);
    driver.drain();
    assert!(fake.log().sent.contains(&conn), "the handshake went out");

    // The peer closes: the driver drops the connection...
    assert!(!driver.handle(report(conn, Report::Closed), now).stale);
    assert_eq!(fake.log().closed, vec![conn]);
    driver.drain();
    // ...and what its reader still had queued never reaches the core.
    let stale = [
        Report::Data(Bytes::from_static(b"\0\0\0\x04late")),
        Report::Connected,
        Report::Closed,
        Report::Failed("late".into()),
    ];
    for late in stale {
        let handled = driver.handle(report(conn, late), now);
        assert_eq!(
            handled,
            Handled {
                stale: true,
                timers_ran: false
            }
        );
    }
    // A connection the driver never opened is stale too.
    assert!(
        driver
            .handle(report(ConnId(9_999), Report::Connected), now)
            .stale
    );
}

#[test]
fn timers_run_when_inputs_keep_arriving_after_the_deadline() {
    let (fake, _, mut driver) = driver(&[]);
    let Next::Wait(Some(deadline)) = driver.drain() else {
        panic!("the core has a deadline (connection setup)")
    };
    let conn = first_conn(&fake);

    // Before the deadline, an input is just an input.
    let early = deadline - Duration::from_millis(1);
    assert!(!driver.handle(Some(Input::Wake), early).timers_ran);
    assert!(
        !driver
            .handle(report(conn, Report::Connected), early)
            .timers_ran
    );
    assert_eq!(driver.drain(), Next::Wait(Some(deadline)));

    // After it, inputs (never the timer itself) keep coming: the timers
    // still run, on the first of them.
    let late = deadline + Duration::from_millis(1);
    let data = Report::Data(Bytes::new());
    assert!(driver.handle(report(conn, data), late).timers_ran);
    let Next::Wait(next) = driver.drain() else {
        panic!("the consumer is not closed")
    };
    assert!(
        next.is_none_or(|next| next > late),
        "the core's timers ran: the next deadline {next:?} is after {late:?}"
    );
    assert!(!driver.handle(Some(Input::Wake), late).timers_ran);
}

#[test]
fn a_closed_consumer_stops_the_driver_closes_connections_and_ends_waits() {
    let (fake, shared, mut driver) = driver(&[]);
    driver.drain();
    let conn = first_conn(&fake);
    shared
        .lock()
        .close(odradek_core::CloseOptions::new(), fake.now());
    let mut steps = 0;
    while driver.drain() != Next::Stop {
        steps += 1;
        assert!(steps < 10, "close never finished");
        driver.handle(Some(Input::Wake), fake.now());
    }
    drop(driver);
    assert_eq!(fake.log().closed, vec![conn]);
    assert_eq!(shared.lock().stopped(), Some(&Stopped::Closed));
    // Waiting calls return at once, even one that would wait forever.
    let forever = Wait::new(None, |_: &mut _, _| None::<Result<(), Error>>, Ok(()));
    let waited = shared.wait_blocking(&fake, forever);
    assert!(matches!(waited, Err(Error::Closed)), "{waited:?}");
    // A reader that is still running learns it should stop.
    let link = fake.log().opened[0].clone();
    assert!(!link.received(Bytes::from_static(b"late")));
    assert!(!link.connected());
}

// The driver runs on a thread, as the thread runtime runs it, so that a
// driver that never stops fails the test instead of hanging it.
#[allow(clippy::disallowed_methods)]
#[test]
fn a_panic_on_the_driver_fails_waiting_calls() {
    let (fake, shared, driver) = driver(&[("group.id", "g"), ("default.api.timeout.ms", "100")]);
    let offsets = BTreeMap::from([(TopicPartition::new("t", 0), OffsetAndMetadata::new(1))]);
    let start = fake.now();
    shared
        .lock()
        .commit_async(
            Some(offsets),
            Box::new(|_| panic!("a callback that panics")),
            start,
        )
        .unwrap();
    // The commit's timeout has passed by the time the driver first wakes.
    fake.set(start + Duration::from_millis(150));
    shared.wake_driver();
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        driver.run_blocking();
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the driver stopped after its callback panicked");
    runner.join().unwrap();
    let stopped = shared.lock().stopped().cloned();
    assert_eq!(
        stopped,
        Some(Stopped::Panicked("a callback that panics".into()))
    );
    let forever = Wait::new(None, |_: &mut _, _| None::<Result<(), Error>>, Ok(()));
    let waited = shared.wait_blocking(&fake, forever);
    assert!(
        matches!(&waited, Err(Error::Runtime(RuntimeFailure::DriverPanicked(m))) if m.contains("a callback that panics")),
        "{waited:?}"
    );
    let log = fake.log();
    assert_eq!(
        log.closed.len(),
        log.opened.len(),
        "every connection closed"
    );
}

#[test]
fn the_inbox_hands_over_reports_in_order_and_coalesces_wake_ups() {
    let (_, shared, _driver) = driver(&[]);
    let inbox = &shared.inbox;
    assert_eq!(inbox.take(), None);
    inbox.wake();
    inbox.wake();
    assert!(inbox.push(ConnId(1), Report::Connected));
    assert!(inbox.push(ConnId(1), Report::Closed));
    assert_eq!(
        inbox.take(),
        Some(Input::Conn(ConnId(1), Report::Connected))
    );
    // Taking anything clears the wake-up: a drain follows every input.
    assert_eq!(inbox.take(), Some(Input::Conn(ConnId(1), Report::Closed)));
    assert_eq!(inbox.take(), None);
    inbox.wake();
    assert_eq!(inbox.take(), Some(Input::Wake));
    assert_eq!(inbox.take(), None);
    // Nothing to wait for: an expired deadline returns at once.
    assert_eq!(inbox.next_until(Some(base_instant())), None);
}

#[test]
fn a_commit_outcome_nobody_waits_for_is_dropped_and_a_taken_one_leaves_no_trace() {
    let (fake, shared, mut driver) =
        driver(&[("group.id", "g"), ("default.api.timeout.ms", "100")]);
    let offsets = || BTreeMap::from([(TopicPartition::new("t", 0), OffsetAndMetadata::new(1))]);
    let start = fake.now();
    let (waited, _) = shared.lock().start_commit(Some(offsets()), start).unwrap();
    let (abandoned, _) = shared.lock().start_commit(Some(offsets()), start).unwrap();
    let mut waiting = ForgetCommit::new(shared.clone(), waited);
    // The caller of the second commit went away (its future was dropped).
    drop(ForgetCommit::new(shared.clone(), abandoned));
    assert_eq!(shared.lock().unwatched_commits(), 1);
    assert_eq!(waiting.take(&mut shared.lock()), None);

    // No coordinator: both commits time out.
    driver.drain();
    driver.handle(Some(Input::Wake), start + Duration::from_millis(150));
    driver.drain();
    let outcome = waiting.take(&mut shared.lock());
    assert!(matches!(outcome, Some(Err(_))), "{outcome:?}");
    drop(waiting);
    let mut session = shared.lock();
    assert_eq!(
        session.take_commit_result(abandoned),
        None,
        "dropped on arrival"
    );
    assert_eq!(session.unwatched_commits(), 0, "nothing left behind");
}
