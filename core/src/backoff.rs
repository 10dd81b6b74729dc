//! Exponential backoff with jitter, from a seeded generator so runs repeat.

use std::time::Duration;

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
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) const JITTER: f64 = 0.2;

    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
        }
    }

    /// The wait before retry number `attempts + 1` (0 = first retry).
    pub(crate) fn delay(&self, attempts: u32, rng: &mut Rng) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX));
        let base = exp.min(self.max);
        let factor = 1.0 - Self::JITTER + 2.0 * Self::JITTER * rng.next_f64();
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut rng = Rng::new(7);
        for (attempts, base) in [
            (0, 100.0),
            (1, 200.0),
            (2, 400.0),
            (3, 800.0),
            (4, 1000.0),
            (40, 1000.0),
        ] {
            for _ in 0..100 {
                let d = backoff.delay(attempts, &mut rng).as_secs_f64() * 1000.0;
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
