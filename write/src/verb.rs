//! The verbs, as pure functions of an object's value as git declares it:
//! what `kubectl scale`, `set image`, `set env`, `set resources`,
//! `rollout restart|pause|resume`, `label` and `annotate` would change,
//! and the commit subject that says so.
//!
//! Must not touch: text or git. The new value is written into the file by
//! `yaml.rs`, and the commit made by `commit.rs`.

use driftless_model::{Kind, ObjectRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::WriteError;

/// kubectl's restart annotation, on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// One imperative change to one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case")]
pub enum Verb {
    /// `scale --replicas N [--current-replicas M]`.
    Scale {
        /// The new count.
        replicas: i64,
        /// kubectl's precondition: the count git declares now.
        #[serde(default)]
        current_replicas: Option<i64>,
    },
    /// `set image CONTAINER=IMAGE...` (`*` for every container).
    SetImage {
        /// Container name (or `*`) and image.
        images: Vec<(String, String)>,
    },
    /// `set env KEY=VALUE... KEY-...`.
    SetEnv {
        /// Only this container (`-c`), else every one.
        #[serde(default)]
        container: Option<String>,
        /// Variables to set.
        #[serde(default)]
        set: Vec<(String, String)>,
        /// Variables to remove.
        #[serde(default)]
        unset: Vec<String>,
    },
    /// `set resources --limits=cpu=200m,memory=512Mi --requests=...`.
    SetResources {
        /// Only this container (`-c`), else every one.
        #[serde(default)]
        container: Option<String>,
        /// Limits to set.
        #[serde(default)]
        limits: Vec<(String, String)>,
        /// Requests to set.
        #[serde(default)]
        requests: Vec<(String, String)>,
    },
    /// `rollout restart`: the template's restartedAt annotation.
    Restart {
        /// The time written (RFC 3339), as kubectl writes it.
        at: String,
    },
    /// `rollout pause`.
    Pause,
    /// `rollout resume`.
    Resume,
    /// `label KEY=VALUE... KEY-...`.
    Label {
        /// Labels to set.
        #[serde(default)]
        set: Vec<(String, String)>,
        /// Labels to remove.
        #[serde(default)]
        unset: Vec<String>,
        /// Whether an existing value may change (kubectl's `--overwrite`).
        #[serde(default)]
        overwrite: bool,
    },
    /// `annotate KEY=VALUE... KEY-...`.
    Annotate {
        /// Annotations to set.
        #[serde(default)]
        set: Vec<(String, String)>,
        /// Annotations to remove.
        #[serde(default)]
        unset: Vec<String>,
        /// Whether an existing value may change.
        #[serde(default)]
        overwrite: bool,
    },
}

fn verb_error(message: impl Into<String>) -> WriteError {
    WriteError::Verb(message.into())
}

/// `deployment/web`, as kubectl names objects in messages.
pub fn display(object: &ObjectRef) -> String {
    format!("{}/{}", object.kind.name().to_ascii_lowercase(), object.name)
}

/// Where a kind keeps its pod template's `spec` and `metadata`.
pub(crate) fn template_pointer(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Pod => Some(""),
        Kind::Deployment | Kind::ReplicaSet | Kind::ReplicationController | Kind::StatefulSet | Kind::DaemonSet | Kind::Job => Some("/spec/template"),
        Kind::CronJob => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// The pod template (or pod) of an object, made if absent.
fn template<'v>(kind: Kind, object: &'v mut Value, verb: &str) -> Result<&'v mut Value, WriteError> {
    let pointer = template_pointer(kind).ok_or_else(|| verb_error(format!("{verb}: a {} has no pod template", kind.name())))?;
    object.pointer_mut(pointer).ok_or_else(|| verb_error(format!("{verb}: the {} declares no pod template", kind.name())))
}

/// The containers (init containers too) of a template's spec.
fn containers<'v>(template: &'v mut Value, verb: &str) -> Result<Vec<&'v mut Value>, WriteError> {
    let spec = template.get_mut("spec").and_then(Value::as_object_mut).ok_or_else(|| verb_error(format!("{verb}: the pod template has no spec")))?;
    let mut all = Vec::new();
    for (field, list) in spec.iter_mut() {
        if field == "containers" || field == "initContainers" {
            all.extend(list.as_array_mut().into_iter().flatten());
        }
    }
    Ok(all)
}

fn name_of(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn map_at<'v>(object: &'v mut Value, field: &str) -> &'v mut Map<String, Value> {
    if !object.get(field).is_some_and(Value::is_object) {
        object[field] = json!({});
    }
    object[field].as_object_mut().expect("made a mapping above")
}

/// Sets and removes entries of `metadata.<field>`, as `kubectl label`
/// does: an existing different value needs `overwrite`.
fn set_metadata(object: &mut Value, field: &str, set: &[(String, String)], unset: &[String], overwrite: bool) -> Result<(), WriteError> {
    let metadata = map_at(object, "metadata");
    let mut entries = metadata.get(field).and_then(Value::as_object).cloned().unwrap_or_default();
    for (key, value) in set {
        if let Some(existing) = entries.get(key)
            && existing.as_str() != Some(value)
            && !overwrite
        {
            return Err(verb_error(format!("'{key}' already has a value ({}), and --overwrite is false", existing.as_str().unwrap_or_default())));
        }
        entries.insert(key.clone(), json!(value));
    }
    for key in unset {
        entries.remove(key);
    }
    if entries.is_empty() {
        metadata.remove(field);
    } else {
        metadata.insert(field.to_owned(), Value::Object(entries));
    }
    Ok(())
}

impl Verb {
    /// The name `Driftless-Verb:` records.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Scale { .. } => "scale",
            Verb::SetImage { .. } => "set-image",
            Verb::SetEnv { .. } => "set-env",
            Verb::SetResources { .. } => "set-resources",
            Verb::Restart { .. } => "rollout-restart",
            Verb::Pause => "rollout-pause",
            Verb::Resume => "rollout-resume",
            Verb::Label { .. } => "label",
            Verb::Annotate { .. } => "annotate",
        }
    }

    /// The commit's subject: `scale deployment/web to 5`.
    pub fn subject(&self, object: &ObjectRef) -> String {
        let target = display(object);
        let pairs = |set: &[(String, String)], unset: &[String]| {
            set.iter().map(|(k, v)| format!("{k}={v}")).chain(unset.iter().map(|k| format!("{k}-"))).collect::<Vec<_>>().join(" ")
        };
        match self {
            Verb::Scale { replicas, .. } => format!("scale {target} to {replicas}"),
            Verb::SetImage { images } => format!("set image {target} {}", pairs(images, &[])),
            Verb::SetEnv { set, unset, .. } => format!("set env {target} {}", pairs(set, unset)),
            Verb::SetResources { limits, requests, .. } => {
                let mut parts = Vec::new();
                if !limits.is_empty() {
                    parts.push(format!("--limits={}", limits.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")));
                }
                if !requests.is_empty() {
                    parts.push(format!("--requests={}", requests.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")));
                }
                format!("set resources {target} {}", parts.join(" "))
            }
            Verb::Restart { .. } => format!("rollout restart {target}"),
            Verb::Pause => format!("rollout pause {target}"),
            Verb::Resume => format!("rollout resume {target}"),
            Verb::Label { set, unset, .. } => format!("label {target} {}", pairs(set, unset)),
            Verb::Annotate { set, unset, .. } => format!("annotate {target} {}", pairs(set, unset)),
        }
    }

    /// Changes `object` (a `kind` as git declares it) as the verb says.
    pub fn apply(&self, kind: Kind, object: &mut Value) -> Result<(), WriteError> {
        match self {
            Verb::Scale { replicas, current_replicas } => {
                if !matches!(kind, Kind::Deployment | Kind::ReplicaSet | Kind::ReplicationController | Kind::StatefulSet) {
                    return Err(verb_error(format!(
                        "cannot scale a {}: only Deployments, ReplicaSets, ReplicationControllers and StatefulSets scale",
                        kind.name()
                    )));
                }
                if *replicas < 0 {
                    return Err(verb_error("--replicas must not be negative"));
                }
                // Kubernetes' default when git leaves it out.
                let declared = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
                if let Some(expected) = current_replicas
                    && *expected != declared
                {
                    return Err(verb_error(format!("Expected replicas to be {expected}, was {declared}")));
                }
                map_at(object, "spec").insert("replicas".into(), json!(replicas));
            }
            Verb::SetImage { images } => {
                let template = template(kind, object, "set image")?;
                let mut containers = containers(template, "set image")?;
                for (name, image) in images {
                    let mut found = false;
                    for container in containers.iter_mut().filter(|c| name == "*" || name_of(c) == name) {
                        container["image"] = json!(image);
                        found = true;
                    }
                    if !found {
                        return Err(verb_error(format!("unable to find container named \"{name}\"")));
                    }
                }
            }
            Verb::SetEnv { container, set, unset } => {
                let template = template(kind, object, "set env")?;
                let mut chosen = select(containers(template, "set env")?, container.as_deref())?;
                for c in chosen.iter_mut() {
                    let env = c.as_object_mut().expect("containers are mappings").entry("env").or_insert_with(|| json!([]));
                    let Some(list) = env.as_array_mut() else { return Err(verb_error("env is not a list")) };
                    for (key, value) in set {
                        match list.iter_mut().find(|e| e.get("name").and_then(Value::as_str) == Some(key)) {
                            // `value` replaces a `valueFrom`, as kubectl's does.
                            Some(entry) => *entry = json!({"name": key, "value": value}),
                            None => list.push(json!({"name": key, "value": value})),
                        }
                    }
                    list.retain(|e| !unset.iter().any(|k| e.get("name").and_then(Value::as_str) == Some(k)));
                    if list.is_empty() {
                        c.as_object_mut().expect("containers are mappings").remove("env");
                    }
                }
            }
            Verb::SetResources { container, limits, requests } => {
                let template = template(kind, object, "set resources")?;
                let mut chosen = select(containers(template, "set resources")?, container.as_deref())?;
                for c in chosen.iter_mut() {
                    let resources = map_at(c, "resources");
                    for (field, pairs) in [("limits", limits), ("requests", requests)] {
                        if pairs.is_empty() {
                            continue;
                        }
                        let entry = resources.entry(field).or_insert_with(|| json!({}));
                        for (name, quantity) in pairs {
                            entry[name] = json!(quantity);
                        }
                    }
                }
            }
            Verb::Restart { at } => {
                if !matches!(kind, Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet) {
                    return Err(verb_error(format!("restarting is not supported for a {}", kind.name())));
                }
                if object.pointer("/spec/paused") == Some(&json!(true)) {
                    return Err(verb_error(format!("can't restart paused {} (run rollout resume first)", display_kind(kind))));
                }
                let template = template(kind, object, "rollout restart")?;
                let metadata = map_at(template, "metadata");
                let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
                annotations[RESTARTED_AT] = json!(at);
            }
            Verb::Pause | Verb::Resume => {
                if kind != Kind::Deployment {
                    return Err(verb_error(format!("{} is not supported for a {}", self.name().replace('-', " "), kind.name())));
                }
                let pause = matches!(self, Verb::Pause);
                let spec = map_at(object, "spec");
                let paused = spec.get("paused").and_then(Value::as_bool).unwrap_or(false);
                if paused == pause {
                    return Err(verb_error(if pause { "is already paused" } else { "is not paused" }));
                }
                if pause {
                    spec.insert("paused".into(), json!(true));
                } else {
                    spec.remove("paused");
                }
            }
            Verb::Label { set, unset, overwrite } => set_metadata(object, "labels", set, unset, *overwrite)?,
            Verb::Annotate { set, unset, overwrite } => set_metadata(object, "annotations", set, unset, *overwrite)?,
        }
        Ok(())
    }
}

fn display_kind(kind: Kind) -> String {
    kind.name().to_ascii_lowercase()
}

/// The named container, or every one.
fn select<'v>(all: Vec<&'v mut Value>, name: Option<&str>) -> Result<Vec<&'v mut Value>, WriteError> {
    let Some(name) = name else { return Ok(all) };
    let chosen: Vec<&mut Value> = all.into_iter().filter(|c| name_of(c) == name).collect();
    if chosen.is_empty() {
        return Err(verb_error(format!("unable to find container named \"{name}\"")));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.35", "env": [{"name": "A", "value": "1"}]}]}}}})
    }

    #[test]
    fn scale_checks_kind_and_precondition() {
        let mut d = deployment();
        Verb::Scale { replicas: 5, current_replicas: Some(2) }.apply(Kind::Deployment, &mut d).unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        let err = Verb::Scale { replicas: 1, current_replicas: Some(2) }.apply(Kind::Deployment, &mut d).unwrap_err();
        assert_eq!(err.to_string(), "Expected replicas to be 2, was 5");
        let err = Verb::Scale { replicas: 1, current_replicas: None }.apply(Kind::ConfigMap, &mut json!({})).unwrap_err();
        assert!(err.to_string().starts_with("cannot scale a ConfigMap"), "{err}");
    }

    #[test]
    fn set_verbs_edit_containers() {
        let mut d = deployment();
        Verb::SetImage { images: vec![("app".into(), "busybox:1.36".into())] }.apply(Kind::Deployment, &mut d).unwrap();
        assert_eq!(d.pointer("/spec/template/spec/containers/0/image").unwrap(), "busybox:1.36");
        let err = Verb::SetImage { images: vec![("nope".into(), "x".into())] }.apply(Kind::Deployment, &mut d).unwrap_err();
        assert_eq!(err.to_string(), "unable to find container named \"nope\"");
        Verb::SetEnv { container: None, set: vec![("B".into(), "2".into())], unset: vec!["A".into()] }.apply(Kind::Deployment, &mut d).unwrap();
        assert_eq!(d.pointer("/spec/template/spec/containers/0/env").unwrap(), &json!([{"name": "B", "value": "2"}]));
        Verb::SetResources { container: Some("app".into()), limits: vec![("memory".into(), "64Mi".into())], requests: vec![] }
            .apply(Kind::Deployment, &mut d)
            .unwrap();
        assert_eq!(d.pointer("/spec/template/spec/containers/0/resources").unwrap(), &json!({"limits": {"memory": "64Mi"}}));
    }

    #[test]
    fn rollout_verbs() {
        let mut d = deployment();
        Verb::Pause.apply(Kind::Deployment, &mut d).unwrap();
        assert_eq!(d["spec"]["paused"], true);
        assert!(Verb::Restart { at: "t".into() }.apply(Kind::Deployment, &mut d).unwrap_err().to_string().contains("paused"));
        Verb::Resume.apply(Kind::Deployment, &mut d).unwrap();
        assert!(d["spec"].get("paused").is_none());
        Verb::Restart { at: "2026-12-03T20:00:00Z".into() }.apply(Kind::Deployment, &mut d).unwrap();
        assert_eq!(d.pointer("/spec/template/metadata/annotations").unwrap(), &json!({RESTARTED_AT: "2026-12-03T20:00:00Z"}));
    }

    #[test]
    fn labels_need_overwrite_to_change() {
        let mut d = deployment();
        Verb::Label { set: vec![("tier".into(), "a".into())], unset: vec![], overwrite: false }.apply(Kind::Deployment, &mut d).unwrap();
        let err = Verb::Label { set: vec![("tier".into(), "b".into())], unset: vec![], overwrite: false }.apply(Kind::Deployment, &mut d).unwrap_err();
        assert_eq!(err.to_string(), "'tier' already has a value (a), and --overwrite is false");
        Verb::Label { set: vec![], unset: vec!["tier".into()], overwrite: false }.apply(Kind::Deployment, &mut d).unwrap();
        assert!(d["metadata"].get("labels").is_none());
    }
}
