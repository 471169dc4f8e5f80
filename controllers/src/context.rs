//! What every controller is given: the store, the event recorder and the
//! clock.

use std::sync::Arc;

use driftless_store::Store;
use jiff::Timestamp;

use driftless_events::Recorder;

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

    /// A context over a store across the network (an agent's copy of the
    /// control plane): its events are written in the background
    /// ([`Recorder::queued`]).
    pub fn remote(store: Arc<dyn Store>, component: &str, host: &str) -> Result<Context, std::io::Error> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Context { events: Arc::new(Recorder::queued(store.clone(), clock.clone(), component, host)?), store, clock })
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

pub use driftless_events::{Clock, SystemClock, k8s_time, rfc3339};
