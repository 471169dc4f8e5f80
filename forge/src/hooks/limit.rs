//! The token bucket every delivery passes before any work is done on it.
//!
//! It runs before the body is read and before the HMAC: a flood of 25 MiB
//! bodies must cost us a counter bump each, not a hash each. Owns only the
//! arithmetic; the server turns a refusal into 429 with `Retry-After`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A burst of `burst` deliveries, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Deliveries accepted back to back.
    pub burst: u32,
    /// Tokens added each second (may be fractional: 0.5 is one every 2 s).
    pub per_second: f64,
}

impl Default for RateLimit {
    /// A burst of 20 refilled at 5 a second: far above what a forge sends
    /// for one repository, far below what hurts.
    fn default() -> Self {
        RateLimit { burst: 20, per_second: 5.0 }
    }
}

impl RateLimit {
    /// Whether the limit can ever let a delivery through.
    pub fn is_valid(&self) -> bool {
        self.burst >= 1 && self.per_second.is_finite() && self.per_second > 0.0
    }
}

/// The bucket's state, shared by every connection.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        TokenBucket { limit, state: Mutex::new(State { tokens: f64::from(limit.burst), refilled: now }) }
    }

    /// Takes one token, or says how long until one is there.
    pub(crate) fn try_take(&self, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another thread panicked between two
        // float updates; the numbers are still usable.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - state.tokens) / self.limit.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(RateLimit { burst: 3, per_second: 2.0 }, t0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        let wait = bucket.try_take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later exactly one token is back.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(bucket.try_take(t1), Ok(()));
        assert!(bucket.try_take(t1).is_err());
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t2), Ok(()));
        }
        assert!(bucket.try_take(t2).is_err());
    }

    #[test]
    fn validity() {
        assert!(RateLimit::default().is_valid());
        assert!(!RateLimit { burst: 0, per_second: 1.0 }.is_valid());
        assert!(!RateLimit { burst: 1, per_second: 0.0 }.is_valid());
        assert!(!RateLimit { burst: 1, per_second: f64::NAN }.is_valid());
    }
}
