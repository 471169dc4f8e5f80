//! Tests of `health.rs` and `health/workloads.rs`: one or more per kind and
//! per branch of Argo CD's checks, on objects shaped as `kubectl get -o json`
//! prints them, and the roll-up order.
//!
//! Must not touch: anything outside the health module.

use serde_json::{Value, json};

use super::{Health, assess, worst};

/// The health and message `assess` gives `object` as a `kind`.
fn check(kind: &str, object: &Value) -> (Health, String) {
    let assessment = assess(kind, Some(object));
    (assessment.health, assessment.message)
}

fn healthy(message: &str) -> (Health, String) {
    (Health::Healthy, message.to_owned())
}

fn progressing(message: &str) -> (Health, String) {
    (Health::Progressing, message.to_owned())
}

fn degraded(message: &str) -> (Health, String) {
    (Health::Degraded, message.to_owned())
}

// === Health, worst, Missing and deletion ===

#[test]
fn names_are_argo_cds() {
    let names: Vec<&str> =
        [Health::Healthy, Health::Suspended, Health::Progressing, Health::Missing, Health::Degraded, Health::Unknown].map(Health::as_str).to_vec();
    assert_eq!(names, ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]);
}

#[test]
fn worst_follows_argo_cds_is_worse_order() {
    assert_eq!(worst([]), Health::Healthy);
    assert_eq!(worst([Health::Healthy, Health::Healthy]), Health::Healthy);
    assert_eq!(worst([Health::Suspended, Health::Healthy]), Health::Suspended);
    assert_eq!(worst([Health::Suspended, Health::Progressing]), Health::Progressing);
    assert_eq!(worst([Health::Missing, Health::Progressing]), Health::Missing);
    assert_eq!(worst([Health::Missing, Health::Degraded]), Health::Degraded);
    assert_eq!(worst([Health::Unknown, Health::Degraded, Health::Healthy]), Health::Unknown);
    let mut all = vec![Health::Unknown, Health::Missing, Health::Healthy, Health::Degraded, Health::Progressing, Health::Suspended];
    all.sort();
    assert_eq!(all, [Health::Healthy, Health::Suspended, Health::Progressing, Health::Missing, Health::Degraded, Health::Unknown]);
}

#[test]
fn absent_objects_are_missing() {
    for kind in ["Deployment", "ConfigMap", "Service", "SomethingElse"] {
        let assessment = assess(kind, None);
        assert_eq!((assessment.health, assessment.message.as_str()), (Health::Missing, ""), "{kind}");
    }
}

#[test]
fn kinds_without_a_check_are_healthy() {
    let objects = [
        ("ConfigMap", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game-config", "namespace": "default"}, "data": {"lives": "3"}})),
        ("Secret", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque", "data": {"password": "czNjcjN0"}})),
        ("Endpoints", json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"}, "subsets": []})),
        ("Namespace", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}, "status": {"phase": "Active"}})),
        ("ServiceAccount", json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})),
    ];
    for (kind, object) in objects {
        assert_eq!(check(kind, &object), healthy(""), "{kind}");
    }
}

#[test]
fn objects_being_deleted_are_progressing() {
    let mut pod = running_pod();
    pod["metadata"]["deletionTimestamp"] = json!("2025-03-01T10:00:00Z");
    pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    assert_eq!(check("Pod", &pod), progressing("Pending deletion"));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "deletionTimestamp": "2025-03-01T10:00:00Z"},
        "status": {"phase": "Terminating"}});
    assert_eq!(check("Namespace", &namespace), progressing("Pending deletion"));
}

// === Deployment ===

/// `kubectl get deploy nginx-deployment -o json` after a finished rollout.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "namespace": "default", "generation": 2, "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}
        },
        "status": {
            "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
                 "lastTransitionTime": "2025-03-01T09:00:00Z", "lastUpdateTime": "2025-03-01T09:00:00Z"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"nginx-deployment-75675f5897\" has successfully progressed.",
                 "lastTransitionTime": "2025-03-01T09:00:00Z", "lastUpdateTime": "2025-03-01T09:00:10Z"}
            ]
        }
    })
}

#[test]
fn deployment_rolled_out_is_healthy() {
    assert_eq!(check("Deployment", &deployment()), healthy(""));
}

#[test]
fn deployment_paused_is_suspended() {
    let mut d = deployment();
    d["spec"]["paused"] = json!(true);
    // Paused wins even over a rollout the controller has not seen yet.
    d["metadata"]["generation"] = json!(3);
    assert_eq!(check("Deployment", &d), (Health::Suspended, "Deployment is paused".to_owned()));
}

#[test]
fn deployment_generation_not_observed_is_progressing() {
    let mut d = deployment();
    d["metadata"]["generation"] = json!(3);
    assert_eq!(check("Deployment", &d), progressing("Waiting for rollout to finish: observed deployment generation less than desired generation"));
}

#[test]
fn deployment_past_its_progress_deadline_is_degraded() {
    let mut d = deployment();
    d["status"]["updatedReplicas"] = json!(1);
    d["status"]["replicas"] = json!(4);
    d["status"]["conditions"][1] = json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"nginx-deployment-6d8f8c7b5c\" has timed out progressing.",
        "lastTransitionTime": "2025-03-01T09:10:00Z", "lastUpdateTime": "2025-03-01T09:10:00Z"});
    assert_eq!(check("Deployment", &d), degraded("Deployment \"nginx-deployment\" exceeded its progress deadline"));
}

#[test]
fn deployment_with_replicas_not_yet_updated_is_progressing() {
    let mut d = deployment();
    d["status"]["replicas"] = json!(4);
    d["status"]["updatedReplicas"] = json!(1);
    d["status"]["availableReplicas"] = json!(3);
    d["status"]["conditions"][1]["reason"] = json!("ReplicaSetUpdated");
    assert_eq!(check("Deployment", &d), progressing("Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."));
}

#[test]
fn deployment_with_old_replicas_left_is_progressing() {
    let mut d = deployment();
    d["status"]["replicas"] = json!(4);
    assert_eq!(check("Deployment", &d), progressing("Waiting for rollout to finish: 1 old replicas are pending termination..."));
}

#[test]
fn deployment_with_updated_replicas_unavailable_is_progressing() {
    let mut d = deployment();
    d["status"]["availableReplicas"] = json!(2);
    d["status"]["readyReplicas"] = json!(2);
    assert_eq!(check("Deployment", &d), progressing("Waiting for rollout to finish: 2 of 3 updated replicas are available..."));
}

#[test]
fn deployment_scaled_to_zero_is_healthy() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!(0);
    d["status"] = json!({"observedGeneration": 2, "conditions": d["status"]["conditions"].clone()});
    assert_eq!(check("Deployment", &d), healthy(""));
}

// === StatefulSet ===

/// `kubectl get sts web -o json` of the Kubernetes StatefulSet tutorial,
/// with the default strategy the API server fills in.
fn statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "generation": 1},
        "spec": {
            "replicas": 3, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "nginx"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24"}]}}
        },
        "status": {
            "observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
            "currentRevision": "web-5d9f8c7b6d", "updateRevision": "web-5d9f8c7b6d", "collisionCount": 0
        }
    })
}

#[test]
fn statefulset_spec_not_observed_is_progressing() {
    let waiting = progressing("Waiting for statefulset spec update to be observed...");
    let mut s = statefulset();
    s["metadata"]["generation"] = json!(2);
    assert_eq!(check("StatefulSet", &s), waiting);
    // A status the controller never wrote counts as never observed.
    let mut s = statefulset();
    s["status"] = json!({"replicas": 0, "availableReplicas": 0});
    assert_eq!(check("StatefulSet", &s), waiting);
}

#[test]
fn statefulset_with_pods_not_ready_is_progressing() {
    let mut s = statefulset();
    s["status"]["readyReplicas"] = json!(1);
    assert_eq!(check("StatefulSet", &s), progressing("Waiting for 2 pods to be ready..."));
}

#[test]
fn statefulset_default_strategy_is_judged_as_partitioned() {
    // The API server's default rollingUpdate block (partition 0) sends every
    // RollingUpdate StatefulSet down the partitioned path, as in Argo CD.
    assert_eq!(check("StatefulSet", &statefulset()), healthy("partitioned roll out complete: 3 new pods have been updated..."));
}

#[test]
fn statefulset_partitioned_rollout_waits_only_for_pods_above_the_partition() {
    let mut s = statefulset();
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
    s["status"]["updatedReplicas"] = json!(1);
    s["status"]["currentReplicas"] = json!(2);
    s["status"]["updateRevision"] = json!("web-6c8b9d7f5e");
    assert_eq!(check("StatefulSet", &s), progressing("Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."));
    s["status"]["updatedReplicas"] = json!(2);
    s["status"]["currentReplicas"] = json!(1);
    // Revisions still differ (ordinal 0 is held back), yet the rollout asked for is done.
    assert_eq!(check("StatefulSet", &s), healthy("partitioned roll out complete: 2 new pods have been updated..."));
}

#[test]
fn statefulset_on_delete_is_healthy_when_ready() {
    let mut s = statefulset();
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    s["metadata"]["generation"] = json!(2);
    s["status"]["observedGeneration"] = json!(2);
    s["status"]["updatedReplicas"] = json!(0);
    s["status"]["updateRevision"] = json!("web-6c8b9d7f5e");
    assert_eq!(check("StatefulSet", &s), healthy("statefulset has 3 ready pods"));
}

#[test]
fn statefulset_rolling_update_without_partition_block_compares_revisions() {
    let mut s = statefulset();
    s["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
    s["status"]["updatedReplicas"] = json!(1);
    s["status"]["currentReplicas"] = json!(2);
    s["status"]["updateRevision"] = json!("web-6c8b9d7f5e");
    assert_eq!(check("StatefulSet", &s), progressing("waiting for statefulset rolling update to complete 1 pods at revision web-6c8b9d7f5e..."));
    s["status"]["updatedReplicas"] = json!(3);
    s["status"]["currentReplicas"] = json!(3);
    s["status"]["currentRevision"] = json!("web-6c8b9d7f5e");
    assert_eq!(check("StatefulSet", &s), healthy("statefulset rolling update complete 3 pods at revision web-6c8b9d7f5e..."));
}

// === DaemonSet ===

/// `kubectl get ds fluentd-elasticsearch -n kube-system -o json` on one node.
fn daemonset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                "spec": {"containers": [{"name": "fluentd-elasticsearch", "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2"}]}}
        },
        "status": {
            "observedGeneration": 1, "currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
            "numberReady": 1, "numberAvailable": 1, "updatedNumberScheduled": 1
        }
    })
}

#[test]
fn daemonset_rolled_out_is_healthy() {
    assert_eq!(check("DaemonSet", &daemonset()), healthy(""));
}

#[test]
fn daemonset_generation_not_observed_is_progressing() {
    let mut d = daemonset();
    d["metadata"]["generation"] = json!(2);
    assert_eq!(check("DaemonSet", &d), progressing("Waiting for rollout to finish: observed daemon set generation less than desired generation"));
}

#[test]
fn daemonset_with_pods_not_updated_is_progressing() {
    let mut d = daemonset();
    d["status"]["updatedNumberScheduled"] = json!(0);
    assert_eq!(
        check("DaemonSet", &d),
        progressing("Waiting for daemon set \"fluentd-elasticsearch\" rollout to finish: 0 out of 1 new pods have been updated...")
    );
}

#[test]
fn daemonset_with_pods_unavailable_is_progressing() {
    let mut d = daemonset();
    d["status"]["numberAvailable"] = json!(0);
    d["status"]["numberUnavailable"] = json!(1);
    assert_eq!(check("DaemonSet", &d), progressing("Waiting for daemon set \"fluentd-elasticsearch\" rollout to finish: 0 of 1 updated pods are available..."));
}

#[test]
fn daemonset_on_delete_is_healthy_with_old_pods() {
    let mut d = daemonset();
    d["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    d["status"]["updatedNumberScheduled"] = json!(0);
    assert_eq!(check("DaemonSet", &d), healthy("daemon set 0 out of 1 new pods have been updated"));
}

// === ReplicaSet ===

/// `kubectl get rs frontend -o json` of the Kubernetes ReplicaSet page.
fn replicaset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "frontend", "namespace": "default", "generation": 1, "labels": {"app": "guestbook", "tier": "frontend"}},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": {"tier": "frontend"}},
            "template": {"metadata": {"labels": {"tier": "frontend"}}, "spec": {"containers": [{"name": "php-redis", "image": "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5"}]}}
        },
        "status": {"observedGeneration": 1, "replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    })
}

#[test]
fn replicaset_available_is_healthy() {
    assert_eq!(check("ReplicaSet", &replicaset()), healthy(""));
}

#[test]
fn replicaset_generation_not_observed_is_progressing() {
    let mut r = replicaset();
    r["metadata"]["generation"] = json!(2);
    assert_eq!(check("ReplicaSet", &r), progressing("Waiting for rollout to finish: observed replica set generation less than desired generation"));
}

#[test]
fn replicaset_with_replica_failure_is_degraded() {
    let mut r = replicaset();
    r["status"]["availableReplicas"] = json!(1);
    r["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": "pods \"frontend-x7k2p\" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=1, limited: pods=1",
        "lastTransitionTime": "2025-03-01T09:00:00Z"}]);
    assert_eq!(
        check("ReplicaSet", &r),
        degraded("pods \"frontend-x7k2p\" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=1, limited: pods=1")
    );
    // Once the failure clears, the condition stays with status False and only availability counts.
    r["status"]["conditions"][0]["status"] = json!("False");
    assert_eq!(check("ReplicaSet", &r), progressing("Waiting for rollout to finish: 1 out of 3 new replicas are available..."));
}

// === Pod ===

/// `kubectl get pod -o json` of a Deployment's pod, running and ready.
fn running_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx-deployment-75675f5897-7ci7o", "namespace": "default", "labels": {"app": "nginx", "pod-template-hash": "75675f5897"}},
        "spec": {"restartPolicy": "Always", "nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.14.2"}]},
        "status": {
            "phase": "Running", "podIP": "10.244.0.12", "qosClass": "BestEffort", "startTime": "2025-03-01T09:00:00Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [{"name": "nginx", "image": "nginx:1.14.2", "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2025-03-01T09:00:02Z"}}}]
        }
    })
}

/// `running_pod` with its one container waiting for `reason`, not ready.
fn waiting_pod(reason: &str, message: &str) -> Value {
    let mut pod = running_pod();
    pod["status"]["conditions"][2]["status"] = json!("False");
    pod["status"]["conditions"][3]["status"] = json!("False");
    pod["status"]["containerStatuses"][0]["ready"] = json!(false);
    pod["status"]["containerStatuses"][0]["started"] = json!(false);
    pod["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": reason, "message": message}});
    pod
}

#[test]
fn pod_running_and_ready_is_healthy() {
    assert_eq!(check("Pod", &running_pod()), healthy(""));
}

#[test]
fn pod_in_crash_loop_is_degraded() {
    let mut pod = waiting_pod("CrashLoopBackOff", "back-off 5m0s restarting failed container=nginx pod=nginx-deployment-75675f5897-7ci7o_default");
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(6);
    pod["status"]["containerStatuses"][0]["lastState"] =
        json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2025-03-01T09:20:00Z", "finishedAt": "2025-03-01T09:20:01Z"}});
    assert_eq!(check("Pod", &pod), degraded("back-off 5m0s restarting failed container=nginx pod=nginx-deployment-75675f5897-7ci7o_default"));
}

#[test]
fn pod_failing_to_pull_its_image_is_degraded() {
    let mut pod = waiting_pod("ImagePullBackOff", "Back-off pulling image \"nginx:no-such-tag\"");
    pod["status"]["phase"] = json!("Pending");
    assert_eq!(check("Pod", &pod), degraded("Back-off pulling image \"nginx:no-such-tag\""));
    let mut pod = waiting_pod("ErrImagePull", "failed to pull and unpack image \"docker.io/library/nginx:no-such-tag\": not found");
    pod["status"]["phase"] = json!("Pending");
    assert_eq!(check("Pod", &pod), degraded("failed to pull and unpack image \"docker.io/library/nginx:no-such-tag\": not found"));
    let pod = waiting_pod("CreateContainerConfigError", "configmap \"app-config\" not found");
    assert_eq!(check("Pod", &pod), degraded("configmap \"app-config\" not found"));
}

#[test]
fn pod_degraded_messages_of_several_containers_are_joined() {
    let mut pod = waiting_pod("CrashLoopBackOff", "back-off 10s restarting failed container=nginx");
    let sidecar = json!({"name": "sidecar", "image": "busybox", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"busybox\""}}});
    pod["status"]["containerStatuses"].as_array_mut().unwrap().push(sidecar);
    assert_eq!(check("Pod", &pod), degraded("back-off 10s restarting failed container=nginx, Back-off pulling image \"busybox\""));
}

#[test]
fn pod_still_creating_its_container_is_progressing() {
    // ContainerCreating neither starts with Err nor ends with Error or BackOff.
    let mut pod = waiting_pod("ContainerCreating", "");
    pod["status"]["phase"] = json!("Pending");
    assert_eq!(check("Pod", &pod), progressing(""));
}

#[test]
fn run_to_completion_pod_waiting_on_its_image_is_left_to_its_phase() {
    let mut pod = waiting_pod("ImagePullBackOff", "Back-off pulling image \"migrate:v2\"");
    pod["spec"]["restartPolicy"] = json!("Never");
    pod["status"]["phase"] = json!("Pending");
    assert_eq!(check("Pod", &pod), progressing(""));
}

#[test]
fn ignore_restart_policy_annotation_judges_a_pod_as_long_running() {
    let mut pod = waiting_pod("ImagePullBackOff", "Back-off pulling image \"migrate:v2\"");
    pod["spec"]["restartPolicy"] = json!("OnFailure");
    pod["metadata"]["annotations"] = json!({"argocd.argoproj.io/ignore-restart-policy": "true"});
    assert_eq!(check("Pod", &pod), degraded("Back-off pulling image \"migrate:v2\""));
    let mut pod = running_pod();
    pod["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(check("Pod", &pod), progressing(""));
    pod["metadata"]["annotations"] = json!({"argocd.argoproj.io/ignore-restart-policy": "true"});
    assert_eq!(check("Pod", &pod), healthy(""));
}

#[test]
fn pod_pending_is_progressing() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "default"},
        "spec": {"restartPolicy": "Always", "containers": [{"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "64"}}}]},
        "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu."}]}
    });
    assert_eq!(check("Pod", &pod), progressing(""));
}

#[test]
fn pod_succeeded_is_healthy() {
    let mut pod = running_pod();
    pod["spec"]["restartPolicy"] = json!("Never");
    pod["status"]["phase"] = json!("Succeeded");
    pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    assert_eq!(check("Pod", &pod), healthy(""));
}

/// `running_pod` failed, its container terminated as `terminated` says.
fn failed_pod(terminated: Value) -> Value {
    let mut pod = running_pod();
    pod["spec"]["restartPolicy"] = json!("Never");
    pod["status"]["phase"] = json!("Failed");
    pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": terminated});
    pod
}

#[test]
fn pod_failed_says_why() {
    let mut pod = failed_pod(json!({"exitCode": 137, "reason": "Error"}));
    pod["status"]["reason"] = json!("DeadlineExceeded");
    pod["status"]["message"] = json!("Pod was active on the node longer than the specified deadline");
    assert_eq!(check("Pod", &pod), degraded("Pod was active on the node longer than the specified deadline"));
    let pod = failed_pod(json!({"exitCode": 1, "reason": "Error", "message": "panic: cannot open /data/db"}));
    assert_eq!(check("Pod", &pod), degraded("panic: cannot open /data/db"));
    let pod = failed_pod(json!({"exitCode": 137, "reason": "OOMKilled"}));
    assert_eq!(check("Pod", &pod), degraded("OOMKilled"));
    let pod = failed_pod(json!({"exitCode": 2, "reason": "Error"}));
    assert_eq!(check("Pod", &pod), degraded("container \"nginx\" failed with exit code 2"));
    let pod = failed_pod(json!({"exitCode": 0, "reason": "Completed"}));
    assert_eq!(check("Pod", &pod), degraded(""));
}

#[test]
fn pod_failed_in_an_init_container_names_it_first() {
    let mut pod = failed_pod(json!({"exitCode": 3, "reason": "Error"}));
    pod["status"]["initContainerStatuses"] =
        json!([{"name": "init-db", "image": "busybox", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]);
    assert_eq!(check("Pod", &pod), degraded("container \"init-db\" failed with exit code 1"));
}

#[test]
fn pod_running_not_ready_is_degraded_once_a_container_has_exited() {
    let mut pod = running_pod();
    pod["status"]["conditions"][2] =
        json!({"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [nginx]"});
    assert_eq!(check("Pod", &pod), progressing(""));
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(1);
    pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    assert_eq!(check("Pod", &pod), degraded(""));
}

#[test]
fn pod_of_a_job_running_is_progressing() {
    let mut pod = running_pod();
    pod["spec"]["restartPolicy"] = json!("OnFailure");
    assert_eq!(check("Pod", &pod), progressing(""));
}

#[test]
fn pod_in_unknown_phase_is_unknown() {
    let mut pod = running_pod();
    pod["status"]["phase"] = json!("Unknown");
    pod["status"]["message"] = json!("node node-1 which was running pod is unresponsive");
    assert_eq!(check("Pod", &pod), (Health::Unknown, "node node-1 which was running pod is unresponsive".to_owned()));
}

// === Service, Ingress, PersistentVolumeClaim ===

#[test]
fn service_cluster_ip_is_healthy() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app": "nginx"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]},
        "status": {"loadBalancer": {}}});
    assert_eq!(check("Service", &service), healthy(""));
}

#[test]
fn service_load_balancer_waits_for_an_address() {
    let mut service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.21", "selector": {"app": "nginx"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 31380}]},
        "status": {"loadBalancer": {}}});
    assert_eq!(check("Service", &service), progressing(""));
    service["status"]["loadBalancer"]["ingress"] = json!([{"ip": "127.0.0.100", "ipMode": "VIP"}]);
    assert_eq!(check("Service", &service), healthy(""));
}

#[test]
fn ingress_waits_for_an_address() {
    let mut ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "minimal-ingress"},
        "spec": {"ingressClassName": "driftless", "rules": [{"http": {"paths": [{"path": "/testpath", "pathType": "Prefix",
            "backend": {"service": {"name": "test", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}}});
    assert_eq!(check("Ingress", &ingress), progressing(""));
    ingress["status"]["loadBalancer"]["ingress"] = json!([{"ip": "192.168.1.10"}]);
    assert_eq!(check("Ingress", &ingress), healthy(""));
}

#[test]
fn claim_health_follows_its_phase() {
    let claim = |phase: Option<&str>| {
        let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-web-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "local-path", "volumeMode": "Filesystem"}});
        if let Some(phase) = phase {
            claim["status"] = json!({"phase": phase});
        }
        assess("PersistentVolumeClaim", Some(&claim)).health
    };
    assert_eq!(claim(Some("Bound")), Health::Healthy);
    assert_eq!(claim(Some("Pending")), Health::Progressing);
    assert_eq!(claim(Some("Lost")), Health::Degraded);
    assert_eq!(claim(None), Health::Unknown);
}

// === Job, CronJob ===

/// `kubectl get job pi -o json` with `status` as given.
fn job(status: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"backoffLimit": 4, "completions": 1, "parallelism": 1, "suspend": false, "completionMode": "NonIndexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34.0", "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}]}}},
        "status": status
    })
}

#[test]
fn job_running_is_progressing() {
    assert_eq!(check("Job", &job(json!({"active": 1, "ready": 1, "startTime": "2025-03-01T09:00:00Z", "terminating": 0}))), progressing(""));
    assert_eq!(check("Job", &job(json!({}))), progressing(""));
}

#[test]
fn job_complete_is_healthy() {
    let status = json!({"succeeded": 1, "startTime": "2025-03-01T09:00:00Z", "completionTime": "2025-03-01T09:00:40Z", "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
        {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}]});
    assert_eq!(check("Job", &job(status)), healthy("Reached expected number of succeeded pods"));
}

#[test]
fn job_failed_is_degraded() {
    let status = json!({"failed": 5, "startTime": "2025-03-01T09:00:00Z", "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
    assert_eq!(check("Job", &job(status)), degraded("Job has reached the specified backoff limit"));
}

#[test]
fn job_suspended_is_suspended() {
    let mut j = job(json!({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}]}));
    j["spec"]["suspend"] = json!(true);
    assert_eq!(check("Job", &j), (Health::Suspended, "Job suspended".to_owned()));
}

#[test]
fn job_resumed_reads_healthy_as_in_argo_cd() {
    // Argo CD counts any Suspended condition as the end of progress and only
    // a True one as suspended, so a resumed Job is Healthy while it runs.
    let status = json!({"active": 1, "startTime": "2025-03-01T09:05:00Z",
        "conditions": [{"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed"}]});
    assert_eq!(check("Job", &job(status)), healthy("Job resumed"));
}

/// `kubectl get cronjob hello -o json` with `status` as given (None: no status at all).
fn cronjob(status: Option<Value>) -> Value {
    let mut cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox:1.28"}]}}}}}
    });
    if let Some(status) = status {
        cronjob["status"] = status;
    }
    cronjob
}

#[test]
fn cronjob_follows_argo_cds_bundled_check() {
    assert_eq!(check("CronJob", &cronjob(None)), progressing("Waiting for CronJob"));
    assert_eq!(check("CronJob", &cronjob(Some(json!({})))), healthy("CronJob has not been scheduled yet"));
    let first_run = json!({"active": [{"kind": "Job", "name": "hello-29016780", "namespace": "default"}], "lastScheduleTime": "2025-03-01T09:00:00Z"});
    assert_eq!(check("CronJob", &cronjob(Some(first_run))), healthy("The CronJob never completed successfully. It may not be healthy"));
    let running = json!({"active": [{"kind": "Job", "name": "hello-29016781", "namespace": "default"}],
        "lastScheduleTime": "2025-03-01T09:01:00Z", "lastSuccessfulTime": "2025-03-01T09:00:20Z"});
    assert_eq!(check("CronJob", &cronjob(Some(running))), healthy("The job is running. Its last execution may not have been successful"));
    let failed = json!({"lastScheduleTime": "2025-03-01T09:01:00Z", "lastSuccessfulTime": "2025-03-01T09:00:20Z"});
    assert_eq!(check("CronJob", &cronjob(Some(failed))), degraded("CronJob has not completed its last execution successfully"));
    let succeeded = json!({"lastScheduleTime": "2025-03-01T09:01:00Z", "lastSuccessfulTime": "2025-03-01T09:01:15Z"});
    assert_eq!(check("CronJob", &cronjob(Some(succeeded))), healthy("CronJob has completed its last execution successfully"));
}

#[test]
fn cronjob_suspended_is_healthy_as_in_argo_cd() {
    let mut c = cronjob(Some(json!({"lastScheduleTime": "2025-03-01T09:01:00Z", "lastSuccessfulTime": "2025-03-01T09:00:20Z"})));
    c["spec"]["suspend"] = json!(true);
    assert_eq!(check("CronJob", &c), healthy("CronJob is Suspended"));
}

// === HorizontalPodAutoscaler ===

/// `kubectl get hpa php-apache -o json` (autoscaling/v2) with `conditions`.
fn hpa(conditions: Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache", "namespace": "default"},
        "spec": {"minReplicas": 1, "maxReplicas": 10, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "conditions": conditions}
    })
}

#[test]
fn hpa_able_to_scale_is_healthy() {
    let conditions = json!([
        {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
         "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}]);
    assert_eq!(check("HorizontalPodAutoscaler", &hpa(conditions)), healthy("recommended size matches current size"));
}

#[test]
fn hpa_failing_to_read_metrics_is_degraded_wherever_the_condition_is() {
    let conditions = json!([
        {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"},
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
         "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container php-apache"}]);
    assert_eq!(
        check("HorizontalPodAutoscaler", &hpa(conditions)),
        degraded("the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container php-apache")
    );
    let conditions = json!([{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
        "message": "the HPA controller was unable to get the target's current scale: deployments/scale.apps \"php-apache\" not found"}]);
    assert_eq!(
        check("HorizontalPodAutoscaler", &hpa(conditions)),
        degraded("the HPA controller was unable to get the target's current scale: deployments/scale.apps \"php-apache\" not found")
    );
}

#[test]
fn hpa_without_a_deciding_condition_waits_to_autoscale() {
    assert_eq!(check("HorizontalPodAutoscaler", &hpa(json!([]))), progressing("Waiting to Autoscale"));
    let conditions = json!([
        {"type": "AbleToScale", "status": "False", "reason": "BackoffBoth", "message": "the time since the previous scale is still within both the downscale and upscale forbidden windows"},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}]);
    assert_eq!(check("HorizontalPodAutoscaler", &hpa(conditions)), progressing("Waiting to Autoscale"));
    let mut h = hpa(json!([]));
    h["status"] = json!({"currentReplicas": 0, "desiredReplicas": 0});
    assert_eq!(check("HorizontalPodAutoscaler", &h), progressing("Waiting to Autoscale"));
}

#[test]
fn hpa_scaling_limited_is_healthy() {
    let conditions = json!([
        {"type": "AbleToScale", "status": "False", "reason": "BackoffUpscale", "message": "the time since the previous scale is still within the upscale forbidden window"},
        {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas", "message": "the desired replica count is more than the maximum replica count"}]);
    assert_eq!(check("HorizontalPodAutoscaler", &hpa(conditions)), healthy("the desired replica count is more than the maximum replica count"));
}

#[test]
fn hpa_v1_reads_its_conditions_annotation() {
    let v1 = |annotation: Option<&str>| {
        let mut h = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache", "namespace": "default"},
            "spec": {"minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"}},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 0}});
        if let Some(annotation) = annotation {
            h["metadata"]["annotations"] = json!({"autoscaling.alpha.kubernetes.io/conditions": annotation});
        }
        check("HorizontalPodAutoscaler", &h)
    };
    assert_eq!(v1(None), progressing("Waiting to Autoscale"));
    assert_eq!(v1(Some("[]")), progressing("Waiting to Autoscale"));
    let conditions = r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2025-03-01T09:00:00Z","reason":"SucceededRescale","message":"the HPA controller was able to update the target scale to 4"}]"#;
    assert_eq!(v1(Some(conditions)), healthy("the HPA controller was able to update the target scale to 4"));
    let (health, message) = v1(Some("not json"));
    assert_eq!(health, Health::Unknown);
    assert!(message.starts_with("failed to convert conditions annotation to typed: "), "{message}");
}
