//! What a node measures of what it runs, and the metrics made of it.
//!
//! A node reads counters at an instant ([`ContainerUsage`], [`NodeUsage`]:
//! CPU time used so far, memory working set now); a rate needs two
//! readings, so [`Metrics::record`] keeps the previous one and turns each
//! new reading into usage over the window between them, in the units
//! `metrics.k8s.io` reports (nanocores, bytes), as metrics-server does with
//! kubelet's summaries. Working set is kubelet's definition: memory used
//! minus the inactive file cache, what the kernel cannot take back easily.
//!
//! Must not touch: cgroups or `/proc` (the runtime reads them), or the
//! store; pods are keyed by what the caller passes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One container's counters, read at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    /// The container's name in its pod.
    pub name: String,
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_nanoseconds: u64,
    /// Memory working set now, in bytes.
    pub memory_working_set: u64,
}

/// The node's counters, read at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// CPU time used by the whole machine since boot, in nanoseconds.
    pub cpu_nanoseconds: u64,
    /// Memory working set of the whole machine now, in bytes.
    pub memory_working_set: u64,
}

/// Usage over a window: what `metrics.k8s.io` reports for one container
/// (or for a node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Mean CPU over the window, in nanocores (10^-9 of a core).
    pub nanocores: u64,
    /// Memory working set at the window's end, in bytes.
    pub memory_bytes: u64,
}

/// A pod's usage over one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodWindow {
    /// When the window ended (Unix milliseconds).
    pub timestamp_ms: i64,
    /// Its length in milliseconds.
    pub window_ms: i64,
    /// Each container's usage, in the pod's order.
    pub containers: Vec<(String, Usage)>,
}

/// The node's usage over one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeWindow {
    /// The node's name.
    pub name: String,
    /// When the window ended (Unix milliseconds).
    pub timestamp_ms: i64,
    /// Its length in milliseconds.
    pub window_ms: i64,
    /// The machine's usage.
    pub usage: Usage,
}

#[derive(Debug, Default)]
struct State {
    /// The last reading of each pod's containers, and when.
    readings: HashMap<String, (i64, Vec<ContainerUsage>)>,
    /// The last window of each pod.
    pods: HashMap<String, PodWindow>,
    node_reading: Option<(String, i64, NodeUsage)>,
    node: Option<NodeWindow>,
}

/// The latest metrics of every pod on the node and of the node itself,
/// shared between the sampler that records them and the API that serves
/// them. Cloning shares.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    state: Arc<RwLock<State>>,
}

/// Mean nanocores between two cumulative readings; a counter that went
/// back (the container restarted) gives no rate.
fn nanocores(before: u64, after: u64, window_ms: i64) -> Option<u64> {
    let used = after.checked_sub(before)?;
    let window_ns = u64::try_from(window_ms).ok()?.checked_mul(1_000_000).filter(|w| *w > 0)?;
    Some(((u128::from(used) * 1_000_000_000) / u128::from(window_ns)) as u64)
}

impl Metrics {
    /// Metrics with nothing recorded.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records a reading of pod `key`'s containers at `now_ms`; once there
    /// are two, the pod has a window. A container new since the last
    /// reading (or restarted) gets a rate from the next one, so a pod's
    /// window covers only containers read twice.
    pub fn record(&self, key: &str, now_ms: i64, reading: Vec<ContainerUsage>) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((then, before)) = state.readings.get(key) {
            let window_ms = now_ms - then;
            let containers: Vec<(String, Usage)> = reading
                .iter()
                .filter_map(|c| {
                    let previous = before.iter().find(|b| b.name == c.name)?;
                    let nanocores = nanocores(previous.cpu_nanoseconds, c.cpu_nanoseconds, window_ms)?;
                    Some((c.name.clone(), Usage { nanocores, memory_bytes: c.memory_working_set }))
                })
                .collect();
            if containers.is_empty() {
                state.pods.remove(key);
            } else {
                state.pods.insert(key.to_owned(), PodWindow { timestamp_ms: now_ms, window_ms, containers });
            }
        }
        state.readings.insert(key.to_owned(), (now_ms, reading));
    }

    /// Forgets every pod not in `keep` (gone from the node).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.readings.retain(|key, _| keep(key));
        state.pods.retain(|key, _| keep(key));
    }

    /// Records a reading of node `name` (the one this process runs) at
    /// `now_ms`.
    pub fn record_node(&self, name: &str, now_ms: i64, reading: NodeUsage) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, then, before)) = state.node_reading.as_ref().filter(|(before, _, _)| before == name) {
            let window_ms = now_ms - then;
            if let Some(nanocores) = nanocores(before.cpu_nanoseconds, reading.cpu_nanoseconds, window_ms) {
                let usage = Usage { nanocores, memory_bytes: reading.memory_working_set };
                state.node = Some(NodeWindow { name: name.to_owned(), timestamp_ms: now_ms, window_ms, usage });
            }
        }
        state.node_reading = Some((name.to_owned(), now_ms, reading));
    }

    /// Pod `key`'s last window.
    pub fn pod(&self, key: &str) -> Option<PodWindow> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).pods.get(key).cloned()
    }

    /// The node's last window (named in it).
    pub fn node(&self) -> Option<NodeWindow> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).node.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, cpu: u64, memory: u64) -> ContainerUsage {
        ContainerUsage { name: name.into(), cpu_nanoseconds: cpu, memory_working_set: memory }
    }

    #[test]
    fn a_window_is_the_cpu_used_between_two_readings() {
        let metrics = Metrics::new();
        metrics.record("default/web", 0, vec![reading("app", 5_000_000_000, 10)]);
        assert_eq!(metrics.pod("default/web"), None, "one reading is no rate");
        // 7.5 s of CPU over 10 s: three quarters of a core.
        metrics.record("default/web", 10_000, vec![reading("app", 12_500_000_000, 20), reading("sidecar", 1, 1)]);
        let window = metrics.pod("default/web").unwrap();
        assert_eq!((window.timestamp_ms, window.window_ms), (10_000, 10_000));
        assert_eq!(window.containers, vec![("app".to_owned(), Usage { nanocores: 750_000_000, memory_bytes: 20 })]);
        // A restart resets the counter: no rate from that pair.
        metrics.record("default/web", 20_000, vec![reading("app", 1_000, 30), reading("sidecar", 2_000_000_001, 1)]);
        let window = metrics.pod("default/web").unwrap();
        assert_eq!(window.containers, vec![("sidecar".to_owned(), Usage { nanocores: 200_000_000, memory_bytes: 1 })]);
        metrics.retain(&|key| key != "default/web");
        assert_eq!(metrics.pod("default/web"), None);
    }

    #[test]
    fn the_node_has_a_window_too() {
        let metrics = Metrics::new();
        metrics.record_node("node-1", 1_000, NodeUsage { cpu_nanoseconds: 0, memory_working_set: 5 });
        assert_eq!(metrics.node(), None);
        metrics.record_node("node-1", 11_000, NodeUsage { cpu_nanoseconds: 20_000_000_000, memory_working_set: 6 });
        assert_eq!(metrics.node().unwrap().usage, Usage { nanocores: 2_000_000_000, memory_bytes: 6 });
    }
}
