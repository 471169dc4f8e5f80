//! The small process that watches a running container in its helper's
//! place: `driftless-reaper`.
//!
//! The helper (`driftless-shim`, in driftless-runtime) needs `libcontainer`
//! to create a container, but nothing of it while the container runs, and
//! every idle helper costs memory on every node. So once the container has
//! started, the helper `exec`s this reaper in its place: the same process
//! (children and the subreaper flag survive `exec`), a fraction of the
//! memory. The reaper copies the container's output into the CRI log
//! ([`log`]), reaps its init process ([`reap`]), then `exec`s the helper
//! again in its `cleanup` mode to delete the container and record how it
//! ended.
//!
//! The runtime's build links this binary statically and embeds it in the
//! helper (see runtime/build.rs), so an idle pod maps no shared libc or
//! loader: that is what keeps each helper under 2 MiB resident.
//!
//! Owns: the CRI log format and its rotation, reaping. Must not touch:
//! containers' creation or deletion, cgroups, namespaces, status files
//! (all the helper's), and it must stay small: std, `nix`, `humantime`.

pub mod log;
pub mod reap;

/// Now, as RFC 3339 with nanoseconds, the form Kubernetes and CRI logs use.
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
