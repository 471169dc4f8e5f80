//! `driftless rollout status|history`: waits for a rollout as kubectl
//! does (exit 1 when it fails or the wait times out), and lists a
//! workload's revisions with the commit that made each.

use std::process::ExitCode;

use futures_util::StreamExt;
use serde_json::Value;

use super::describe::target;
use super::get::{client_error, form_query};
use crate::cli::{RolloutArgs, RolloutCommand};
use crate::connect::{block_on, client};
use crate::print::table;
use crate::{CommandError, EXIT_INVALID};

/// Runs a rollout subcommand.
pub fn run(command: &RolloutCommand) -> Result<ExitCode, CommandError> {
    match command {
        RolloutCommand::Status(args) => status(args),
        RolloutCommand::History(args) => history(args),
        RolloutCommand::Restart(target) => super::write::rollout(target, super::write::Rollout::Restart),
        RolloutCommand::Pause(target) => super::write::rollout(target, super::write::Rollout::Pause),
        RolloutCommand::Resume(target) => super::write::rollout(target, super::write::Rollout::Resume),
        RolloutCommand::Undo(args) => super::write::undo(args),
    }
}

/// Where a rollout stands: still going (with kubectl's words), done, or
/// failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Waiting(String),
    Done(String),
    Failed(String),
}

fn n(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// kubectl's `DeploymentStatusViewer`.
pub(crate) fn deployment_progress(d: &Value) -> Progress {
    let name = d.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if n(d, "/metadata/generation") > n(d, "/status/observedGeneration") {
        return Progress::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let conditions = d.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    if conditions.iter().any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded") {
        return Progress::Failed(format!("deployment {name:?} exceeded its progress deadline"));
    }
    let replicas = n(d, "/spec/replicas");
    let updated = n(d, "/status/updatedReplicas");
    let total = n(d, "/status/replicas");
    let available = n(d, "/status/availableReplicas");
    if updated < replicas {
        return Progress::Waiting(format!("Waiting for deployment {name:?} rollout to finish: {updated} out of {replicas} new replicas have been updated..."));
    }
    if total > updated {
        return Progress::Waiting(format!("Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...", total - updated));
    }
    if available < updated {
        return Progress::Waiting(format!("Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."));
    }
    Progress::Done(format!("deployment {name:?} successfully rolled out"))
}

/// kubectl's `StatefulSetStatusViewer`.
pub(crate) fn statefulset_progress(s: &Value) -> Progress {
    if s.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete") {
        return Progress::Failed("rollout status is only available for RollingUpdate strategy type".into());
    }
    if n(s, "/status/observedGeneration") == 0 || n(s, "/metadata/generation") > n(s, "/status/observedGeneration") {
        return Progress::Waiting("Waiting for statefulset spec update to be observed...".into());
    }
    let replicas = n(s, "/spec/replicas");
    let ready = n(s, "/status/readyReplicas");
    if ready < replicas {
        return Progress::Waiting(format!("Waiting for {} pods to be ready...", replicas - ready));
    }
    let partition = n(s, "/spec/updateStrategy/rollingUpdate/partition");
    let updated = n(s, "/status/updatedReplicas");
    let update_revision = s.pointer("/status/updateRevision").and_then(Value::as_str).unwrap_or("");
    if partition > 0 {
        if updated < replicas - partition {
            return Progress::Waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                replicas - partition
            ));
        }
        return Progress::Done(format!("partitioned roll out complete: {updated} new pods have been updated..."));
    }
    if s.pointer("/status/currentRevision") != s.pointer("/status/updateRevision") {
        return Progress::Waiting(format!("waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."));
    }
    Progress::Done(format!("statefulset rolling update complete {} pods at revision {update_revision}...", n(s, "/status/currentReplicas")))
}

/// kubectl's `DaemonSetStatusViewer`.
pub(crate) fn daemonset_progress(d: &Value) -> Progress {
    if d.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete") {
        return Progress::Failed("rollout status is only available for RollingUpdate strategy type".into());
    }
    let name = d.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if n(d, "/status/observedGeneration") == 0 || n(d, "/metadata/generation") > n(d, "/status/observedGeneration") {
        return Progress::Waiting("Waiting for daemon set spec update to be observed...".into());
    }
    let desired = n(d, "/status/desiredNumberScheduled");
    let updated = n(d, "/status/updatedNumberScheduled");
    if updated < desired {
        return Progress::Waiting(format!("Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."));
    }
    let available = n(d, "/status/numberAvailable");
    if available < desired {
        return Progress::Waiting(format!("Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."));
    }
    Progress::Done(format!("daemon set {name:?} successfully rolled out"))
}

fn progress(kind: &str, object: &Value) -> Result<Progress, CommandError> {
    match kind {
        "Deployment" => Ok(deployment_progress(object)),
        "StatefulSet" => Ok(statefulset_progress(object)),
        "DaemonSet" => Ok(daemonset_progress(object)),
        other => Err(CommandError::Usage(format!("no status viewer has been implemented for {other}"))),
    }
}

fn status(args: &RolloutArgs) -> Result<ExitCode, CommandError> {
    let (resource, name) = target(&args.target, args.name.as_deref())?;
    block_on(async {
        let client = client(&args.connect);
        // A commit just made may not be applied yet: have the daemon look
        // at the branch first, so the status is of what git says now.
        if let Err(error) = client.post("/driftless/v1/sync", &serde_json::json!({})).await {
            tracing::debug!(%error, "could not sync before reporting");
        }
        let path = resource.object_path(&args.namespace, &name);
        let object = client.get(&path).await.map_err(client_error)?;
        let mut last = String::new();
        let mut report = |p: &Progress| -> Option<Result<ExitCode, CommandError>> {
            match p {
                Progress::Waiting(text) => {
                    if *text != last {
                        println!("{text}");
                        last = text.clone();
                    }
                    None
                }
                Progress::Done(text) => {
                    println!("{text}");
                    Some(Ok(ExitCode::SUCCESS))
                }
                Progress::Failed(text) => {
                    eprintln!("error: {text}");
                    Some(Ok(ExitCode::from(EXIT_INVALID)))
                }
            }
        };
        if let Some(done) = report(&progress(resource.name(), &object)?) {
            return done;
        }
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        let rv = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_owned();
        let field = format!("metadata.name={name}");
        let query = form_query(&[("watch", Some("1")), ("fieldSelector", Some(&field)), ("resourceVersion", Some(&rv))]);
        let watch_path = format!("{}{query}", resource.list_path(Some(&args.namespace)));
        let deadline = (!args.timeout.is_zero()).then(|| tokio::time::Instant::now() + args.timeout);
        let mut stream = client.stream(&watch_path).await.map_err(client_error)?;
        let mut buffer = String::new();
        loop {
            let chunk = tokio::select! {
                chunk = stream.next() => chunk,
                _ = sleep_until(deadline) => {
                    eprintln!("error: timed out waiting for the condition");
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
            };
            let Some(chunk) = chunk else {
                return Err(CommandError::Usage("the daemon ended the watch".into()));
            };
            buffer.push_str(&String::from_utf8_lossy(&chunk.map_err(client_error)?));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
                if event["type"] == "DELETED" {
                    eprintln!("error: {} {name:?} was deleted", resource.name().to_ascii_lowercase());
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
                if let Some(done) = report(&progress(resource.name(), &event["object"])?) {
                    return done;
                }
            }
        }
    })
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending::<()>().await,
    }
}

fn history(args: &RolloutArgs) -> Result<ExitCode, CommandError> {
    let (resource, name) = target(&args.target, args.name.as_deref())?;
    block_on(async {
        let client = client(&args.connect);
        let object = client.get(&resource.object_path(&args.namespace, &name)).await.map_err(client_error)?;
        let uid = object.pointer("/metadata/uid").cloned().unwrap_or_default();
        let (path, revision_of): (String, fn(&Value) -> i64) = match resource.name() {
            "Deployment" => (format!("/apis/apps/v1/namespaces/{}/replicasets", args.namespace), |rs| {
                rs.pointer("/metadata/annotations/deployment.kubernetes.io~1revision").and_then(Value::as_str).and_then(|r| r.parse().ok()).unwrap_or(0)
            }),
            "StatefulSet" | "DaemonSet" => {
                (format!("/apis/apps/v1/namespaces/{}/controllerrevisions", args.namespace), |r| r.get("revision").and_then(Value::as_i64).unwrap_or(0))
            }
            other => return Err(CommandError::Usage(format!("no history viewer has been implemented for {other}"))),
        };
        let list = client.get(&path).await.map_err(client_error)?;
        let mut rows: Vec<(i64, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|os| os.iter().any(|o| o["uid"] == uid)))
            .map(|o| {
                let cause = o.pointer("/metadata/annotations/kubernetes.io~1change-cause").and_then(Value::as_str).unwrap_or("<none>").to_owned();
                (revision_of(o), cause)
            })
            .collect();
        rows.sort();
        println!("{}.apps/{name} ", resource.name().to_ascii_lowercase());
        let header = vec!["REVISION".to_owned(), "CHANGE-CAUSE".to_owned()];
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(r, c)| vec![r.to_string(), c]).collect();
        print!("{}", table::render(&header, &rows));
        Ok(ExitCode::SUCCESS)
    })
}
