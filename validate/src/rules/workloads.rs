//! Controllers of pods: ReplicationController, ReplicaSet, Deployment,
//! StatefulSet, DaemonSet, Job and CronJob.

use driftless_model::k8s_openapi::api::apps::v1 as apps;
use driftless_model::k8s_openapi::api::batch::v1 as batch;
use driftless_model::k8s_openapi::api::core::v1 as core;
use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{self, Context};
use super::{non_negative, one_of, required, selector, storage};
use crate::names;
use crate::{Issues, Ptr};

fn template(template: &core::PodTemplateSpec, at: &Ptr, context: Context, claim_volumes: &[&str], issues: &mut Issues) {
    super::meta::labels(template.metadata.as_ref().and_then(|m| m.labels.as_ref()), &at.key("metadata").key("labels"), issues);
    match &template.spec {
        Some(spec) => pod::pod_spec(spec, &at.key("spec"), context, claim_volumes, issues),
        None => issues.error(at, "missing required field \"spec\""),
    }
}

fn template_labels(template: &core::PodTemplateSpec) -> Option<&std::collections::BTreeMap<String, String>> {
    template.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

fn replicas(value: Option<i32>, at: &Ptr, issues: &mut Issues) {
    if let Some(n) = value {
        non_negative(issues, &at.key("replicas"), n.into());
    }
}

pub(crate) fn replication_controller(rc: &core::ReplicationController, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(rc.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    replicas(spec.replicas, &at, issues);
    let Some(tpl) = required(spec.template.as_ref(), &at, "template", issues) else { return };
    let tpl_at = at.key("template");
    match &spec.selector {
        // Without a selector the controller selects its template's labels.
        Some(sel) if !sel.is_empty() => selector::map_selector(sel, &at.key("selector"), template_labels(tpl), &tpl_at.key("metadata").key("labels"), issues),
        _ if template_labels(tpl).is_none_or(|l| l.is_empty()) => {
            issues.error(&tpl_at.key("metadata").key("labels"), "must have labels: the controller selects its pods by them")
        }
        _ => {}
    }
    template(tpl, &tpl_at, Context::Template, &[], issues);
}

pub(crate) fn replica_set(rs: &apps::ReplicaSet, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(rs.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    replicas(spec.replicas, &at, issues);
    let Some(tpl) = required(spec.template.as_ref(), &at, "template", issues) else { return };
    let tpl_at = at.key("template");
    selector::label_selector(&spec.selector, &at.key("selector"), template_labels(tpl), &tpl_at.key("metadata").key("labels"), "replicaset", issues);
    template(tpl, &tpl_at, Context::Template, &[], issues);
}

pub(crate) fn deployment(d: &apps::Deployment, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(d.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    if let Some(name) = &d.metadata.name
        && names::dns1123_label(name).is_err()
    {
        issues.warn(&Ptr::root().key("metadata").key("name"), format!("{name:?}: not a DNS label, so pod hostnames derived from it may be cut or altered"));
    }
    replicas(spec.replicas, &at, issues);
    let tpl_at = at.key("template");
    selector::label_selector(&spec.selector, &at.key("selector"), template_labels(&spec.template), &tpl_at.key("metadata").key("labels"), "deployment", issues);
    template(&spec.template, &tpl_at, Context::Template, &[], issues);
    for (field, value) in [("revisionHistoryLimit", spec.revision_history_limit), ("minReadySeconds", spec.min_ready_seconds)] {
        if let Some(v) = value {
            non_negative(issues, &at.key(field), v.into());
        }
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if deadline <= min_ready {
            issues.error(&at.key("progressDeadlineSeconds"), format!("{deadline}: must be greater than minReadySeconds ({min_ready})"));
        }
    }
    if let Some(strategy) = &spec.strategy {
        let at = at.key("strategy");
        let kind = strategy.type_.as_deref().unwrap_or("RollingUpdate");
        one_of(issues, &at.key("type"), kind, &["RollingUpdate", "Recreate"]);
        match (&strategy.rolling_update, kind) {
            (Some(_), "Recreate") => issues.error(&at.key("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"),
            (Some(rolling), _) => {
                let at = at.key("rollingUpdate");
                let surge = rolling.max_surge.as_ref().map(|v| int_or_percent(v, &at.key("maxSurge"), false, issues));
                let unavailable = rolling.max_unavailable.as_ref().map(|v| int_or_percent(v, &at.key("maxUnavailable"), true, issues));
                // Defaults are 25% each; only explicit zeros can both be 0.
                if surge == Some(Some(0)) && unavailable == Some(Some(0)) {
                    issues.error(&at.key("maxUnavailable"), "may not be 0 when `maxSurge` is 0: the rollout could never make progress");
                }
            }
            (None, _) => {}
        }
    }
}

/// Checks an integer or percentage; returns its number (the percentage for
/// `N%`) when valid.
fn int_or_percent(value: &IntOrString, at: &Ptr, at_most_100: bool, issues: &mut Issues) -> Option<i64> {
    let n = match value {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(s) => {
            match s.strip_suffix('%').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).and_then(|n| n.parse::<i64>().ok()) {
                Some(n) => {
                    if at_most_100 && n > 100 {
                        issues.error(at, format!("{s:?}: must not be greater than 100%"));
                    }
                    n
                }
                None => {
                    issues.error(at, format!("{s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%')"));
                    return None;
                }
            }
        }
    };
    non_negative(issues, at, n);
    Some(n)
}

pub(crate) fn stateful_set(s: &apps::StatefulSet, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(s.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    replicas(spec.replicas, &at, issues);
    let tpl_at = at.key("template");
    selector::label_selector(
        &spec.selector,
        &at.key("selector"),
        template_labels(&spec.template),
        &tpl_at.key("metadata").key("labels"),
        "statefulset",
        issues,
    );
    let claims: Vec<&str> = spec.volume_claim_templates.iter().flatten().filter_map(|c| c.metadata.name.as_deref()).collect();
    template(&spec.template, &tpl_at, Context::Template, &claims, issues);
    if let Some(service) = spec.service_name.as_deref().filter(|s| !s.is_empty()) {
        issues.check(&at.key("serviceName"), names::dns1035_label(service));
    }
    if let Some(policy) = &spec.pod_management_policy {
        one_of(issues, &at.key("podManagementPolicy"), policy, &["OrderedReady", "Parallel"]);
    }
    if let Some(strategy) = &spec.update_strategy {
        let at = at.key("updateStrategy");
        let kind = strategy.type_.as_deref().unwrap_or("RollingUpdate");
        one_of(issues, &at.key("type"), kind, &["RollingUpdate", "OnDelete"]);
        if let Some(rolling) = &strategy.rolling_update {
            if kind == "OnDelete" {
                issues.error(&at.key("rollingUpdate"), "only allowed for `type` 'RollingUpdate'");
            }
            if let Some(partition) = rolling.partition {
                non_negative(issues, &at.key("rollingUpdate").key("partition"), partition.into());
            }
        }
    }
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        let at = at.key("persistentVolumeClaimRetentionPolicy");
        for (field, value) in [("whenDeleted", &policy.when_deleted), ("whenScaled", &policy.when_scaled)] {
            if let Some(v) = value {
                one_of(issues, &at.key(field), v, &["Retain", "Delete"]);
            }
        }
    }
    let mut claim_names = std::collections::HashSet::new();
    let volume_names: std::collections::HashSet<&str> = spec.template.spec.iter().flat_map(|s| s.volumes.iter().flatten()).map(|v| v.name.as_str()).collect();
    for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let at = at.key("volumeClaimTemplates").idx(i);
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            issues.error(&at.key("metadata"), "missing required field \"name\"");
            continue;
        }
        issues.check(&at.key("metadata").key("name"), names::dns1123_label(name));
        if !claim_names.insert(name) {
            issues.error(&at.key("metadata").key("name"), format!("duplicate volume claim template {name:?}"));
        }
        if volume_names.contains(name) {
            issues.error(&at.key("metadata").key("name"), format!("{name:?} is also a volume of the pod template"));
        }
        match &claim.spec {
            Some(claim_spec) => storage::claim_spec(claim_spec, &at.key("spec"), issues),
            None => issues.error(&at, "missing required field \"spec\""),
        }
    }
}

/// The actions a pod failure policy rule may take.
const POD_FAILURE_ACTIONS: &[&str] = &["FailJob", "FailIndex", "Ignore", "Count"];

pub(crate) fn job(job: &batch::Job, issues: &mut Issues) {
    let Some(spec) = required(job.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    job_spec(spec, &Ptr::root().key("spec"), issues);
}

pub(crate) fn cron_job(cron: &batch::CronJob, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(cron.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    if spec.schedule.trim().is_empty() {
        issues.error(&at.key("schedule"), "missing required field \"schedule\"");
    } else if let Err(error) = driftless_model::cron::Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
        // A bad zone is the zone's fault; anything else the schedule's.
        let field = if error.starts_with("unknown time zone") { "timeZone" } else { "schedule" };
        issues.error(
            &at.key(field),
            format!("{:?}: {error}", if field == "timeZone" { spec.time_zone.clone().unwrap_or_default() } else { spec.schedule.clone() }),
        );
    }
    if let Some(policy) = &spec.concurrency_policy {
        one_of(issues, &at.key("concurrencyPolicy"), policy, &["Allow", "Forbid", "Replace"]);
    }
    if let Some(seconds) = spec.starting_deadline_seconds {
        non_negative(issues, &at.key("startingDeadlineSeconds"), seconds);
    }
    for (field, value) in [("successfulJobsHistoryLimit", spec.successful_jobs_history_limit), ("failedJobsHistoryLimit", spec.failed_jobs_history_limit)] {
        if let Some(n) = value {
            non_negative(issues, &at.key(field), n.into());
        }
    }
    let template_at = at.key("jobTemplate");
    if let Some(meta) = &spec.job_template.metadata {
        super::meta::labels(meta.labels.as_ref(), &template_at.key("metadata").key("labels"), issues);
    }
    match &spec.job_template.spec {
        Some(job) => job_spec(job, &template_at.key("spec"), issues),
        None => issues.error(&template_at, "missing required field \"spec\""),
    }
}

/// A Job's spec, in a Job or a CronJob's `jobTemplate`.
fn job_spec(spec: &batch::JobSpec, at: &Ptr, issues: &mut Issues) {
    let at = at.clone();
    let tpl_at = at.key("template");
    for (field, value) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
    ] {
        if let Some(n) = value {
            non_negative(issues, &at.key(field), n.into());
        }
    }
    if let Some(seconds) = spec.active_deadline_seconds
        && seconds <= 0
    {
        issues.error(&at.key("activeDeadlineSeconds"), format!("{seconds}: must be greater than 0"));
    }
    let mode = spec.completion_mode.as_deref().unwrap_or("NonIndexed");
    one_of(issues, &at.key("completionMode"), mode, &["NonIndexed", "Indexed"]);
    if mode == "Indexed" && spec.completions.is_none() {
        issues.error(&at.key("completions"), "required when completion mode is \"Indexed\"");
    }
    // Per-index limits and success policies are not run by Driftless's Job
    // controller: refused rather than ignored, since they change when the
    // Job ends.
    for (field, set) in [
        ("backoffLimitPerIndex", spec.backoff_limit_per_index.is_some()),
        ("maxFailedIndexes", spec.max_failed_indexes.is_some()),
        ("successPolicy", spec.success_policy.is_some()),
        ("managedBy", spec.managed_by.is_some()),
    ] {
        if set {
            issues.error(&at.key(field), "not supported by Driftless: its Job controller does not run it");
        }
    }
    if let Some(policy) = &spec.pod_replacement_policy {
        one_of(issues, &at.key("podReplacementPolicy"), policy, &["TerminatingOrFailed", "Failed"]);
    }
    match (&spec.selector, spec.manual_selector == Some(true)) {
        (Some(_), false) => issues.error(&at.key("selector"), "`selector` will be auto-generated: set `manualSelector: true` to choose it"),
        (Some(sel), true) => {
            selector::label_selector(sel, &at.key("selector"), template_labels(&spec.template), &tpl_at.key("metadata").key("labels"), "job", issues);
        }
        (None, true) => issues.error(&at, "missing required field \"selector\" (manualSelector is true)"),
        (None, false) => {}
    }
    let restart_policy = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    if let Some(policy) = &spec.pod_failure_policy {
        let at = at.key("podFailurePolicy");
        if restart_policy != Some("Never") {
            issues.error(&at, "only allowed when the pod template's restartPolicy is \"Never\"");
        }
        let containers: Vec<&str> =
            spec.template.spec.iter().flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter())).map(|c| c.name.as_str()).collect();
        for (i, rule) in policy.rules.iter().enumerate() {
            let at = at.key("rules").idx(i);
            one_of(issues, &at.key("action"), &rule.action, POD_FAILURE_ACTIONS);
            if rule.action == "FailIndex" {
                issues.error(&at.key("action"), "\"FailIndex\": needs backoffLimitPerIndex, which Driftless does not run");
            }
            match (&rule.on_exit_codes, &rule.on_pod_conditions) {
                (Some(_), Some(conditions)) if !conditions.is_empty() => issues.error(&at, "specifying both onExitCodes and onPodConditions is not supported"),
                (None, None) => issues.error(&at, "specifying one of onExitCodes and onPodConditions is required"),
                _ => {}
            }
            if let Some(codes) = &rule.on_exit_codes {
                let at = at.key("onExitCodes");
                one_of(issues, &at.key("operator"), &codes.operator, &["In", "NotIn"]);
                if codes.values.is_empty() {
                    issues.error(&at.key("values"), "at least one value is required");
                }
                if codes.operator == "In" && codes.values.contains(&0) {
                    issues.error(&at.key("values"), "0: must not be 0 for the In operator");
                }
                if let Some(name) = &codes.container_name
                    && !containers.contains(&name.as_str())
                {
                    issues.error(&at.key("containerName"), format!("{name:?}: must be one of the container or initContainer names in the pod template"));
                }
            }
            // An empty status is defaulted to "True".
            for (j, pattern) in rule.on_pod_conditions.iter().flatten().enumerate().filter(|(_, p)| !p.status.is_empty()) {
                one_of(issues, &at.key("onPodConditions").idx(j).key("status"), &pattern.status, &["True", "False", "Unknown"]);
            }
        }
    }
    template(&spec.template, &tpl_at, Context::JobTemplate, &[], issues);
}

pub(crate) fn daemon_set(d: &apps::DaemonSet, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(d.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    let tpl_at = at.key("template");
    selector::label_selector(&spec.selector, &at.key("selector"), template_labels(&spec.template), &tpl_at.key("metadata").key("labels"), "daemonset", issues);
    template(&spec.template, &tpl_at, Context::Template, &[], issues);
    for (field, value) in [("revisionHistoryLimit", spec.revision_history_limit), ("minReadySeconds", spec.min_ready_seconds)] {
        if let Some(v) = value {
            non_negative(issues, &at.key(field), v.into());
        }
    }
    if let Some(strategy) = &spec.update_strategy {
        let at = at.key("updateStrategy");
        let kind = strategy.type_.as_deref().unwrap_or("RollingUpdate");
        one_of(issues, &at.key("type"), kind, &["RollingUpdate", "OnDelete"]);
        if let Some(rolling) = &strategy.rolling_update {
            let at = at.key("rollingUpdate");
            if kind == "OnDelete" {
                issues.error(&at, "only allowed for `type` 'RollingUpdate'");
            }
            let surge = rolling.max_surge.as_ref().map(|v| int_or_percent(v, &at.key("maxSurge"), true, issues));
            let unavailable = rolling.max_unavailable.as_ref().map(|v| int_or_percent(v, &at.key("maxUnavailable"), true, issues));
            // Judged after defaulting, as the API server does: unset is
            // maxUnavailable 1, maxSurge 0.
            match (surge.map_or(Some(0), |s| s), unavailable.map_or(Some(1), |u| u)) {
                (Some(0), Some(0)) => issues.error(&at.key("maxUnavailable"), "may not be 0 when `maxSurge` is 0"),
                (Some(s), Some(u)) if s != 0 && u != 0 => {
                    issues.error(&at.key("maxSurge"), "may not be set when maxUnavailable is non-zero (set maxUnavailable: 0 to surge)")
                }
                _ => {}
            }
        }
    }
}
