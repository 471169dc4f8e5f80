//! Crash-loop back-off, as kubelet does it: the first restart is
//! immediate, then 10 s, doubling to at most 5 min; forgotten after 10 min
//! of running.

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
    /// The delay the next exit will wait; zero until the first restart.
    next: Duration,
}

impl Backoff {
    /// Records an exit after the container ran for `ran`, and returns how
    /// long to wait before restarting it (kubelet restarts at once the
    /// first time, then backs off).
    pub fn next(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = if delay.is_zero() { INITIAL } else { (delay * 2).min(MAX) };
        delay
    }

    /// The delay the next exit will wait.
    pub fn upcoming(&self) -> Duration {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_at_once_then_doubles_from_ten_seconds_to_five_minutes() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| backoff.next(Duration::from_secs(1)).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_minutes_of_running_resets_it() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next(Duration::from_secs(1));
        }
        assert_eq!(backoff.upcoming(), Duration::from_secs(160));
        assert_eq!(backoff.next(RESET_AFTER), Duration::ZERO, "a long run starts over");
        assert_eq!(backoff.next(Duration::from_secs(1)), INITIAL);
    }
}
