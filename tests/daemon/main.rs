//! End-to-end tests of `driftless up`: the real binary syncing real git
//! repositories into real containers, observed through its API and CLI.
//!
//! Needs root (namespaces, cgroups, mounts, a bridge); CI runs as root.
//! Each test runs its own daemon on a data folder, bridge, pod CIDR,
//! service CIDR and cgroup root of its own, so tests run side by side, and
//! removes everything it made (pods, links, routes, mounts, cgroups,
//! processes) even when it fails (`Cluster`'s Drop).

#[path = "../support/browser.rs"]
#[allow(dead_code)]
mod browser;
mod cluster;
#[path = "../support/etcd.rs"]
#[allow(dead_code)]
mod etcd;
#[path = "../support/hostile_registry.rs"]
#[allow(dead_code)]
mod hostile_registry;
#[path = "../support/images.rs"]
#[allow(dead_code)]
mod images;
mod ingress;
#[path = "../support/netns.rs"]
mod netns;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../support/registry.rs"]
mod registry;

mod agents;
mod api;
mod autoscale;
mod config;
mod cronjobs;
mod daemonsets;
mod dashboard;
mod documented_examples;
mod foreign_images;
mod forge;
mod full_disk;
mod git_faults;
mod ha;
mod immutable;
mod jobs;
mod kubectl;
mod live_plan;
mod metrics;
mod multinode;
mod prometheus;
mod pull;
mod recovery;
mod refusal;
mod resource_bombs;
mod rollout;
mod scale;
mod services;
mod signed;
mod sops;
mod statefulset;
mod storage;
mod transaction_kill;
mod writes;
