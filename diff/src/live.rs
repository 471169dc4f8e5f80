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
