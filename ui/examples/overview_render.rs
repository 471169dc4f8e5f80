//! Benchmark: the dashboard's pages (issue 17: "Overview page render time
//! with 1,000 pods and 1,000 ledger entries, p50 server time under 50 ms")
//! on a store and a ledger the size the issue names, through the router
//! the daemon serves, driven in-process: the time is the server's, from
//! the request going in to the whole body collected (no TLS, no socket).
//!
//! Usage: `cargo run --release -p driftless-ui --example overview_render
//! [REQUESTS]` (default 200 per page, after 20 to warm up).
//!
//! The store (SQLite in a temporary folder, as the daemon opens it) holds
//! five Namespaces of ten apps each, as the sync and the controllers would
//! have written them: 50 Deployments, ConfigMaps and Services that git
//! declares (the sync's managed annotation), their ReplicaSets (one or two
//! live, and an old one scaled to 0 for a third of the apps) and
//! Endpoints, 1,000 Pods with owner references, requests, container
//! statuses and `spec.nodeName`, one Node, and the sync's status record
//! (a head refused while the last good commit runs). Of the Deployments,
//! 45 are Healthy, 3 Progressing (two rollouts half way, one with pods
//! still starting), 1 Degraded (a crash-looping rollout past its
//! deadline) and 1 Suspended (paused). The daemon's node takes 110 pods;
//! here all 1,000 are bound to the one Node, the Overview's worst case
//! (it reads the requests of every bound pod).
//!
//! The ledger is a real git repository whose `refs/driftless/applied`
//! gets 1,000 entries through `driftless_sync::ledger::record`, as the
//! sync loop writes them: syncs applied (each with the tree of what was
//! applied), refusals, and an autoscaler's rescales.
//!
//! Checks that each page renders what it should (the health counts and
//! the node's requested CPU on the Overview, a page of entries on
//! History, every pod on Workloads) and stops a page after 300 s.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{Request, StatusCode};
use driftless_model::annotations::REVISION_COMMIT;
use driftless_model::{Kind, Object};
use driftless_store::{Batch, Op, SqliteStore, Store};
use driftless_sync::ledger::{self, LedgerEntry};
use driftless_sync::{Action, Change, MANAGED, STATUS_META, SyncStatus};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "5b0c3e0a-1f4e-4d57-9a43-2c8f3d1e7b10";
const NAMESPACES: &[&str] = &["shop", "payments", "search", "identity", "platform"];
const APPS: &[&str] = &["api", "web", "worker", "cart", "checkout", "catalog", "auth", "billing", "notify", "indexer"];
const REPLICAS: usize = 20;
const LEDGER_ENTRIES: usize = 1000;
const WARM_UP: usize = 20;
/// The most requests a page gets, whatever the argument says.
const MAX_REQUESTS: usize = 100_000;
/// The longest a page is timed.
const PAGE_TIME: Duration = Duration::from_secs(300);
const NODE: &str = "node-1";
const NODE_CPUS: i128 = 64;
const NODE_MEMORY: i128 = 256 << 30;

// === Deterministic names and ids ===

/// xorshift64*: the same store on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` characters of Kubernetes' generated-name alphabet.
    fn name(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n).map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char).collect()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from_digit((self.next() % 16) as u32, 16).unwrap()).collect()
    }

    fn uid(&mut self) -> String {
        format!("{}-{}-4{}-a{}-{}", self.hex(8), self.hex(4), self.hex(3), self.hex(3), self.hex(12))
    }
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A manifest as the store holds it: parsed, with the API server's
/// defaults filled in.
fn defaulted(manifest: Value) -> Value {
    let mut object = Object::parse(&manifest).unwrap();
    driftless_model::defaults::apply(&mut object);
    object.to_value()
}

// === The apps ===

/// What happens to one app's rollout.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Healthy,
    /// A rollout half way: `new` pods of the new ReplicaSet.
    Rolling {
        new: usize,
    },
    /// The last `starting` pods are still creating their containers.
    Starting {
        starting: usize,
    },
    /// A rollout past its deadline, its `new` pods crash-looping.
    CrashLooping {
        new: usize,
    },
    Paused,
}

struct App {
    namespace: &'static str,
    name: &'static str,
    index: usize,
    shape: Shape,
    /// Millicores and MiB the app container requests.
    cpu: i128,
    memory: i128,
    sidecar: bool,
}

impl App {
    fn all() -> Vec<App> {
        let mut apps = Vec::new();
        for (n, namespace) in NAMESPACES.iter().enumerate() {
            for (a, name) in APPS.iter().enumerate() {
                let index = n * APPS.len() + a;
                let shape = match index {
                    7 => Shape::Rolling { new: 12 },
                    23 => Shape::Rolling { new: 5 },
                    15 => Shape::Starting { starting: 3 },
                    31 => Shape::CrashLooping { new: 5 },
                    42 => Shape::Paused,
                    _ => Shape::Healthy,
                };
                let (cpu, memory) = [(25, 64), (50, 128), (100, 256)][index % 3];
                apps.push(App { namespace, name, index, shape, cpu, memory, sidecar: index.is_multiple_of(5) });
            }
        }
        apps
    }

    /// Millicores and bytes one pod requests.
    fn pod_requests(&self) -> (i128, i128) {
        let (cpu, memory) = if self.sidecar { (self.cpu + 10, self.memory + 32) } else { (self.cpu, self.memory) };
        (cpu, memory << 20)
    }

    fn file(&self) -> String {
        format!("apps/{}/{}.yaml", self.namespace, self.name)
    }

    fn template(&self, version: &str) -> Value {
        let mut containers = vec![json!({
            "name": self.name,
            "image": format!("registry.example.com/{}/{}:{version}", self.namespace, self.name),
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
            "env": [
                {"name": "APP_ENV", "value": "production"},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": self.name}}],
            "resources": {
                "requests": {"cpu": format!("{}m", self.cpu), "memory": format!("{}Mi", self.memory)},
                "limits": {"cpu": format!("{}m", self.cpu * 4), "memory": format!("{}Mi", self.memory * 2)},
            },
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        })];
        if self.sidecar {
            containers.push(json!({
                "name": "log-shipper",
                "image": "registry.example.com/platform/log-shipper:2.3.1",
                "args": ["--input=/var/log/app", "--output=stdout"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app"}],
            }));
        }
        json!({
            "metadata": {"labels": {"app.kubernetes.io/name": self.name, "app.kubernetes.io/part-of": self.namespace}},
            "spec": {
                "containers": containers,
                "volumes": [{"name": "config", "configMap": {"name": self.name}}, {"name": "logs", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 30,
            },
        })
    }

    fn deployment_manifest(&self, version: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": {"app.kubernetes.io/name": self.name}},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {"app.kubernetes.io/name": self.name}},
                "template": self.template(version),
                "paused": self.shape == Shape::Paused,
            },
        })
    }

    fn config_manifest(&self) -> Value {
        let config = format!(
            "server:\n  port: 8080\n  metrics: 9090\nupstreams:\n  auth: http://auth.identity.svc:80\n  catalog: http://catalog.shop.svc:80\nfeatures:\n  {}-v2: true\n  cache-ttl-seconds: 300\n",
            self.name
        );
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self.name, "namespace": self.namespace},
            "data": {"app.yaml": config, "LOG_FORMAT": "json"}})
    }

    fn service_manifest(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"selector": {"app.kubernetes.io/name": self.name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090, "targetPort": "metrics"}]}})
    }
}

// === The ledger's history, planned before anything is written ===

struct Planned {
    entry: LedgerEntry,
    /// The apps whose Deployment the entry changed (their new note).
    changed: Vec<usize>,
}

/// The ledger's entries, oldest first: the first sync creates everything;
/// then mostly image bumps and scales, a refusal every tenth sync (the last
/// one too: the head is refused while the last good commit runs) and
/// autoscaler rescales between.
fn plan_history(apps: &[App], rng: &mut Rng, now: i64) -> Vec<Planned> {
    let mut history = Vec::new();
    let authors =
        ["Ada Lovelace <ada@example.com>", "Grace Hopper <grace@example.com>", "Alan Turing <alan@example.com>", "Edsger Dijkstra <edsger@example.com>"];
    for i in 0..LEDGER_ENTRIES {
        let synced_at = now - (LEDGER_ENTRIES - i) as i64 * 2400;
        let author = authors[i % authors.len()].to_owned();
        let app = &apps[(i * 7) % apps.len()];
        let object = |kind: &str| format!("{kind} {}/{}", app.namespace, app.name);
        let mut entry = LedgerEntry { source: rng.hex(40), author, time: synced_at - 40, synced_at, ..Default::default() };
        let mut changed = Vec::new();
        if i == 0 {
            entry.subject = "Add the five teams' apps".into();
            entry.result = "applied".into();
            for namespace in NAMESPACES {
                entry.actions.push(Action { change: Change::Create, object: format!("Namespace {namespace}"), effect: String::new() });
            }
            for app in apps {
                for kind in ["ConfigMap", "Deployment", "Service"] {
                    entry.actions.push(Action { change: Change::Create, object: format!("{kind} {}/{}", app.namespace, app.name), effect: String::new() });
                }
            }
            changed = (0..apps.len()).collect();
        } else if i % 10 == 9 {
            entry.subject = format!("{}: raise the memory limit", app.name);
            entry.result = "refused".into();
            entry.errors.push(format!(
                "{}:31:19: error: Deployment/{}: spec.template.spec.containers[0].resources.limits.memory: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                app.file(),
                app.name
            ));
            if i % 20 == 19 {
                entry.errors.push(format!("{}:12:7: error: Service/{}: spec.ports[1].targetPort: no container port named \"metric\"", app.file(), app.name));
            }
        } else if i % 6 == 5 {
            entry.subject = format!("Deployment/{} {} → {}: cpu resource utilization above target", app.name, REPLICAS - 2, REPLICAS);
            entry.author = format!("HorizontalPodAutoscaler {}/{}", app.namespace, app.name);
            entry.time = synced_at;
            entry.result = "autoscaled".into();
            entry.actions.push(Action { change: Change::Update, object: object("Deployment"), effect: "scales".into() });
        } else if i % 4 == 1 {
            entry.subject = format!("scale {} to {REPLICAS}", app.name);
            entry.result = "applied".into();
            entry.actions.push(Action { change: Change::Update, object: object("Deployment"), effect: "scales".into() });
            entry.trailers = vec!["Driftless-Verb: scale".into(), format!("Driftless-Object: {}", object("Deployment"))];
            changed.push(app.index);
        } else {
            entry.subject = format!("{}: release 1.{}.{}", app.name, i / 100, i % 100);
            entry.result = "applied".into();
            if i % 3 == 0 {
                entry.actions.push(Action { change: Change::Update, object: object("ConfigMap"), effect: "in place".into() });
            }
            entry.actions.push(Action { change: Change::Update, object: object("Deployment"), effect: "rolls pods".into() });
            changed.push(app.index);
        }
        history.push(Planned { entry, changed });
    }
    history
}

/// A commit as the sync's status records it (`CommitRef`'s form).
fn commit_ref(entry: &LedgerEntry) -> Value {
    json!({"id": entry.source, "subject": entry.subject, "author": entry.author, "time": entry.time, "trailers": entry.trailers})
}

fn note(entry: &LedgerEntry) -> String {
    format!("{} {}", &entry.source[..7], entry.subject)
}

// === The store ===

/// What the Overview must show.
struct Expected {
    health: BTreeMap<&'static str, usize>,
    pods: usize,
    cpu: i128,
    memory: i128,
}

fn annotate(value: &mut Value, note: &str) {
    value["metadata"]["annotations"][MANAGED] = Value::from(note);
}

fn owner(kind: &str, api_version: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}])
}

/// Every object, in the order the API server would have taken them, and
/// what the Overview must count.
fn objects(apps: &[App], history: &[Planned], rng: &mut Rng, now: i64) -> (Vec<Value>, Vec<Value>, Expected) {
    let mut notes = vec![String::new(); apps.len()];
    for planned in history {
        for &app in &planned.changed {
            notes[app] = note(&planned.entry);
        }
    }
    let first = note(&history[0].entry);
    let created = rfc3339(history[0].entry.synced_at);
    let mut declared = Vec::new();
    let mut derived = Vec::new();
    let mut expected = Expected { health: BTreeMap::new(), pods: 0, cpu: 0, memory: 0 };

    for namespace in NAMESPACES {
        let mut value = defaulted(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
        value["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": namespace});
        value["metadata"]["uid"] = Value::from(rng.uid());
        value["metadata"]["creationTimestamp"] = Value::from(created.clone());
        value["status"] = json!({"phase": "Active"});
        annotate(&mut value, &first);
        declared.push(value);
        *expected.health.entry("Healthy").or_default() += 1;
    }

    let mut ip = 0u32;
    for app in apps {
        let version = format!("1.{}.{}", app.index % 7, app.index % 11);
        let old_version = format!("1.{}.{}", app.index % 7, app.index % 11 + 1);

        let mut config = defaulted(app.config_manifest());
        config["metadata"]["uid"] = Value::from(rng.uid());
        config["metadata"]["creationTimestamp"] = Value::from(created.clone());
        annotate(&mut config, &first);
        declared.push(config);
        *expected.health.entry("Healthy").or_default() += 1;

        let service_ip = format!("10.96.{}.{}", app.index / 200, app.index % 200 + 10);
        let mut service = defaulted(app.service_manifest());
        service["metadata"]["uid"] = Value::from(rng.uid());
        service["metadata"]["creationTimestamp"] = Value::from(created.clone());
        service["spec"]["clusterIP"] = Value::from(service_ip.clone());
        service["spec"]["clusterIPs"] = json!([service_ip]);
        service["status"] = json!({"loadBalancer": {}});
        annotate(&mut service, &first);
        declared.push(service);
        *expected.health.entry("Healthy").or_default() += 1;

        // The Deployment, and its ReplicaSets: the current one, the one a
        // rollout leaves (with pods while it is under way), and for a
        // third of the apps an older one kept at 0 for `rollout undo`.
        let deployment_uid = rng.uid();
        let mut deployment = defaulted(app.deployment_manifest(&version));
        deployment["metadata"]["uid"] = Value::from(deployment_uid.clone());
        deployment["metadata"]["creationTimestamp"] = Value::from(created.clone());
        deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = Value::from("3");
        annotate(&mut deployment, &notes[app.index]);
        let (new_pods, old_pods, starting, crashing) = match app.shape {
            Shape::Healthy | Shape::Paused => (REPLICAS, 0, 0, 0),
            Shape::Rolling { new } => (new, REPLICAS - new, 0, 0),
            Shape::Starting { starting } => (REPLICAS, 0, starting, 0),
            Shape::CrashLooping { new } => (new, REPLICAS - new, 0, new),
        };
        let ready = REPLICAS - starting - crashing;
        let progressing = match app.shape {
            Shape::CrashLooping { .. } => json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{}\" has timed out progressing.", app.name)}),
            Shape::Rolling { .. } | Shape::Starting { .. } => json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                "message": format!("ReplicaSet \"{}\" is progressing.", app.name)}),
            _ => json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                "message": format!("ReplicaSet \"{}\" has successfully progressed.", app.name)}),
        };
        deployment["status"] = json!({
            "observedGeneration": 1, "replicas": REPLICAS, "updatedReplicas": new_pods, "readyReplicas": ready,
            "availableReplicas": ready, "unavailableReplicas": REPLICAS - ready,
            "conditions": [
                {"type": "Available", "status": if ready * 4 >= REPLICAS * 3 { "True" } else { "False" }, "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.", "lastUpdateTime": created, "lastTransitionTime": created},
                progressing,
            ],
        });
        let health = match app.shape {
            Shape::Healthy => "Healthy",
            Shape::Rolling { .. } | Shape::Starting { .. } => "Progressing",
            Shape::CrashLooping { .. } => "Degraded",
            Shape::Paused => "Suspended",
        };
        *expected.health.entry(health).or_default() += 1;
        let template = deployment["spec"]["template"].clone();
        declared.push(deployment);

        let mut sets = vec![(rng.name(10), "3", new_pods, template.clone())];
        if old_pods > 0 || app.index % 3 == 0 {
            let mut old_template = template.clone();
            old_template["spec"]["containers"][0]["image"] = Value::from(format!("registry.example.com/{}/{}:{old_version}", app.namespace, app.name));
            sets.push((rng.name(10), "2", old_pods, old_template));
        }
        let mut endpoints_ready = Vec::new();
        let mut endpoints_unready = Vec::new();
        for (set, (hash, revision, pods, mut template)) in sets.into_iter().enumerate() {
            let rs_name = format!("{}-{hash}", app.name);
            let rs_uid = rng.uid();
            template["metadata"]["labels"]["pod-template-hash"] = Value::from(hash.clone());
            let mut selector = json!({"matchLabels": {"app.kubernetes.io/name": app.name}});
            selector["matchLabels"]["pod-template-hash"] = Value::from(hash.clone());
            let mut rs = defaulted(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name, "namespace": app.namespace, "labels": template["metadata"]["labels"].clone(),
                    "annotations": {
                        "deployment.kubernetes.io/revision": revision,
                        "deployment.kubernetes.io/desired-replicas": REPLICAS.to_string(),
                        "deployment.kubernetes.io/max-replicas": (REPLICAS + REPLICAS / 4).to_string(),
                        REVISION_COMMIT: &notes[app.index][..7],
                    },
                    "ownerReferences": owner("Deployment", "apps/v1", app.name, &deployment_uid),
                },
                "spec": {"replicas": pods, "selector": selector, "template": template},
            }));
            rs["metadata"]["uid"] = Value::from(rs_uid.clone());
            rs["metadata"]["creationTimestamp"] = Value::from(created.clone());
            let rs_ready = if set == 0 { pods - starting - crashing } else { pods };
            rs["status"] =
                json!({"observedGeneration": 1, "replicas": pods, "fullyLabeledReplicas": pods, "readyReplicas": rs_ready, "availableReplicas": rs_ready});
            let pod_spec = rs["spec"]["template"]["spec"].clone();
            let pod_labels = rs["spec"]["template"]["metadata"]["labels"].clone();
            derived.push(rs);

            for p in 0..pods {
                let name = format!("{rs_name}-{}", rng.name(5));
                let uid = rng.uid();
                ip += 1;
                let pod_ip = format!("10.244.{}.{}", ip / 250, ip % 250 + 2);
                let started = rfc3339(now - 3600 - (p as i64) * 13);
                let mut spec = pod_spec.clone();
                spec["nodeName"] = Value::from(NODE);
                let mut pod = defaulted(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": app.namespace, "labels": pod_labels.clone(),
                        "ownerReferences": owner("ReplicaSet", "apps/v1", &rs_name, &rs_uid)},
                    "spec": spec,
                }));
                pod["metadata"]["uid"] = Value::from(uid.clone());
                pod["metadata"]["creationTimestamp"] = Value::from(started.clone());
                let is_starting = set == 0 && p >= pods - starting && starting > 0;
                let is_crashing = set == 0 && crashing > 0;
                let containers: Vec<Value> = pod["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        let container = c["name"].as_str().unwrap().to_owned();
                        let mut status = json!({
                            "name": container, "image": c["image"].clone(), "imageID": format!("sha256:{}", rng.hex(64)),
                            "containerID": format!("driftless://{}", rng.hex(64)), "ready": true, "started": true, "restartCount": 0,
                            "state": {"running": {"startedAt": started}},
                        });
                        if is_starting {
                            status = json!({"name": container, "image": c["image"].clone(), "imageID": "", "ready": false, "started": false,
                                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}});
                        } else if is_crashing && container == app.name {
                            status["ready"] = Value::from(false);
                            status["started"] = Value::from(false);
                            status["restartCount"] = Value::from(14);
                            status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                                "message": format!("back-off 5m0s restarting failed container={container} pod={name}")}});
                            status["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
                        }
                        status
                    })
                    .collect();
                let pod_ready = !is_starting && !is_crashing;
                let condition = |kind: &str, ok: bool| {
                    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": started});
                    if !ok && (kind == "Ready" || kind == "ContainersReady") {
                        c["reason"] = Value::from("ContainersNotReady");
                        c["message"] = Value::from(format!("containers with unready status: [{}]", app.name));
                    }
                    c
                };
                let mut status = json!({
                    "phase": if is_starting { "Pending" } else { "Running" },
                    "conditions": [condition("PodReadyToStartContainers", true), condition("Initialized", true),
                        condition("Ready", pod_ready), condition("ContainersReady", pod_ready), condition("PodScheduled", true)],
                    "hostIP": "192.168.1.20", "hostIPs": [{"ip": "192.168.1.20"}],
                    "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                    "containerStatuses": containers, "qosClass": "Burstable", "startTime": started,
                });
                if is_starting {
                    status.as_object_mut().unwrap().remove("startTime");
                }
                pod["status"] = status;
                let address = json!({"ip": pod_ip, "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": app.namespace, "name": name, "uid": uid}});
                if pod_ready {
                    endpoints_ready.push(address)
                } else {
                    endpoints_unready.push(address)
                }
                let (cpu, memory) = app.pod_requests();
                expected.pods += 1;
                expected.cpu += cpu;
                expected.memory += memory;
                derived.push(pod);
            }
        }
        let mut subset = json!({"addresses": endpoints_ready, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}]});
        if !endpoints_unready.is_empty() {
            subset["notReadyAddresses"] = Value::from(endpoints_unready);
        }
        derived.push(json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": app.name, "namespace": app.namespace, "uid": rng.uid(), "creationTimestamp": created,
                "labels": {"app.kubernetes.io/name": app.name}},
            "subsets": [subset],
        }));
    }

    // The Node as the node agent registers it, on a bigger machine.
    let resources = json!({"cpu": NODE_CPUS.to_string(), "memory": format!("{}Ki", NODE_MEMORY / 1024), "pods": "110"});
    derived.push(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "uid": rng.uid(), "creationTimestamp": created,
            "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "driftless is posting ready status",
                "lastHeartbeatTime": rfc3339(now - 5), "lastTransitionTime": created}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.20"}, {"type": "Hostname", "address": NODE}],
            "nodeInfo": {"kubeletVersion": "driftless-0.1.0", "containerRuntimeVersion": "libcontainer://0.7", "operatingSystem": "linux",
                "architecture": "x86_64", "kernelVersion": "6.1.0", "osImage": "", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
        },
    }));
    (declared, derived, expected)
}

// === The ledger ===

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// Records every planned entry on the ledger of the repository at `repo`,
/// each applied one with the tree of what it applied (the declared
/// objects, the changed Deployments carrying that sync's note).
fn record_ledger(repo: &Path, history: &[Planned], declared: &[Value]) {
    let deployment_file = |value: &Value| {
        let meta = &value["metadata"];
        format!("{}/deployment/{}.yaml", meta["namespace"].as_str().unwrap(), meta["name"].as_str().unwrap())
    };
    let deployments: Vec<&Value> = declared.iter().filter(|v| v["kind"] == "Deployment").collect();
    let mut files = ledger::render(declared);
    for planned in history {
        let files = if planned.entry.result == "applied" {
            for &app in &planned.changed {
                let mut deployment = deployments[app].clone();
                annotate(&mut deployment, &note(&planned.entry));
                files.extend(ledger::render(&[deployment]));
                debug_assert!(files.contains_key(&deployment_file(deployments[app])));
            }
            Some(&files)
        } else {
            None
        };
        ledger::record(repo, &planned.entry, files).unwrap();
    }
}

// === Driving the router ===

struct Answer {
    status: StatusCode,
    cookies: Vec<(String, String)>,
    body: String,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())))
        .collect();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Answer { status, cookies, body }
}

fn cookie<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name} cookie: {}", answer.body))
}

/// Signs in as a browser does; the `Cookie` header of the session.
async fn sign_in(router: &Router) -> String {
    let form = send(router, Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    let csrf = cookie(&form, "driftless_login").to_owned();
    assert!(form.body.contains(&format!("value=\"{csrf}\"")), "the form repeats the cookie's token");
    let request = Request::post("/ui/login")
        .header(COOKIE, format!("driftless_login={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}&csrf={csrf}")))
        .unwrap();
    let answer = send(router, request).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    format!("driftless_session={}", cookie(&answer, "driftless_session"))
}

struct Timed {
    times: Vec<Duration>,
    body: String,
}

/// `requests` GETs of `path` (fewer if [`PAGE_TIME`] runs out), each timed
/// from the request going in to its whole body collected.
async fn time_page(router: &Router, session: &str, path: &str, requests: usize) -> Timed {
    let get = || Request::get(path).header(COOKIE, session).body(Body::empty()).unwrap();
    let mut body = String::new();
    for _ in 0..WARM_UP {
        let answer = send(router, get()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        body = answer.body;
    }
    let mut times = Vec::with_capacity(requests);
    let began = Instant::now();
    for _ in 0..requests {
        let request = get();
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        times.push(started.elapsed());
        assert!(status == StatusCode::OK && !bytes.is_empty(), "{path}: {status}");
        if began.elapsed() > PAGE_TIME {
            println!("{path}: stopped after {} requests ({} s)", times.len(), PAGE_TIME.as_secs());
            break;
        }
    }
    Timed { times, body }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `q` of sorted `times`.
fn percentile(times: &[Duration], q: f64) -> Duration {
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}

fn report(path: &str, timed: &Timed) {
    let mut times = timed.times.clone();
    times.sort();
    println!(
        "{path:<15} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap()),
        timed.body.len() as f64 / 1024.0
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let requests: usize = std::env::args().nth(1).map(|a| a.parse().expect("REQUESTS: a number")).unwrap_or(200).clamp(1, MAX_REQUESTS);
    let setup = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let mut rng = Rng(0x5eed_d1f7_1e55_0017);
    let apps = App::all();
    let history = plan_history(&apps, &mut rng, now);
    let (declared, derived, expected) = objects(&apps, &history, &mut rng, now);

    // The watched repository, with one commit on its branch, and its ledger.
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("apps")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "The five teams' apps.\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "Start"]);
    record_ledger(&repo, &history, &declared);
    let ledger_time = setup.elapsed();

    let store = SqliteStore::open(&dir.path().join("data/store.db")).unwrap();
    let mut batch = Batch::new();
    for value in declared.iter().chain(&derived) {
        batch.push(Op::Create(value.clone()));
    }
    // The sync's state as it persists it: the last good commit running,
    // the head after it refused.
    let applied = history.iter().rev().find(|p| p.entry.result == "applied").unwrap();
    let head = &history.last().unwrap().entry;
    assert_eq!(head.result, "refused");
    let status: SyncStatus = serde_json::from_value(json!({
        "repo": repo.display().to_string(), "branch": "main", "path": "apps", "seen": head.source,
        "applied": commit_ref(&applied.entry), "refused": [commit_ref(head), head.errors],
        "synced_at": head.synced_at, "error": null, "pending": null,
    }))
    .unwrap();
    batch.set_meta(STATUS_META, serde_json::to_value(&status).unwrap());
    store.apply(batch).unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let count = |kind: Kind| store.list(kind, None).0.len();
    println!(
        "store: {} pods, {} replicasets, {} deployments, {} services, {} endpoints, {} configmaps, {} namespaces, {} node ({} declared); ledger: {} entries ({:.1} s setup, {:.1} s of it the ledger)",
        count(Kind::Pod),
        count(Kind::ReplicaSet),
        count(Kind::Deployment),
        count(Kind::Service),
        count(Kind::Endpoints),
        count(Kind::ConfigMap),
        count(Kind::Namespace),
        count(Kind::Node),
        declared.len(),
        ledger::read(&repo, usize::MAX).unwrap().len(),
        setup.elapsed().as_secs_f64(),
        ledger_time.as_secs_f64(),
    );
    assert_eq!(count(Kind::Pod), 1000);
    let pods = store.list(Kind::Pod, None).0;
    let pod_bytes: usize = pods.iter().map(|pod| serde_json::to_vec(&**pod).unwrap().len()).sum();
    println!("a pod is {:.1} KiB of JSON on average", pod_bytes as f64 / pods.len() as f64 / 1024.0);
    assert_eq!(ledger::read(&repo, usize::MAX).unwrap().len(), LEDGER_ENTRIES);

    // The dashboard as the daemon builds it.
    let mut api = driftless_api::ApiState::of_store(store);
    api.tokens = Some(Arc::new(driftless_api::auth::Tokens::parse(&format!("{TOKEN},ada,ada@example.com\n")).unwrap()));
    api.ledger = Some(repo.clone());
    let router = driftless_ui::router(driftless_ui::UiState::new(api));
    let session = sign_in(&router).await;

    println!("{requests} requests per page after {WARM_UP} to warm up; milliseconds from the request in to the whole body out");
    println!("{:<15} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10}", "page", "n", "p50", "p90", "p99", "max", "body KiB");
    let overview = time_page(&router, &session, "/ui/", requests).await;
    report("/ui/", &overview);
    let history_page = time_page(&router, &session, "/ui/history", requests).await;
    report("/ui/history", &history_page);
    let workloads = time_page(&router, &session, "/ui/workloads", requests).await;
    report("/ui/workloads", &workloads);

    // Each page shows what it should.
    let body = &overview.body;
    for (health, count) in &expected.health {
        assert!(body.contains(&format!(">{health}</span>: {count}</li>")), "Overview: {count} {health}: {body}");
    }
    let percent = |used: i128, of: i128| (used * 100 / of).clamp(0, 999);
    let cpu = format!("{}m / {}m ({}%)", expected.cpu, NODE_CPUS * 1000, percent(expected.cpu, NODE_CPUS * 1000));
    let memory = format!("{}Mi / {}Mi ({}%)", expected.memory >> 20, NODE_MEMORY >> 20, percent(expected.memory, NODE_MEMORY));
    assert!(body.contains(&cpu) && body.contains(&memory), "Overview: {cpu}, {memory}: {body}");
    assert!(body.contains(&format!("<td>{}</td>", expected.pods)), "Overview: {} pods: {body}", expected.pods);
    assert!(body.contains(&format!("Refused: <code>{}</code>", &head.source[..7])), "Overview: the refusal: {body}");
    assert!(body.contains(&applied.entry.source[..7]), "Overview: the running commit: {body}");
    let shown = history_page.body.matches("<li data-commit=").count();
    assert!(shown > 0 && history_page.body.contains(&head.source), "History: the newest entry");
    let pod_rows = workloads.body.matches("data-kind=\"Pod\"").count();
    assert!(pod_rows >= expected.pods, "Workloads: {pod_rows} pod rows");
    println!(
        "checked: the Overview counts {:?} declared objects by health and {} pods requesting {cpu} and {memory}; History shows {shown} of {LEDGER_ENTRIES} entries; Workloads has {pod_rows} pod rows",
        expected.health, expected.pods
    );
}
