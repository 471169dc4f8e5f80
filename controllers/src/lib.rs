//! The control plane's controllers. Each reconciles one kind of object in
//! the store toward what it asks for, with Kubernetes' semantics: the
//! ReplicaSet and ReplicationController controller, the Deployment and
//! StatefulSet, DaemonSet, Job and CronJob controllers, the
//! HorizontalPodAutoscaler and the node's metrics sampler, the storage binder and provisioner, the garbage
//! collector, the scheduler, and the node agent (kubelet) that runs bound
//! pods on the node's runtime and reports their status.
//!
//! Owns: the reconcile loop ([`runner`], shaped like kube-runtime's
//! `Controller`) and every write of derived objects
//! (ReplicaSets, Pods, claims, volumes) and of status.
//!
//! Must not touch: git or the manifests (the sync loop writes what git
//! declares; controllers never change a declared object's spec, except the
//! fields the API server allocates and the `spec.replicas` an HPA owns),
//! the network configuration, or
//! containers other than through the node contract
//! ([`driftless_nodeapi::PodRuntime`]).

pub mod context;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
mod error;
pub mod eviction;
pub mod gc;
pub mod hpa;
pub mod job;
pub mod kubelet;
pub mod lifecycle;
pub mod metrics;
pub mod node;
pub mod nodeipam;
pub mod owner;
mod periodic;
pub mod podgc;
pub mod pods;
pub mod replicaset;
mod revisions;
pub mod runner;
pub mod scheduler;
pub mod services;
pub mod statefulset;
pub mod storage;
#[cfg(test)]
mod testing;

pub use context::{Clock, Context, SystemClock};
pub use driftless_events as events;
pub use error::ReconcileError;
pub use runner::{Action, Reconciler, RunOptions, Watch};
