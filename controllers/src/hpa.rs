//! The HorizontalPodAutoscaler's arithmetic, as upstream's controller
//! (`pkg/controller/podautoscaler`) does it: how many replicas a metric
//! asks for ([`replicas`]) and how fast the count may move there
//! ([`behavior`]). Pure functions of what they are given, so the rules
//! are tested against the examples Kubernetes documents.
//!
//! Must not touch: the store, the clock or metrics; the controller that
//! acts on these (issue 15) reads and writes those.

pub mod behavior;
pub mod replicas;
#[cfg(test)]
mod tests;
