//! Events about objects (`Scheduled`, `ScalingReplicaSet`, `Synced`...),
//! written to the store as core/v1 Events, and the clock that stamps them.
//!
//! Owns: the [`Recorder`] (aggregation of repeats, the bound on stored
//! events), reading the events about one object ([`about`]), and the
//! [`Clock`] trait with the system clock and Kubernetes' timestamp forms.
//!
//! Must not touch: anything but Event objects in the store. It is light on
//! purpose: the sync loop and the API record and read events through it
//! without linking the controllers or the node runtime.

mod clock;
mod recorder;

pub use clock::{Clock, SystemClock, k8s_time, rfc3339};
pub use recorder::{EventType, Recorder, about};
