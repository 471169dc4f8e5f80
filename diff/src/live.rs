//! The live side of a plan: what runs now.
//!
//! The daemon plans against its store ([`Live`] over stored JSON, with the
//! fields the API server and controllers filled in); `driftless plan`
//! plans against the objects of the revision the daemon would be running
//! ([`Revision`]). Both go through the same engine, so a pull request's
//! plan is what the daemon does when the branch moves.

use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_model::{Object, ObjectRef};
use serde_json::Value;

use crate::normalize::{applied, normalize, normalize_stored};

/// One live object.
#[derive(Clone, Debug)]
pub enum LiveObject<'a> {
    /// An object of a revision, as written: what the daemon stores once it
    /// applies that revision.
    Declared(&'a Object),
    /// An object as a store holds it: defaults, `status`, server metadata
    /// and allocated fields included.
    Stored(Arc<Value>),
    /// A Job that ran to the end and was removed after its
    /// `ttlSecondsAfterFinished`, as it was then: the same spec is not run
    /// again, and a changed one is a new run.
    Finished(Arc<Value>),
}

impl LiveObject<'_> {
    /// The object as stored: what allocated fields are carried over from.
    pub(crate) fn value(&self) -> std::borrow::Cow<'_, Value> {
        match self {
            LiveObject::Declared(object) => std::borrow::Cow::Owned(applied(object)),
            LiveObject::Stored(value) | LiveObject::Finished(value) => std::borrow::Cow::Borrowed(value),
        }
    }

    /// The canonical form, for comparing with the desired object.
    pub(crate) fn normalized(&self, object: &ObjectRef) -> Value {
        match self {
            LiveObject::Declared(declared) => normalize(declared),
            LiveObject::Stored(value) | LiveObject::Finished(value) => normalize_stored(object.kind, value),
        }
    }

    /// Whether the object is being deleted (its deletion cannot be undone,
    /// so keeping it declared means making it again).
    pub(crate) fn deleting(&self) -> bool {
        match self {
            // A manifest cannot ask for a deletion.
            LiveObject::Declared(_) => false,
            LiveObject::Stored(value) => value.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            LiveObject::Finished(_) => false,
        }
    }
}

/// What runs now, as the engine needs to see it.
pub trait Live {
    /// The live object with this identity, if there is one.
    fn get(&self, object: &ObjectRef) -> Option<LiveObject<'_>>;
    /// Every live object git declared: the ones a revision that no longer
    /// declares them deletes. Objects controllers made are not listed.
    fn declared(&self) -> Vec<ObjectRef>;
}

/// A revision's objects as the live side: what runs once the daemon has
/// applied that revision.
#[derive(Clone, Debug, Default)]
pub struct Revision<'a> {
    objects: BTreeMap<&'a ObjectRef, &'a Object>,
}

impl<'a> Revision<'a> {
    /// The revision holding `objects`.
    pub fn new(objects: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>) -> Revision<'a> {
        Revision { objects: objects.into_iter().collect() }
    }
}

impl Live for Revision<'_> {
    fn get(&self, object: &ObjectRef) -> Option<LiveObject<'_>> {
        self.objects.get(object).map(|o| LiveObject::Declared(o))
    }

    fn declared(&self) -> Vec<ObjectRef> {
        self.objects.keys().map(|r| (*r).clone()).collect()
    }
}

/// What runs, copied out of a store so that it can travel: the objects a
/// plan needs, and which of them git declared. `driftless plan --live`
/// plans a revision against the snapshot the daemon sends, with the same
/// engine the daemon applies with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    objects: BTreeMap<ObjectRef, (Arc<Value>, bool)>,
    declared: Vec<ObjectRef>,
}

impl Snapshot {
    /// A snapshot of `live`: every object it declares, and each of
    /// `wanted` that it holds (an object git starts declaring may exist
    /// already).
    pub fn of(live: &dyn Live, wanted: &[ObjectRef]) -> Snapshot {
        let declared = live.declared();
        let mut objects = BTreeMap::new();
        for object in declared.iter().chain(wanted) {
            if objects.contains_key(object) {
                continue;
            }
            let entry = match live.get(object) {
                Some(LiveObject::Stored(value)) => (value, false),
                Some(LiveObject::Finished(value)) => (value, true),
                Some(LiveObject::Declared(declared)) => (Arc::new(applied(declared)), false),
                None => continue,
            };
            objects.insert(object.clone(), entry);
        }
        Snapshot { objects, declared }
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The wire form: `{"declared": [ref...], "objects": [{"ref": ref,
    /// "value": object, "finished": bool}...]}`, each ref `{"kind",
    /// "namespace", "name"}`.
    pub fn to_json(&self) -> Value {
        let objects: Vec<Value> = self
            .objects
            .iter()
            .map(|(object, (value, finished))| serde_json::json!({"ref": ref_json(object), "value": &**value, "finished": finished}))
            .collect();
        serde_json::json!({"declared": self.declared.iter().map(ref_json).collect::<Vec<_>>(), "objects": objects})
    }

    /// Reads the wire form back; `None` when it is not one.
    pub fn from_json(value: &Value) -> Option<Snapshot> {
        let declared = value.get("declared")?.as_array()?.iter().map(ref_from_json).collect::<Option<Vec<_>>>()?;
        let mut objects = BTreeMap::new();
        for entry in value.get("objects")?.as_array()? {
            let object = ref_from_json(entry.get("ref")?)?;
            let finished = entry.get("finished").and_then(Value::as_bool).unwrap_or(false);
            objects.insert(object, (Arc::new(entry.get("value")?.clone()), finished));
        }
        Some(Snapshot { objects, declared })
    }
}

/// An object reference on the wire.
pub fn ref_json(object: &ObjectRef) -> Value {
    serde_json::json!({"kind": object.kind.name(), "namespace": object.namespace, "name": object.name})
}

/// An object reference read from the wire; `None` for an unknown kind.
pub fn ref_from_json(value: &Value) -> Option<ObjectRef> {
    let kind = driftless_model::Kind::from_name(value.get("kind")?.as_str()?)?;
    Some(ObjectRef::new(kind, value.get("namespace").and_then(Value::as_str), value.get("name")?.as_str()?))
}

impl Live for Snapshot {
    fn get(&self, object: &ObjectRef) -> Option<LiveObject<'_>> {
        self.objects.get(object).map(|(value, finished)| if *finished { LiveObject::Finished(value.clone()) } else { LiveObject::Stored(value.clone()) })
    }

    fn declared(&self) -> Vec<ObjectRef> {
        self.declared.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_model::Kind;

    fn object(value: Value) -> (ObjectRef, Object) {
        let kind = Kind::from_name(value["kind"].as_str().unwrap()).unwrap();
        let object = Object::from_value(kind, &value).unwrap();
        (ObjectRef::new(kind, value.pointer("/metadata/namespace").and_then(Value::as_str), value["metadata"]["name"].as_str().unwrap()), object)
    }

    #[test]
    fn a_snapshot_plans_as_the_live_side_it_copies() {
        let cm = |name: &str, v: &str| object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": v}}));
        let running = [cm("a", "1"), cm("b", "1")];
        let live = Revision::new(running.iter().map(|(r, o)| (r, o)));
        let wanted = [cm("a", "2"), cm("c", "1")];
        let refs: Vec<ObjectRef> = wanted.iter().map(|(r, _)| r.clone()).collect();
        let snapshot = Snapshot::from_json(&Snapshot::of(&live, &refs).to_json()).unwrap();
        assert_eq!(snapshot.len(), 2);
        let direct = crate::plan(wanted.iter().map(|(r, o)| (r, o)), &live);
        let copied = crate::plan(wanted.iter().map(|(r, o)| (r, o)), &snapshot);
        assert_eq!(crate::render::json(&direct), crate::render::json(&copied));
        assert_eq!(copied.actions.len(), 3, "update a, create c, delete b: {:?}", crate::render::json(&copied));
    }

    #[test]
    fn unknown_kinds_do_not_read_as_a_snapshot() {
        let wire = serde_json::json!({"declared": [{"kind": "Widget", "name": "x"}], "objects": []});
        assert!(Snapshot::from_json(&wire).is_none());
    }
}
