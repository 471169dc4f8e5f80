//! Replicas an autoscaler owns. While a HorizontalPodAutoscaler in the
//! desired set targets a workload, the HPA, not git, decides that
//! workload's `spec.replicas`: the engine keeps the running count where
//! git declares another, and says so ([`Held`]). This is how Driftless
//! avoids the fight Argo CD and Flux have with HPAs (their users add
//! `ignoreDifferences` on `/spec/replicas`, or see counts reset): a commit
//! changing only the declared count changes nothing that runs, a template
//! change rolls out at the HPA's count, and removing the HPA hands the
//! count back to git.
//!
//! Must not touch: anything but the objects it is given.

use std::collections::BTreeMap;

use driftless_model::{Kind, Object, ObjectRef};
use serde::Serialize;
use serde_json::Value;

/// A workload whose declared replicas the plan leaves alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The workload.
    #[serde(serialize_with = "display")]
    pub object: ObjectRef,
    /// The HorizontalPodAutoscaler that owns its replicas.
    pub autoscaler: String,
    /// What git declares (`None`: unset).
    pub declared: Option<i64>,
    /// What runs, and stays.
    pub running: i64,
}

fn display<S: serde::Serializer>(object: &ObjectRef, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(object)
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let declared = self.declared.map_or_else(|| "unset".to_owned(), |d| d.to_string());
        write!(f, "replicas of {} owned by HPA {}: declared {declared} ignored, running {}", self.object.kind_name(), self.autoscaler, self.running)
    }
}

/// Each workload the desired HPAs target, with the HPA's name.
pub(crate) fn owners<'a>(desired: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>) -> BTreeMap<ObjectRef, String> {
    let mut owners = BTreeMap::new();
    for (object_ref, object) in desired {
        let Object::HorizontalPodAutoscaler(hpa) = object else { continue };
        let Some(target) = hpa.spec.as_ref().map(|s| &s.scale_target_ref) else { continue };
        let Some(kind) = Kind::from_name(&target.kind) else { continue };
        owners.insert(ObjectRef::new(kind, object_ref.namespace.as_deref(), target.name.clone()), object_ref.name.clone());
    }
    owners
}

/// Keeps `live`'s replicas in `write` (the object to be written) for a
/// workload `autoscaler` owns; what was held, when git declares another
/// count.
pub(crate) fn hold(object: &ObjectRef, autoscaler: &str, write: &mut Value, live: &Value) -> Option<Held> {
    let running = live.pointer("/spec/replicas").and_then(Value::as_i64)?;
    let declared = write.pointer("/spec/replicas").and_then(Value::as_i64);
    write.get_mut("spec")?.as_object_mut()?.insert("replicas".into(), Value::from(running));
    (declared != Some(running)).then(|| Held { object: object.clone(), autoscaler: autoscaler.to_owned(), declared, running })
}
