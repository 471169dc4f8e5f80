//! The time, behind a trait so tests can set it, and the forms Kubernetes
//! writes it in.

use jiff::Timestamp;

/// The time, behind a trait so tests can set it.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A timestamp as Kubernetes writes one.
pub fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `k8s-openapi`'s `Time` for a timestamp, truncated to whole seconds as
/// the API server stores it.
pub fn k8s_time(at: Timestamp) -> driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let seconds = Timestamp::from_second(at.as_second()).unwrap_or(at);
    driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(seconds)
}
