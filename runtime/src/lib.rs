//! The node runtime: real containers on youki's `libcontainer`.
//!
//! Owns: the node contract's implementation ([`node::Node`], a
//! `driftless_nodeapi::PodRuntime`); Kubernetes' `Pod` to what runs, with
//! kubelet's rules ([`podspec`]); the pod workers that keep containers
//! running and probe them ([`pod`], with kubelet's rules as pure functions
//! in [`lifecycle`]); images for pods by pull policy ([`images`]); OCI
//! bundles for containers ([`bundle`]) with seccomp ([`seccomp`]) and
//! volumes ([`volumes`]); the helper process that runs one container
//! (`driftless-shim`, [`shim`], with the static reaper, [`reaper_binary`]),
//! forked by a fork server ([`forkserver`]), launching and observing it
//! from the daemon ([`launch`]), the files
//! through which the two talk ([`status`], [`log`]); exec into running
//! containers ([`exec`]); root filesystems ([`rootfs`]) and cgroups
//! ([`cgroups`]); pod sandboxes (shared namespaces, [`sandbox`]); and pod
//! networking (bridge, veth, addresses, the routes that keep pod and
//! service traffic on the node, [`network`]).
//!
//! Why a helper process: `libcontainer` `clone`s its caller, which is unsound
//! from a multi-threaded (tokio) process (youki#3011, youki#3027). So, like
//! containerd's shims and conmon, each container gets a small
//! single-threaded helper, started in its own session. It creates the
//! container, copies its output into a log, reaps it and records how it
//! ended, and it **outlives the daemon**: a restarted daemon finds running
//! containers through their status files instead of starting duplicates.
//!
//! **Architecture Invariant:** only this crate touches namespaces, cgroups
//! and container processes, and `libcontainer`'s container creation only
//! ever runs inside the helper, never in the daemon's process.
//!
//! Must not touch: manifests, git, the store of desired state. It is told
//! what to run.

pub mod bundle;
pub mod cgroups;
pub mod exec;
pub mod forkserver;
mod helper_ns;
pub mod images;
pub mod launch;
pub mod lifecycle;
pub mod network;
pub mod node;
pub mod pod;
pub mod podspec;
pub mod reaper_binary;
pub mod rootfs;
pub mod sandbox;
pub mod seccomp;
pub mod shim;
pub mod status;
pub mod usage;
pub mod volatile;
pub mod volumes;

pub use driftless_reaper::log;

pub use bundle::{ContainerConfig, MountSource, VolumeMount};
pub use launch::{Layout, Observed, RuntimeError};
pub use sandbox::Sandbox;
pub use status::{Exit, Status};
