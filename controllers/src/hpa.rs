//! The HorizontalPodAutoscaler, as upstream's controller
//! (`pkg/controller/podautoscaler`) runs it ([`controller`]), on its
//! arithmetic: how many replicas a metric asks for ([`replicas`]) and how
//! fast the count may move there ([`behavior`]), pure functions of what
//! they are given, so the rules are tested against the examples
//! Kubernetes documents.
//!
//! Must not touch: git; the controller writes only its HPAs' status and
//! their targets' `spec.replicas`.

pub mod behavior;
pub mod controller;
pub mod replicas;
#[cfg(test)]
mod tests;
