//! The node contract: what the control plane asks of a node, and what a
//! node answers.
//!
//! Owns: the [`PodRuntime`] trait (run, stop, status, logs and exec of
//! pods, by uid) and its error ([`NodeError`]); the status a node reports
//! ([`PodStatus`] with its containers' states and the pod [`Phase`]); what
//! a pod refers to, as the node asks the control plane for it
//! ([`Resolve`], with images through [`Images`]); and a recording fake
//! ([`fake::FakeRuntime`]) that callers' tests run on.
//!
//! Must not touch: containers, namespaces, cgroups, mounts or the network
//! (the `runtime` crate implements the contract), or the store (the
//! control plane implements [`Resolve`]). It is light on purpose: the
//! kubelet, the API and the sync loop link this, not libcontainer.

pub mod fake;
mod resolve;
mod runtime;
mod status;
mod usage;

pub use resolve::{Credentials, ImageStep, Images, Resolve, ResolvedImage};
pub use runtime::{EXEC_RESIZE_ENV, EXEC_RESIZE_FD, NodeError, PodRuntime, SharedRuntime, StatusChanged};
pub use status::{ContainerState, ContainerStatus, Phase, PodStatus};
pub use usage::{ContainerUsage, Metrics, NodeUsage, NodeWindow, PodWindow, Usage};
