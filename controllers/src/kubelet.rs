//! The node agent: runs the pods bound to this node on its
//! [`PodRuntime`], stops the ones deleted or moved away, removes
//! gracefully deleted pods once their containers have stopped, and writes
//! each pod's status as the runtime reports it (with the events its
//! changes deserve).
//!
//! Pods are found by uid in the runtime, so after a restart of the daemon
//! the pods still running are adopted rather than started again, and pods
//! the store no longer has are stopped ([`Kubelet::remove_orphans`]).

pub mod resolve;
pub mod status;

use driftless_model::{Kind, KindOf};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_nodeapi::{PodStatus, SharedRuntime};
use driftless_store::{Batch, Key, Op, Store, StoreExt, WatchEvent};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use resolve::StoreResolve;

use crate::context::rfc3339;
use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, pods};

/// How often pod statuses are read from the runtime when it does not say
/// when they change: readiness changes reach the store (and Endpoints)
/// within this. A runtime that says is reported at once.
pub const STATUS_PERIOD: Duration = Duration::from_millis(200);

/// The node agent.
pub struct Kubelet {
    ctx: Context,
    node: String,
    host_ip: String,
    runtime: SharedRuntime,
    resolve: Arc<StoreResolve>,
    /// Pods this agent runs: store key → uid.
    running: Mutex<HashMap<Key, String>>,
    /// The runtime status last reported per uid.
    reported: Mutex<HashMap<String, PodStatus>>,
    /// When each pod being deleted was first seen so, and the store
    /// revision at which it was first seen in no Endpoints (see
    /// [`Kubelet::drain`]).
    draining: Mutex<HashMap<String, (Instant, Option<u64>)>>,
    /// The store revision the service proxy last applied, when one runs.
    network_applied: Option<Arc<AtomicU64>>,
    /// Permits for pod starts under way, [`MAX_STARTS`].
    starts: tokio::sync::Semaphore,
}

/// The most pods started (or their volumes refreshed) at once: more than
/// the cores of a small node, as much of a start is waits (netlink, the
/// helper's fork, the container's init), and fewer than the daemon's
/// blocking pool has threads, so that starts, an image pull among them,
/// always leave threads to the control plane (the API, the service
/// proxy's rebuilds). Measured on two cores (docs/benchmarks.md): 4 at
/// once made 100 pods Ready 18% later than 6; 8 were no faster than 6.
pub const MAX_STARTS: usize = 6;

/// Without a service proxy to ask, how long a deleted pod keeps running
/// once no Endpoints lists it.
const DRAIN_AFTER_ENDPOINTS: Duration = Duration::from_millis(300);
/// The longest a deleted pod keeps running for Services to let go of it
/// (before its grace period starts).
const MAX_DRAIN: Duration = Duration::from_secs(3);

impl Kubelet {
    /// An agent for node `node` (reachable at `host_ip`) over `runtime`.
    /// `network_applied`, when a service proxy runs, is the store revision
    /// it last applied: a deleted pod stops only once no Service sends it
    /// new connections.
    pub fn new(
        ctx: Context,
        node: &str,
        host_ip: &str,
        runtime: SharedRuntime,
        resolve: Arc<StoreResolve>,
        network_applied: Option<Arc<AtomicU64>>,
    ) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            ctx,
            node: node.to_owned(),
            host_ip: host_ip.to_owned(),
            runtime,
            resolve,
            running: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            draining: Mutex::new(HashMap::new()),
            network_applied,
            starts: tokio::sync::Semaphore::new(MAX_STARTS),
        })
    }

    fn on_this_node(&self, value: &Value) -> bool {
        value.pointer("/spec/nodeName").and_then(Value::as_str) == Some(self.node.as_str())
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<Key, String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn stop(&self, uid: &str) -> Result<(), ReconcileError> {
        let runtime = self.runtime.clone();
        let owned = uid.to_owned();
        // A stop waits out the pod's grace period (up to its
        // terminationGracePeriodSeconds): on a thread of its own, gone
        // when the pod is, as each pod's termination is its own task in
        // kubelet. On the daemon's bounded blocking pool, a rollout of
        // pods that ignore SIGTERM would hold every thread of it for the
        // whole grace period, and no pod could start meanwhile.
        let (done, stopped) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("pod-stop".into()).spawn(move || drop(done.send(runtime.stop_pod(&owned)))).map_err(ReconcileError::Thread)?;
        stopped.await.map_err(|_| ReconcileError::Panicked)??;
        self.reported.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        Ok(())
    }

    /// How much longer a deleted pod should keep serving: Services stop
    /// sending it new connections first (the Endpoints controller drops a
    /// terminating pod at once, then the proxy applies that), so a rollout
    /// loses no request to a pod that is already gone. Kubernetes leaves
    /// this to a `preStop` sleep; here it is built in, bounded by
    /// [`MAX_DRAIN`] and the pod's grace period.
    fn drain(&self, pod: &Pod, namespace: &str) -> Option<Duration> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone())?;
        let revision = self.ctx.store.revision();
        let listed =
            self.ctx.store.list(Kind::Endpoints, Some(namespace)).0.iter().any(|e| {
                e.get("subsets").and_then(Value::as_array).into_iter().flatten().any(|s| {
                    s.get("addresses").and_then(Value::as_array).into_iter().flatten().any(|a| a.get("ip").and_then(Value::as_str) == Some(ip.as_str()))
                })
            });
        let now = Instant::now();
        let mut draining = self.draining.lock().unwrap_or_else(|e| e.into_inner());
        let (since, unlisted_at) = draining.entry(uid).or_insert((now, None));
        if now.duration_since(*since) >= MAX_DRAIN {
            tracing::warn!(pod = %pod.metadata.name.as_deref().unwrap_or(""), %ip, listed, "the proxy did not drop the pod within the drain bound; stopping it anyway");
            return None;
        }
        if listed {
            *unlisted_at = None;
            return Some(Duration::from_millis(50));
        }
        let unlisted_at = *unlisted_at.get_or_insert(revision);
        let done = match &self.network_applied {
            // The proxy has applied a store that no longer lists the pod.
            Some(applied) => applied.load(Ordering::SeqCst) >= unlisted_at,
            None => now.duration_since(*since) >= DRAIN_AFTER_ENDPOINTS,
        };
        if done {
            let applied = self.network_applied.as_ref().map(|a| a.load(Ordering::SeqCst));
            tracing::debug!(pod = %pod.metadata.name.as_deref().unwrap_or(""), %ip, waited = ?now.duration_since(*since), unlisted_at, ?applied, revision, "drained");
        }
        (!done).then(|| Duration::from_millis(50))
    }

    /// Stops every pod the runtime has that no Pod in the store (bound to
    /// this node) has the uid of: what a daemon killed mid-way left behind.
    pub async fn remove_orphans(&self) -> Result<usize, ReconcileError> {
        let wanted: std::collections::HashSet<String> = self
            .ctx
            .store
            .list(Kind::Pod, None)
            .0
            .iter()
            .filter(|p| self.on_this_node(p))
            .filter_map(|p| p.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let runtime = self.runtime.clone();
        let present = tokio::task::spawn_blocking(move || runtime.pods()).await?;
        let mut removed = 0;
        for uid in present.into_iter().filter(|uid| !wanted.contains(uid)) {
            tracing::info!(pod = %uid, "stopping a pod the store does not have");
            self.stop(&uid).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Reads every pod's status from the runtime and writes the ones that
    /// changed, until `cancel` fires.
    pub async fn report_statuses(self: Arc<Self>, cancel: CancellationToken) {
        // Woken by the runtime when a status changes (a notified permit is
        // kept while a report runs, so no change waits for the tick);
        // the tick stays for runtimes that cannot tell.
        let changed = Arc::new(tokio::sync::Notify::new());
        let notify = changed.clone();
        self.runtime.on_status_change(Arc::new(move || notify.notify_one()));
        let mut tick = tokio::time::interval(STATUS_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
                _ = changed.notified() => {}
            }
            let this = self.clone();
            // The runtime's locks may be held by a pod being started: read
            // on a blocking thread.
            let result = tokio::task::spawn_blocking(move || this.report_once()).await;
            if let Ok(Err(error)) = result {
                tracing::warn!(%error, "could not report pod statuses");
            }
        }
    }

    fn report_once(&self) -> Result<(), ReconcileError> {
        let pods: Vec<(Key, String)> = self.running().iter().map(|(k, u)| (k.clone(), u.clone())).collect();
        let now = rfc3339(self.ctx.now());
        let mut batch = Batch::new();
        let mut events = Vec::new();
        for (key, uid) in pods {
            let Some(runtime_status) = self.runtime.pod_status(&uid) else { continue };
            let before = self.reported.lock().unwrap_or_else(|e| e.into_inner()).get(&uid).cloned();
            if before.as_ref() == Some(&runtime_status) {
                continue;
            }
            let Some(value) = self.ctx.store.get(&key) else { continue };
            if value.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str()) {
                continue;
            }
            let Ok(pod) = Pod::from_json(&value) else { continue };
            let status = status::pod_status(&pod, &runtime_status, value.get("status"), &self.host_ip, &now);
            for (kind, reason, message) in status::events(&pod, before.as_ref(), value.get("status"), &runtime_status) {
                events.push((value.clone(), kind, reason, message));
            }
            if value.get("status") != Some(&status) {
                batch.push(Op::Status { key, uid: Some(uid.clone()), status });
            }
            self.reported.lock().unwrap_or_else(|e| e.into_inner()).insert(uid, runtime_status);
        }
        if !batch.is_empty() {
            // One pod deleted meanwhile must not stop the others' reports.
            if self.ctx.store.apply(batch.clone()).is_err() {
                for op in batch.ops {
                    let _ = self.ctx.store.apply(Batch::one(op));
                }
            }
        }
        for (value, kind, reason, message) in events {
            self.ctx.events.record(&value, kind, reason, &message);
        }
        Ok(())
    }
}

impl Reconciler for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Pod)
    }

    /// The pods bound to this node, and the ones it runs (which may have
    /// moved or gone).
    fn keys(&self, store: &dyn Store) -> Vec<Key> {
        let mut keys: Vec<Key> = store.list(Kind::Pod, None).0.iter().filter(|p| self.on_this_node(p)).filter_map(|p| Key::of(p)).collect();
        keys.extend(self.running().keys().cloned());
        keys.sort();
        keys.dedup();
        keys
    }

    fn triggers(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        match event.key.kind {
            Kind::Pod if self.on_this_node(&event.object) || self.running().contains_key(&event.key) => vec![event.key.clone()],
            // A pod waiting for a ConfigMap, Secret or claim may start now,
            // and a running one sees the new content in its volumes.
            Kind::ConfigMap | Kind::Secret | Kind::PersistentVolumeClaim => store
                .api::<Pod>()
                .list(Some(&event.key.namespace))
                .iter()
                .filter(|p| on_node(p, &self.node))
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending") || refers_to(p, &event.key))
                .map(driftless_store::key_of)
                .collect(),
            _ => vec![],
        }
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let pod = self.ctx.store.api::<Pod>().get(&key.namespace, &key.name);
        let known = self.running().get(key).cloned();
        let uid = pod.as_ref().and_then(|p| p.metadata.uid.clone());
        // Gone, replaced by a pod of the same name, or moved elsewhere:
        // stop what runs under the old uid.
        if let Some(old) = known.as_ref().filter(|old| uid.as_ref() != Some(old) || pod.as_ref().is_some_and(|p| !on_node(p, &self.node))) {
            self.stop(old).await?;
            self.running().remove(key);
        }
        let Some(pod) = pod else { return Ok(Action::AwaitChange) };
        let Some(uid) = uid else { return Ok(Action::AwaitChange) };
        if !on_node(&pod, &self.node) {
            return Ok(Action::AwaitChange);
        }
        let value = self.ctx.store.get(key).unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            if known.is_some()
                && let Some(wait) = self.drain(&pod, &key.namespace)
            {
                return Ok(Action::Requeue(wait));
            }
            self.draining.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
            for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                self.ctx.events.record(&value, EventType::Normal, "Killing", &format!("Stopping container {}", c.name));
            }
            self.stop(&uid).await?;
            self.running().remove(key);
            self.ctx.store.apply(Batch::one(Op::Delete { key: key.clone(), uid: Some(uid) }))?;
            tracing::info!(pod = %key, "pod stopped and removed");
            return Ok(Action::AwaitChange);
        }
        if pods::is_terminal(&pod) && known.is_none() {
            // It finished in an earlier run of the daemon; never rerun it.
            return Ok(Action::AwaitChange);
        }
        let was_running = known.as_deref() == Some(uid.as_str());
        self.running().insert(key.clone(), uid.clone());
        let (runtime, objects, to_run) = (self.runtime.clone(), self.resolve.clone(), pod.clone());
        let events = self.ctx.events.clone();
        // Awaited before the blocking call, so pods waiting their turn
        // hold no thread.
        let _start = self.starts.acquire().await.map_err(|_| ReconcileError::Panicked)?;
        let result = tokio::task::spawn_blocking(move || {
            let on_image = |reference: &str, step| {
                let (reason, message) = resolve::image_event(reference, step);
                events.record(&value, EventType::Normal, reason, &message);
            };
            runtime.run_pod(&to_run, &resolve::Reporting::new(&objects, &on_image))?;
            // Already running: its ConfigMap and Secret volumes follow the
            // objects (unchanged content is not rewritten).
            if was_running {
                runtime.refresh(&to_run, &*objects)?;
            }
            Ok::<(), driftless_nodeapi::NodeError>(())
        })
        .await?;
        match result {
            Ok(()) => Ok(Action::AwaitChange),
            Err(error) => {
                // The runtime reports why in the pod's status (the status
                // loop writes it); try again when it says, or soon.
                let retry = error.retry_in().unwrap_or(Duration::from_secs(2));
                tracing::debug!(pod = %key, %error, retry_in = ?retry, "pod cannot start yet");
                Ok(Action::Requeue(retry))
            }
        }
    }
}

/// Whether a pod's volumes or environment name a ConfigMap or Secret.
fn refers_to(pod: &Pod, object: &Key) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let name = object.name.as_str();
    let in_volumes = spec.volumes.iter().flatten().any(|v| match object.kind {
        Kind::ConfigMap => v.config_map.as_ref().is_some_and(|c| c.name == name),
        Kind::Secret => v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(name),
        _ => false,
    });
    let in_env = spec.containers.iter().flat_map(|c| c.env_from.iter().flatten()).any(|e| match object.kind {
        Kind::ConfigMap => e.config_map_ref.as_ref().is_some_and(|r| r.name == name),
        Kind::Secret => e.secret_ref.as_ref().is_some_and(|r| r.name == name),
        _ => false,
    });
    in_volumes || in_env
}

fn on_node(pod: &Pod, node: &str) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
}

#[cfg(test)]
mod tests;
