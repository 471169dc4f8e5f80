//! What every controller is given: the store, the event recorder and the
//! clock.

use std::sync::Arc;

use driftless_store::Store;
use jiff::Timestamp;

use crate::events::Recorder;

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

/// Shared by the controllers of one daemon.
#[derive(Clone)]
pub struct Context {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Records events about objects.
    pub events: Arc<Recorder>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Context {
    /// A context over `store` with the system clock.
    pub fn new(store: Arc<dyn Store>, component: &str, host: &str) -> Context {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Context { events: Arc::new(Recorder::new(store.clone(), clock.clone(), component, host)), store, clock }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
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
