//! Counters of what the webhook server did with each delivery: this
//! server's own (tests and status read them) and the process's
//! `driftless_webhook_deliveries_total` (`/metrics`).
//!
//! Owns only atomic counters; every delivery bumps `received` and exactly one
//! outcome. Must not hold anything from a delivery (no names, no bodies).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared between the server and whoever reports them.
#[derive(Debug, Default)]
pub struct HookStats {
    received: AtomicU64,
    accepted: AtomicU64,
    ignored: AtomicU64,
    unauthorized: AtomicU64,
    too_large: AtomicU64,
    rate_limited: AtomicU64,
    malformed: AtomicU64,
    rejected: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookCounts {
    /// Requests that reached the server, whatever became of them.
    pub received: u64,
    /// Verified pushes of the watched branch: the callback was called.
    pub accepted: u64,
    /// Verified deliveries about something else: another branch, a tag, a
    /// ping, a non-push event.
    pub ignored: u64,
    /// Missing, malformed or wrong signatures (401).
    pub unauthorized: u64,
    /// Bodies over the limit (413).
    pub too_large: u64,
    /// Refused by the token bucket (429).
    pub rate_limited: u64,
    /// Verified bodies that are not the documented JSON (400), or bodies that
    /// never finished arriving (408).
    pub malformed: u64,
    /// Wrong path (404) or method (405).
    pub rejected: u64,
}

/// One outcome of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    Ignored,
    Unauthorized,
    TooLarge,
    RateLimited,
    Malformed,
    Rejected,
}

impl HookStats {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters now. Each is read on its own, so a snapshot taken during
    /// a delivery may show it received but not yet counted.
    pub fn snapshot(&self) -> HookCounts {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HookCounts {
            received: read(&self.received),
            accepted: read(&self.accepted),
            ignored: read(&self.ignored),
            unauthorized: read(&self.unauthorized),
            too_large: read(&self.too_large),
            rate_limited: read(&self.rate_limited),
            malformed: read(&self.malformed),
            rejected: read(&self.rejected),
        }
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Ignored => &self.ignored,
            Outcome::Unauthorized => &self.unauthorized,
            Outcome::TooLarge => &self.too_large,
            Outcome::RateLimited => &self.rate_limited,
            Outcome::Malformed => &self.malformed,
            Outcome::Rejected => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let result = match outcome {
            Outcome::Accepted => "triggered",
            Outcome::Ignored => "ignored",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TooLarge => "too_large",
            Outcome::RateLimited => "rate_limited",
            Outcome::Malformed => "malformed",
            Outcome::Rejected => "rejected",
        };
        driftless_telemetry::metrics().webhook_deliveries.get_or_create(&driftless_telemetry::ResultLabel { result }).inc();
    }
}
