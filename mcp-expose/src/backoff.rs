//! Exponential backoff, the one schedule for trying again: the connector reconnecting, the
//! bridge restarting a child that crashed, the tunnel restarting cloudflared. It imports
//! nothing of the crate's own.

use std::{
    hash::{BuildHasher as _, RandomState},
    time::{Duration, Instant},
};

/// Delays that double from `base` up to `cap`; with jitter, each is scaled by a random factor
/// in [0.5, 1.0], so that many servers restarting at once spread out.
///
/// `next_delay` walks the schedule and `reset` starts it again; `delay(n)` is its `n`th step
/// for a caller that counts attempts itself.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: bool,
    attempt: u32,
}

impl Backoff {
    /// `base`, `2 * base`, `4 * base`, ... up to `cap`, without jitter.
    pub(crate) const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            jitter: false,
            attempt: 0,
        }
    }

    /// The same delays, each scaled by a random factor in [0.5, 1.0].
    #[cfg_attr(not(feature = "tunnel"), allow(dead_code))]
    pub(crate) const fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The delay before attempt `attempt` (0 is the first retry): `base * 2^attempt`, at most
    /// `cap`, jittered if asked.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.cap);
        if self.jitter { jitter(step) } else { step }
    }

    /// The delay to wait now; the next one is twice as long (up to the cap).
    #[cfg_attr(not(any(feature = "connect", feature = "tunnel")), allow(dead_code))]
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Starts again from `base` (after a success that lasted).
    #[cfg_attr(not(any(feature = "connect", feature = "tunnel")), allow(dead_code))]
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// `delay` scaled by a random factor in [0.5, 1.0].
pub(crate) fn jitter(delay: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let factor = 0.5 + (random % 1000) as f64 / 2000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.delay(3), Duration::from_millis(800));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn jitter_keeps_half_to_all_of_each_delay() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).with_jitter();
        for step in [1, 2, 4, 8, 16, 32, 60, 60] {
            let delay = b.next_delay();
            let full = Duration::from_secs(step);
            assert!(delay >= full / 2 && delay <= full, "{delay:?} for {full:?}");
        }
    }
}
