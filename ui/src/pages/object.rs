//! One object: its health and status, its manifest as git holds it (file,
//! line and commit), the fields where what runs differs from what git
//! declares (the change engine's own comparison, so the page shows what
//! the next sync would change), the live object, its events, and for a
//! pod its containers and their logs, followed live.
//!
//! Must not touch: git or the store except by reading. The manifest comes
//! from the write path's `open` (the document `driftless edit` would
//! open), the drift from `driftless_diff::plan`. Secret values never
//! appear: the live object is redacted by the engine's rules, and a
//! Secret's document is not shown.

use driftless_api::ApiState;
use driftless_diff::{FieldChange, Plan};
use driftless_manifest::RawFile;
use driftless_model::{Kind, ObjectRef};
use driftless_store::{Key, Store};
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::health;
use crate::pages::encode;

/// Longest name or namespace a path may carry (Kubernetes' 253).
const MAX_NAME: usize = 253;

/// The object a page is about, checked.
#[derive(Clone, Debug)]
pub(crate) struct Named {
    pub(crate) kind: Kind,
    /// Empty for a cluster-scoped kind.
    pub(crate) namespace: String,
    pub(crate) name: String,
}

/// The namespace segment of a cluster-scoped object's path.
const CLUSTER: &str = "-";

impl Named {
    /// From the path's segments, or why they name nothing.
    pub(crate) fn parse(kind: &str, namespace: &str, name: &str) -> Result<Named, String> {
        let kind = Kind::from_name(kind).ok_or_else(|| format!("no kind {kind:?}"))?;
        let fits = |s: &str| !s.is_empty() && s.len() <= MAX_NAME;
        if !fits(name) || !fits(namespace) {
            return Err("a name or namespace is empty or longer than 253 characters".into());
        }
        let namespace = if kind.namespaced() { namespace.to_owned() } else { String::new() };
        Ok(Named { kind, namespace, name: name.to_owned() })
    }

    /// The page's path.
    pub(crate) fn href(kind: Kind, namespace: &str, name: &str) -> String {
        let namespace = if kind.namespaced() && !namespace.is_empty() { namespace } else { CLUSTER };
        format!("/ui/objects/{}/{}/{}", kind.name(), encode(namespace), encode(name))
    }

    fn key(&self) -> Key {
        Key::new(self.kind, self.namespace.clone(), self.name.clone())
    }

    fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind, (!self.namespace.is_empty()).then_some(self.namespace.as_str()), self.name.clone())
    }
}

/// The document git declares the object with, as the write path opens it.
struct Declared {
    file: String,
    line: usize,
    commit: String,
    text: String,
}

/// What git says about the object: its document, or why there is none.
fn declared(api: &ApiState, named: &Named) -> Result<Declared, String> {
    let Some(writes) = &api.writes else { return Err("this daemon syncs no repository".into()) };
    let request = json!({
        "kind": named.kind.name(), "namespace": named.namespace, "name": named.name,
        "change": "open", "author": {"name": "dashboard", "email": "dashboard@driftless.local"},
    });
    let opened = writes.write(request).map_err(|e| e.to_string())?;
    let text = |k: &str| opened[k].as_str().unwrap_or_default().to_owned();
    Ok(Declared { file: text("file"), line: opened["line"].as_u64().unwrap_or(1) as usize, commit: text("commit"), text: text("text") })
}

/// The fields the next sync would change, by the change engine: the
/// declared document planned against the store.
fn drift(store: &dyn Store, named: &Named, declared: &Declared) -> Result<Vec<FieldChange>, String> {
    let file = RawFile::new(declared.file.as_str().into(), declared.text.clone().into_bytes());
    let report = driftless_validate::validate([file.parse()]);
    let wanted = named.object_ref();
    let Some(entry) = report.objects.get(&wanted) else {
        let errors: Vec<String> = report.errors().map(|e| e.to_string()).collect();
        return Err(format!("the document does not validate on its own: {}", errors.join("; ")));
    };
    let plan: Plan = driftless_diff::plan([(&wanted, &entry.object)], &driftless_sync::StoreLive::new(store));
    Ok(plan
        .actions
        .into_iter()
        .filter(|a| a.object == wanted)
        .flat_map(|a| match a.change {
            driftless_diff::Change::Update { fields, .. } | driftless_diff::Change::Replace { fields, .. } => fields,
            driftless_diff::Change::Create => vec![FieldChange { path: "(the object)".into(), before: None, after: Some(json!("created")) }],
            driftless_diff::Change::Delete => Vec::new(),
        })
        .collect())
}

/// The live object as it may be shown: bookkeeping dropped, Secret values
/// redacted.
fn shown(kind: Kind, value: &Value) -> String {
    let mut value = driftless_diff::redacted(kind, value);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    serde_yaml_ng::to_string(&value).unwrap_or_default()
}

fn events(store: &dyn Store, named: &Named, uid: &str) -> Vec<Value> {
    let namespace = if named.kind.namespaced() { Some(named.namespace.as_str()) } else { None };
    let mut events: Vec<Value> = store
        .list(Kind::Event, namespace)
        .0
        .iter()
        .filter(|e| {
            let involved = |f: &str| e.pointer(&format!("/involvedObject/{f}")).and_then(Value::as_str).unwrap_or_default();
            involved("uid") == uid || (uid.is_empty() && involved("kind") == named.kind.name() && involved("name") == named.name)
        })
        .map(|e| (**e).clone())
        .collect();
    events.sort_by(|a, b| b["lastTimestamp"].as_str().cmp(&a["lastTimestamp"].as_str()));
    events.truncate(100);
    events
}

/// The page's content (off the async workers: git and store reads).
pub(crate) fn render(api: &ApiState, named: &Named, now: jiff::Timestamp) -> Markup {
    let store = &*api.store;
    let live = store.get(&named.key());
    let assessment = health::assess(named.kind.name(), live.as_deref());
    let declared = declared(api, named);
    let uid = live.as_deref().and_then(|v| v.pointer("/metadata/uid")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let owner = live.as_deref().and_then(|v| v.pointer("/metadata/ownerReferences")).and_then(Value::as_array).and_then(|o| o.first()).cloned();
    let secret = named.kind == Kind::Secret;
    html! {
        h1 { span.muted { (named.kind.name()) "/" } (named.name) " "
            span class={ "health health-" (assessment.health.as_str()) } { (assessment.health.as_str()) } }
        @if !named.namespace.is_empty() { p.muted { "Namespace " code { (named.namespace) } } }
        @if !assessment.message.is_empty() { p { (assessment.message) } }
        // A pod's log first: it is what one opens a pod for. It stays out
        // of the part the script refreshes, which would cut it short.
        @if let (Kind::Pod, Some(value)) = (named.kind, live.as_deref()) { (logs(named, value)) }
        div id="live" {
            section aria-labelledby="git" {
                h2 id="git" { "In git" }
                @match &declared {
                    Ok(doc) => {
                        p { code { (doc.file) ":" (doc.line) } " at commit " code { (&doc.commit[..doc.commit.len().min(7)]) } }
                        @if secret { p.muted { "A Secret's document is not shown here." } } @else { pre { code { (doc.text) } } }
                    }
                    Err(why) => {
                        @if let Some(owner) = &owner {
                            @let (kind, name) = (owner["kind"].as_str().unwrap_or_default(), owner["name"].as_str().unwrap_or_default());
                            p { "Not declared in git: made by "
                                a href=(Named::href(Kind::from_name(kind).unwrap_or(named.kind), &named.namespace, name)) { (kind) "/" (name) } "." }
                        } @else {
                            p.muted { (why) }
                        }
                    }
                }
            }
            @if let Ok(doc) = &declared {
                section aria-labelledby="drift" {
                    h2 id="drift" { "Git against what runs" }
                    @match drift(store, named, doc) {
                        Ok(fields) if fields.is_empty() => p { "What runs matches git." },
                        Ok(fields) => {
                            p { "The next sync changes these fields:" }
                            div.table-wrap { table {
                                thead { tr { th scope="col" { "Field" } th scope="col" { "Running" } th scope="col" { "Git" } } }
                                tbody { @for field in &fields { tr {
                                    td { code { (field.path) } }
                                    td { code { (value_text(field.before.as_ref())) } }
                                    td { code { (value_text(field.after.as_ref())) } }
                                } } }
                            } }
                        }
                        Err(why) => p.muted { "Not compared: " (why) },
                    }
                }
            }
            @if let Some(value) = live.as_deref() {
                @if named.kind == Kind::Pod { (containers(value)) }
                section aria-labelledby="events" {
                    h2 id="events" { "Events" }
                    @let events = events(store, named, &uid);
                    @if events.is_empty() { p.muted { "None." } } @else {
                        div.table-wrap { table {
                            thead { tr { th scope="col" { "Type" } th scope="col" { "Reason" } th scope="col" { "Age" } th scope="col" { "Message" } } }
                            tbody { @for e in &events { tr {
                                td { (e["type"].as_str().unwrap_or_default()) }
                                td { (e["reason"].as_str().unwrap_or_default()) }
                                td { (driftless_printers::age::since(e.get("lastTimestamp"), now)) }
                                td { (e["message"].as_str().unwrap_or_default()) }
                            } } }
                        } }
                    }
                }
                details {
                    summary { "The live object" }
                    pre { code { (shown(named.kind, value)) } }
                }
            } @else {
                p.error role="status" { "Nothing by this name runs." }
            }
        }
    }
}

fn value_text(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A container state as kubectl describe words it.
fn state_text(state: Option<&Value>) -> String {
    let Some((name, detail)) = state.and_then(Value::as_object).and_then(|m| m.iter().next()) else { return String::new() };
    let reason = detail.get("reason").and_then(Value::as_str);
    let code = detail.get("exitCode").and_then(Value::as_i64);
    let mut out = name.clone();
    if let Some(reason) = reason {
        out.push_str(&format!(" ({reason})"));
    }
    if let Some(code) = code {
        out.push_str(&format!(", exit code {code}"));
    }
    out
}

fn containers(pod: &Value) -> Markup {
    let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        section aria-labelledby="containers" {
            h2 id="containers" { "Containers" }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Image" } th scope="col" { "State" } th scope="col" { "Ready" } th scope="col" { "Restarts" } th scope="col" { "Last state" } } }
                tbody { @for c in &statuses { tr data-container=(c["name"].as_str().unwrap_or_default()) {
                    td { (c["name"].as_str().unwrap_or_default()) }
                    td { code { (c["image"].as_str().unwrap_or_default()) } }
                    td { (state_text(c.get("state"))) }
                    td { (if c["ready"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                    td { (c["restartCount"].as_i64().unwrap_or(0)) }
                    td { (state_text(c.get("lastState"))) }
                } } }
            } }
        }
    }
}

/// The logs panel: each container's log, followed over server-sent
/// events by the page's script; without script, a link to the text.
fn logs(named: &Named, pod: &Value) -> Markup {
    let names: Vec<&str> = pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let base = Named::href(named.kind, &named.namespace, &named.name);
    html! {
        section aria-labelledby="logs" {
            h2 id="logs" { "Logs" }
            @for name in &names {
                h3 { "Container " code { (name) } }
                pre.logs tabindex="0" aria-live="polite" aria-label={ "Log of container " (name) } data-follow={ (base) "/logs?container=" (encode(name)) } {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_objects_and_refuse_what_names_nothing() {
        let named = Named::parse("Deployment", "default", "web").unwrap();
        assert_eq!((named.kind, named.namespace.as_str()), (Kind::Deployment, "default"));
        assert_eq!(Named::parse("Namespace", "-", "apps").unwrap().namespace, "", "cluster-scoped");
        assert!(Named::parse("Gizmo", "default", "x").unwrap_err().contains("no kind"));
        assert!(Named::parse("Pod", "default", &"x".repeat(254)).is_err());
        assert_eq!(Named::href(Kind::Pod, "default", "a b<c>"), "/ui/objects/Pod/default/a%20b%3Cc%3E");
        assert_eq!(Named::href(Kind::Namespace, "", "apps"), "/ui/objects/Namespace/-/apps");
    }

    #[test]
    fn container_states_read_as_describe_words_them() {
        let waiting = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        let done = json!({"terminated": {"reason": "Error", "exitCode": 3}});
        assert_eq!(state_text(Some(&waiting)), "waiting (CrashLoopBackOff)");
        assert_eq!(state_text(Some(&done)), "terminated (Error), exit code 3");
        assert_eq!(state_text(None), "");
    }
}
