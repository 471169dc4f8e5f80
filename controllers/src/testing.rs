//! A simulated cluster for tests of the controllers: the real controllers
//! over an in-memory store, a node, a manual clock, and a stand-in kubelet
//! that makes bound pods Running (and Ready, unless the test says their
//! image never starts). Each step reconciles every key once, so tests can
//! check invariants between steps.

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::{Batch, Key, Op, SqliteStore, Store, StoreExt};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::cronjob::CronJobController;
use crate::daemonset::DaemonSetController;
use crate::deployment::DeploymentController;
use crate::gc::GarbageCollector;
use crate::job::JobController;
use crate::node::{NodeInfo, register};
use crate::replicaset::{Flavor, ReplicaSetController};
use crate::runner::Reconciler;
use crate::scheduler::Scheduler;
use crate::statefulset::StatefulSetController;
use crate::storage::{ClaimBinder, VolumeReclaimer};
use crate::{Clock, Context, events::Recorder};

/// A clock the test moves.
#[derive(Default)]
pub(crate) struct ManualClock(pub(crate) Mutex<i64>);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + *self.0.lock().unwrap()).unwrap()
    }
}

pub(crate) struct Sim {
    pub(crate) ctx: Context,
    pub(crate) clock: Arc<ManualClock>,
    /// Images whose containers never become ready.
    pub(crate) broken_images: Mutex<Vec<String>>,
    _volumes: tempfile::TempDir,
    volumes_dir: std::path::PathBuf,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let clock = Arc::new(ManualClock::default());
        let events = Arc::new(Recorder::new(store.clone(), clock.clone(), "test", "node-1"));
        let ctx = Context { store, events, clock: clock.clone() };
        let mut info = NodeInfo::of_this_machine("node-1", "127.0.0.1", "10.244.0.0/24");
        info.cpus = 8;
        info.memory = 16 << 30;
        register(&ctx, &info).unwrap();
        let volumes = tempfile::tempdir().unwrap();
        let volumes_dir = volumes.path().to_path_buf();
        Sim { ctx, clock, broken_images: Mutex::new(vec![]), _volumes: volumes, volumes_dir }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.ctx.store
    }

    /// Creates or replaces objects as the sync loop would (defaults applied).
    pub(crate) fn apply_yaml(&self, yaml: &str) {
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let mut object = driftless_model::Object::parse(&value).unwrap();
            driftless_model::defaults::apply(&mut object);
            let mut value = object.to_value();
            if value.pointer(&format!("/metadata/annotations/{}", crate::deployment::SOURCE_COMMIT.replace('/', "~1"))).is_none() {
                value["metadata"]["annotations"][crate::deployment::SOURCE_COMMIT] = json!("abc1234 test");
            }
            self.store().apply(Batch::one(Op::Put(value))).unwrap();
        }
    }

    pub(crate) fn advance(&self, seconds: i64) {
        *self.clock.0.lock().unwrap() += seconds;
    }

    /// One round: every controller reconciles every key once, then the
    /// stand-in kubelet acts. Returns whether anything was written.
    pub(crate) async fn step(&self) -> bool {
        let before = self.store().revision();
        let ctx = self.ctx.clone();
        run_all(&ReplicaSetController::new(ctx.clone(), Flavor::ReplicaSet), self.store()).await;
        run_all(&ReplicaSetController::new(ctx.clone(), Flavor::ReplicationController), self.store()).await;
        run_all(&DeploymentController::new(ctx.clone()), self.store()).await;
        run_all(&StatefulSetController::new(ctx.clone()), self.store()).await;
        run_all(&CronJobController::new(ctx.clone()), self.store()).await;
        run_all(&JobController::new(ctx.clone()), self.store()).await;
        run_all(&DaemonSetController::new(ctx.clone()), self.store()).await;
        run_all(&Scheduler::new(ctx.clone()), self.store()).await;
        run_all(&ClaimBinder::new(ctx.clone(), self.volumes_dir.clone()), self.store()).await;
        run_all(&VolumeReclaimer::new(ctx.clone(), self.volumes_dir.clone()), self.store()).await;
        run_all(&GarbageCollector::new(ctx.clone()), self.store()).await;
        self.kubelet();
        self.store().revision() != before
    }

    /// Steps until nothing changes (at most `limit` steps), checking
    /// `invariant` after each.
    pub(crate) async fn settle_checking(&self, limit: usize, mut invariant: impl FnMut(&Sim)) -> usize {
        for i in 0..limit {
            let changed = self.step().await;
            invariant(self);
            if !changed {
                return i;
            }
        }
        panic!("did not settle in {limit} steps");
    }

    pub(crate) async fn settle(&self) -> usize {
        self.settle_checking(200, |_| {}).await
    }

    fn kubelet(&self) {
        let now = crate::context::rfc3339(self.ctx.now());
        for pod in self.store().api::<Pod>().list(None) {
            let key = driftless_store::key_of(&pod);
            if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                continue;
            }
            if pod.metadata.deletion_timestamp.is_some() {
                self.store().apply(Batch::one(Op::Delete { key, uid: pod.metadata.uid.clone() })).unwrap();
                continue;
            }
            let status = pod.status.as_ref();
            if status.and_then(|s| s.phase.as_deref()) == Some("Running") || status.and_then(|s| s.container_statuses.as_ref()).is_some() {
                continue;
            }
            let image = pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default();
            let broken = self.broken_images.lock().unwrap().contains(&image);
            let status = if broken {
                json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                       "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "image": image, "imageID": "",
                                              "state": {"waiting": {"reason": "ImagePullBackOff"}}}]})
            } else {
                json!({"phase": "Running", "podIP": "10.244.0.9",
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]})
            };
            self.store().apply(Batch::one(Op::Status { key, uid: pod.metadata.uid.clone(), status })).unwrap();
        }
    }

    pub(crate) fn pods(&self) -> Vec<Pod> {
        self.store().api::<Pod>().list(None)
    }

    /// Active pods by the image of their first container.
    pub(crate) fn pods_by_image(&self) -> BTreeMap<String, (usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for pod in self.pods().iter().filter(|p| crate::pods::is_active(p)) {
            let image = pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default();
            let entry = out.entry(image).or_default();
            entry.0 += 1;
            if crate::pods::is_ready(pod) {
                entry.1 += 1;
            }
        }
        out
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Arc<Value> {
        self.store().get(&Key::new(kind, ns, name)).unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
    }
}

async fn run_all<R: Reconciler>(reconciler: &Arc<R>, store: &dyn Store) {
    for key in reconciler.keys(store) {
        let _ = reconciler.reconcile(&key).await;
    }
}
