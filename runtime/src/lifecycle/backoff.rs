//! Crash-loop back-off, as kubelet does it: 10 s after the first crash,
//! doubling to at most 5 min, forgotten after 10 min of running.

use std::time::Duration;

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long without exiting starts over at
/// [`INITIAL`] after its next exit.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// The back-off state of one container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The delay to apply before the next restart; zero before any crash.
    delay: Duration,
}

impl Backoff {
    /// Records an exit after the container ran for `ran`, and returns how
    /// long to wait before restarting it.
    pub fn next(&mut self, ran: Duration) -> Duration {
        self.delay = if self.delay.is_zero() || ran >= RESET_AFTER {
            INITIAL
        } else {
            (self.delay * 2).min(MAX)
        };
        self.delay
    }

    /// The delay currently in force.
    pub fn current(&self) -> Duration {
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_ten_seconds_to_five_minutes() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next(Duration::from_secs(1)).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_minutes_of_running_resets_it() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next(Duration::from_secs(1));
        }
        assert_eq!(backoff.current(), Duration::from_secs(160));
        assert_eq!(backoff.next(RESET_AFTER), INITIAL);
        assert_eq!(backoff.next(Duration::from_secs(1)), Duration::from_secs(20));
    }
}
