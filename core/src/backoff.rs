//! Exponential backoff with jitter, from a seeded generator so runs repeat,
//! and [`Retry`], the state of a request that is retried with backoff.

use std::time::{Duration, Instant};

use crate::timer::{Timer, TimerTable};

/// SplitMix64: a tiny, well-distributed generator; the core may not read
/// entropy itself, so the seed comes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Kafka's backoff shape (KIP-580): `initial * 2^attempts`, capped at `max`,
/// then spread by ±20% jitter so clients do not retry in lockstep.
/// The jitter comes from the backoff's own seeded generator.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    rng: Rng,
}

impl Backoff {
    pub(crate) const JITTER: f64 = 0.2;

    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self {
            initial,
            max: max.max(initial),
            rng: Rng::new(seed),
        }
    }

    /// The wait before retry number `attempts + 1` (0 = first retry).
    pub(crate) fn delay(&mut self, attempts: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX));
        let base = exp.min(self.max);
        let factor = 1.0 - Self::JITTER + 2.0 * Self::JITTER * self.rng.next_f64();
        base.mul_f64(factor)
    }
}

/// A request that is retried with backoff: whether it is in flight, how
/// often it failed in a row, and its backoff, which is `timer` in the
/// [`TimerTable`] (the request may go again once that timer is gone).
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    timer: Timer,
    failures: u32,
    in_flight: bool,
    /// The backoff timer may be set: without it, `ready` needs no lookup
    /// in the timer table (a hash of the timer) on every scan.
    backing_off: bool,
}

impl Retry {
    /// A request never sent, whose backoff is `timer`.
    pub(crate) fn new(timer: Timer) -> Self {
        Self {
            timer,
            failures: 0,
            in_flight: false,
            backing_off: false,
        }
    }

    /// Neither in flight nor backing off.
    pub(crate) fn ready(&self, timers: &TimerTable) -> bool {
        let backing_off = self.backing_off && timers.is_set(&self.timer);
        !self.in_flight && !backing_off
    }

    /// Whether the request is out and not answered yet.
    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The request went out.
    pub(crate) fn sent(&mut self) {
        self.in_flight = true;
    }

    /// The request is no longer in flight (answered, or forgotten), with
    /// no verdict on whether it worked.
    pub(crate) fn settled(&mut self) {
        self.in_flight = false;
    }

    /// The request worked: the next failure backs off from the start.
    pub(crate) fn succeeded(&mut self, timers: &mut TimerTable) {
        self.in_flight = false;
        self.failures = 0;
        self.stop(timers);
    }

    fn stop(&mut self, timers: &mut TimerTable) {
        if std::mem::take(&mut self.backing_off) {
            timers.stop(&self.timer);
        }
    }

    /// The request failed: it may go again after a backoff that grows with
    /// each failure in a row.
    pub(crate) fn failed(&mut self, now: Instant, backoff: &mut Backoff, timers: &mut TimerTable) {
        self.in_flight = false;
        self.back_off(now, backoff, timers);
        self.failures = self.failures.saturating_add(1);
    }

    /// Holds the next attempt back for the backoff of the current failure
    /// count (without counting a failure).
    pub(crate) fn back_off(
        &mut self,
        now: Instant,
        backoff: &mut Backoff,
        timers: &mut TimerTable,
    ) {
        self.backing_off = true;
        timers.set(self.timer.clone(), now + backoff.delay(self.failures));
    }

    /// Counts a failure without backing off yet.
    pub(crate) fn count_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Forgets failures and backoff (the request changed: a seek, a reset).
    pub(crate) fn reset(&mut self, timers: &mut TimerTable) {
        self.in_flight = false;
        self.failures = 0;
        self.stop(timers);
    }

    /// Stops the backoff timer (the request is gone for good).
    pub(crate) fn cancel(&self, timers: &mut TimerTable) {
        timers.stop(&self.timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 7);
        for (attempts, base) in [
            (0, 100.0),
            (1, 200.0),
            (2, 400.0),
            (3, 800.0),
            (4, 1000.0),
            (40, 1000.0),
        ] {
            for _ in 0..100 {
                let d = backoff.delay(attempts).as_secs_f64() * 1000.0;
                assert!(
                    d >= base * 0.8 - 1e-6 && d <= base * 1.2 + 1e-6,
                    "{attempts}: {d}"
                );
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
