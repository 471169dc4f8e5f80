//! The rules kubelet applies to a pod's containers, as pure functions of
//! what was observed: restart back-off, probe thresholds, container states
//! and their reasons, pod phase. The pod worker that acts on them is built
//! on top; keeping the rules pure lets them be tested exactly, with no
//! clock or process involved.

pub mod backoff;
pub mod phase;
pub mod probe;
