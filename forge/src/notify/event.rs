//! The notification body: Flux's event shape, so that anything that reads
//! Flux notification-controller's generic and generic-hmac providers reads
//! ours.
//!
//! Shape from Flux's "Events" spec (`involvedObject`, `severity`,
//! `timestamp`, `message`, `reason`, `metadata`, `reportingController`):
//! <https://fluxcd.io/flux/components/notification/events/#event-structure>,
//! and the generic-hmac provider that signs it:
//! <https://fluxcd.io/flux/components/notification/providers/#generic-webhook-with-hmac>.
//! Owns only the type and its JSON; what is worth telling is the daemon's
//! call.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// The controller name every event carries in `reportingController`.
pub const REPORTING_CONTROLLER: &str = "driftless";

/// One notification, serialized as Flux's `Event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The object the event is about (the app, the sync).
    pub involved_object: ObjectRef,
    /// `info` or `error`.
    pub severity: Severity,
    /// When it happened, RFC 3339 in UTC to the second.
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: Timestamp,
    /// A sentence for humans.
    pub message: String,
    /// A CamelCase word for machines.
    pub reason: Reason,
    /// Extra facts; `revision` is `<branch>@sha1:<sha>` as in Flux.
    pub metadata: BTreeMap<String, String>,
    /// Always [`REPORTING_CONTROLLER`].
    pub reporting_controller: String,
}

/// Flux's `involvedObject`: a Kubernetes object reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `Deployment`, `Kustomization`, ...
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// `apps/v1`, ...
    pub api_version: String,
}

/// Flux's two severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Things went as they should.
    Info,
    /// Someone should look.
    Error,
}

/// Why the event was sent, serialized as its variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// A commit was applied and everything converged (Flux's own word).
    ReconciliationSucceeded,
    /// Applying a commit failed (Flux's own word).
    ReconciliationFailed,
    /// A commit was refused before anything was applied (bad signature,
    /// invalid manifests).
    SyncRefused,
    /// A rollout did not become ready.
    RolloutFailed,
    /// A failed rollout was rolled back to the previous revision.
    RolledBack,
}

impl Event {
    /// An event stamped now, reported by `driftless`, with no metadata.
    pub fn new(involved_object: ObjectRef, severity: Severity, reason: Reason, message: impl Into<String>) -> Self {
        Event {
            involved_object,
            severity,
            timestamp: Timestamp::now(),
            message: message.into(),
            reason,
            metadata: BTreeMap::new(),
            reporting_controller: REPORTING_CONTROLLER.to_owned(),
        }
    }

    /// Adds `revision: <branch>@sha1:<sha>`, Flux's revision format.
    pub fn with_revision(self, branch: &str, sha: &str) -> Self {
        self.with_metadata("revision", revision(branch, sha))
    }

    /// Adds one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Flux's revision string: `main@sha1:<sha>`.
pub fn revision(branch: &str, sha: &str) -> String {
    format!("{branch}@sha1:{sha}")
}

fn rfc3339<S: Serializer>(timestamp: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    // Whole seconds and a Z, as Flux's own events carry ("2022-10-28T07:26:19Z").
    serializer.collect_str(&timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_flux_shape() {
        let mut event = Event::new(
            ObjectRef { kind: "Deployment".into(), namespace: "apps".into(), name: "web".into(), api_version: "apps/v1".into() },
            Severity::Error,
            Reason::RolloutFailed,
            "web did not become ready",
        )
        .with_revision("main", "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1");
        event.timestamp = "2022-10-28T07:26:19.5Z".parse().unwrap();
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "involvedObject": { "kind": "Deployment", "namespace": "apps", "name": "web", "apiVersion": "apps/v1" },
                "severity": "error",
                "timestamp": "2022-10-28T07:26:19Z",
                "message": "web did not become ready",
                "reason": "RolloutFailed",
                "metadata": { "revision": "main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1" },
                "reportingController": "driftless"
            })
        );
    }
}
