//! Probe results to probe state, with Kubernetes' thresholds: a probe
//! changes its verdict only after `successThreshold` successes or
//! `failureThreshold` failures in a row, and not before
//! `initialDelaySeconds`.

use std::time::Duration;

/// A probe's timing and thresholds (defaults already applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Wait this long after the container starts before the first probe.
    pub initial_delay: Duration,
    /// Time between probes.
    pub period: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
    /// Successes in a row that make a failing probe pass.
    pub success_threshold: u32,
    /// Failures in a row that make a passing probe fail.
    pub failure_threshold: u32,
}

impl Default for ProbeSettings {
    /// Kubernetes' defaults.
    fn default() -> Self {
        ProbeSettings {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

/// What one probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Success,
    /// The check failed (or timed out).
    Failure,
}

/// The running verdict of one probe of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeState {
    settings: ProbeSettings,
    passing: bool,
    streak: u32,
}

impl ProbeState {
    /// A probe that starts `passing` (liveness starts passing; readiness
    /// and startup start failing, as in Kubernetes).
    pub fn new(settings: ProbeSettings, passing: bool) -> ProbeState {
        ProbeState { settings, passing, streak: 0 }
    }

    /// Whether a probe is due `since_start` after the container started,
    /// given when the last one ran.
    pub fn due(&self, since_start: Duration, since_last: Option<Duration>) -> bool {
        since_start >= self.settings.initial_delay && since_last.is_none_or(|d| d >= self.settings.period)
    }

    /// How long until a probe is due (zero when it is), as [`Self::due`]
    /// counts.
    pub fn due_in(&self, since_start: Duration, since_last: Option<Duration>) -> Duration {
        let delay = self.settings.initial_delay.saturating_sub(since_start);
        let period = since_last.map_or(Duration::ZERO, |d| self.settings.period.saturating_sub(d));
        delay.max(period)
    }

    /// Records one result; returns the verdict after it.
    pub fn record(&mut self, outcome: Outcome) -> bool {
        let agrees = (outcome == Outcome::Success) == self.passing;
        if agrees {
            self.streak = 0;
            return self.passing;
        }
        self.streak += 1;
        let needed = if self.passing { self.settings.failure_threshold } else { self.settings.success_threshold };
        if self.streak >= needed.max(1) {
            self.passing = !self.passing;
            self.streak = 0;
        }
        self.passing
    }

    /// The current verdict.
    pub fn passing(&self) -> bool {
        self.passing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Failure, Success};

    #[test]
    fn the_wait_until_a_probe_is_due_agrees_with_when_it_is() {
        let settings = ProbeSettings { initial_delay: Duration::from_secs(5), period: Duration::from_secs(2), ..Default::default() };
        let probe = ProbeState::new(settings, false);
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Before the initial delay, then the first run, then every period.
        assert_eq!(probe.due_in(s(1), None), s(4));
        assert_eq!(probe.due_in(s(5), None), Duration::ZERO);
        assert_eq!(probe.due_in(s(6), Some(ms(500))), ms(1500));
        assert_eq!(probe.due_in(s(9), Some(s(3))), Duration::ZERO);
        for (since_start, since_last) in [(s(1), None), (s(5), None), (s(6), Some(ms(500))), (s(9), Some(s(3))), (s(7), Some(s(2)))] {
            assert_eq!(probe.due(since_start, since_last), probe.due_in(since_start, since_last).is_zero(), "{since_start:?} {since_last:?}");
        }
    }

    #[test]
    fn a_liveness_probe_fails_after_the_failure_threshold_in_a_row() {
        let mut probe = ProbeState::new(ProbeSettings::default(), true);
        assert!(probe.record(Failure));
        assert!(probe.record(Failure));
        assert!(probe.record(Success), "a success in between resets the count");
        assert!(probe.record(Failure));
        assert!(probe.record(Failure));
        assert!(!probe.record(Failure), "three in a row");
    }

    #[test]
    fn readiness_needs_the_success_threshold() {
        let settings = ProbeSettings { success_threshold: 2, failure_threshold: 1, ..Default::default() };
        let mut probe = ProbeState::new(settings, false);
        assert!(!probe.record(Success));
        assert!(probe.record(Success));
        assert!(!probe.record(Failure), "failure threshold 1 flips at once");
    }

    #[test]
    fn probes_wait_for_the_initial_delay_and_the_period() {
        let settings = ProbeSettings { initial_delay: Duration::from_secs(5), period: Duration::from_secs(2), ..Default::default() };
        let probe = ProbeState::new(settings, false);
        assert!(!probe.due(Duration::from_secs(4), None));
        assert!(probe.due(Duration::from_secs(5), None));
        assert!(!probe.due(Duration::from_secs(6), Some(Duration::from_secs(1))));
        assert!(probe.due(Duration::from_secs(7), Some(Duration::from_secs(2))));
    }
}
