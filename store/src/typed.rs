//! Typed access for callers that work with `k8s-openapi` objects: the kind
//! comes from the type ([`KindOf`]), never from a string.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use driftless_model::KindOf;
use driftless_model::k8s_openapi::Metadata;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::{Batch, Key, Op, Store, StoreError};

/// The key of a typed object.
pub fn key_of<T: KindOf + Metadata<Ty = ObjectMeta>>(object: &T) -> Key {
    let meta = object.metadata();
    Key::new(T::KIND_OF, meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// The objects of one kind in a store, typed (`store.api::<Pod>()`).
pub struct Api<'a, S: ?Sized, T> {
    store: &'a S,
    kind: PhantomData<fn() -> T>,
}

impl<S: Store + ?Sized, T: KindOf> Api<'_, S, T> {
    /// The object `namespace/name` (`""` for cluster-scoped kinds), if it
    /// exists and parses.
    pub fn get(&self, namespace: &str, name: &str) -> Option<T> {
        let value = self.store.get(&Key::new(T::KIND_OF, namespace, name))?;
        T::from_json(&value).ok()
    }

    /// Every object of the kind (in `namespace` if given). Objects that do
    /// not parse are skipped with a warning; the store only holds what its
    /// writers put there, so this means a bug, not bad input.
    pub fn list(&self, namespace: Option<&str>) -> Vec<T> {
        let (values, _) = self.store.list(T::KIND_OF, namespace);
        values.iter().filter_map(|value| parse(value)).collect()
    }

    /// The keys of every object of the kind (in `namespace` if given).
    pub fn keys(&self, namespace: Option<&str>) -> Vec<Key> {
        let (values, _) = self.store.list(T::KIND_OF, namespace);
        values.iter().filter_map(|value| Key::of(value)).collect()
    }

    /// The key of `namespace/name` of the kind.
    pub fn key(&self, namespace: &str, name: &str) -> Key {
        Key::new(T::KIND_OF, namespace, name)
    }
}

/// Typed copies of stored objects, each version parsed once.
///
/// For a caller that looks at every object of a kind again and again (the
/// scheduler at each pending pod): parsing 100 pods is tens of thousands of
/// small allocations, a fifth of the daemon's under pod churn before this
/// existed (heaptrack, docs/benchmarks.md, issue 21). Every write gives an object a new
/// `resourceVersion`, so an object seen with the same `uid` and version in
/// the previous call is the one parsed then. Only the previous call's
/// objects are remembered, by those two strings: not their JSON, which the
/// store frees once it replaces them.
pub struct Parsed<T> {
    last: Mutex<HashMap<String, (String, Arc<T>)>>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed { last: Mutex::default() }
    }
}

impl<T: KindOf> Parsed<T> {
    /// `values` typed, in their order; those that do not parse are left
    /// out (with a warning, as [`Api::list`] does).
    pub fn parse(&self, values: &[Arc<Value>]) -> Vec<Arc<T>> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::with_capacity(values.len());
        let mut typed = Vec::with_capacity(values.len());
        for value in values {
            let meta = value.get("metadata");
            let field = |name: &str| meta.and_then(|m| m.get(name)).and_then(Value::as_str);
            let (Some(uid), Some(version)) = (field("uid"), field("resourceVersion")) else {
                // Not written by a store: nothing says which version it is.
                typed.extend(parse::<T>(value).map(Arc::new));
                continue;
            };
            let object = match last.remove_entry(uid) {
                Some((uid, (seen, object))) if seen == version => Some((uid, seen, object)),
                _ => parse::<T>(value).map(|object| (uid.to_owned(), version.to_owned(), Arc::new(object))),
            };
            if let Some((uid, version, object)) = object {
                typed.push(object.clone());
                next.insert(uid, (version, object));
            }
        }
        *last = next;
        typed
    }
}

/// Typed reads and single writes over any [`Store`].
pub trait StoreExt: Store {
    /// The objects of type `T`.
    fn api<T: KindOf>(&self) -> Api<'_, Self, T> {
        Api { store: self, kind: PhantomData }
    }

    /// Writes one operation; returns the object as written, or `None` for
    /// a deletion of an absent object.
    fn write(&self, op: Op) -> Result<Option<Arc<Value>>, StoreError> {
        Ok(self.apply(Batch::one(op))?.pop())
    }

    /// Creates a typed object; returns it as stored.
    fn create_as<T: KindOf + Serialize>(&self, object: &T) -> Result<T, StoreError> {
        let written = self.write(Op::Create(to_value(object)))?;
        parse_written(written)
    }

    /// Updates a typed object (checking its `resourceVersion` if set);
    /// returns it as stored.
    fn update_as<T: KindOf + Serialize>(&self, object: &T) -> Result<T, StoreError> {
        let written = self.write(Op::Update(to_value(object)))?;
        parse_written(written)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// A typed object as JSON with `apiVersion` and `kind` set.
pub fn to_value<T: KindOf + Serialize>(object: &T) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(T::KIND_OF.api_version().into()));
        map.insert("kind".into(), Value::String(T::KIND_OF.name().into()));
    }
    value
}

fn parse<T: KindOf>(value: &Value) -> Option<T> {
    match T::from_json(value) {
        Ok(object) => Some(object),
        Err(error) => {
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(%error, kind, "stored object does not parse");
            None
        }
    }
}

fn parse_written<T: KindOf>(written: Option<Arc<Value>>) -> Result<T, StoreError> {
    let written = written.ok_or(StoreError::Unnamed)?;
    T::from_json(&written)
        .map_err(|source| StoreError::Corrupt { what: Key::of(&written).map_or_else(|| T::KIND_OF.name().to_owned(), |k| k.to_string()), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_model::k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(uid: &str, version: &str, image: &str) -> Arc<Value> {
        Arc::new(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": uid, "namespace": "default", "uid": uid, "resourceVersion": version},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
    }

    fn image(pod: &Pod) -> &str {
        pod.spec.as_ref().unwrap().containers[0].image.as_deref().unwrap()
    }

    #[test]
    fn a_version_seen_before_is_not_parsed_again() {
        let parsed = Parsed::<Pod>::default();
        let first = parsed.parse(&[pod("a", "1", "one"), pod("b", "1", "one")]);
        let second = parsed.parse(&[pod("a", "1", "one"), pod("b", "2", "two")]);
        assert!(Arc::ptr_eq(&first[0], &second[0]), "same uid and version: the same parse");
        assert!(!Arc::ptr_eq(&first[1], &second[1]), "a new version is parsed");
        assert_eq!((image(&second[0]), image(&second[1])), ("one", "two"));
    }

    #[test]
    fn only_the_last_call_is_remembered() {
        let parsed = Parsed::<Pod>::default();
        let first = parsed.parse(&[pod("a", "1", "one")]);
        parsed.parse(&[pod("b", "1", "one")]);
        let again = parsed.parse(&[pod("a", "1", "one")]);
        assert!(!Arc::ptr_eq(&first[0], &again[0]), "a was not in the call before: parsed again");
        assert_eq!(parsed.last.lock().unwrap().len(), 1);
    }

    #[test]
    fn what_does_not_parse_is_left_out_and_what_has_no_version_is_parsed_each_time() {
        let parsed = Parsed::<Pod>::default();
        let broken = Arc::new(json!({"kind": "Pod", "metadata": {"uid": "x", "resourceVersion": "1"}, "spec": {"containers": 3}}));
        let unversioned = Arc::new(json!({"kind": "Pod", "metadata": {"name": "n"}}));
        let typed = parsed.parse(&[broken.clone(), unversioned.clone(), pod("a", "1", "one")]);
        assert_eq!(typed.len(), 2);
        assert_eq!(typed[0].metadata.name.as_deref(), Some("n"));
        let again = parsed.parse(&[broken, unversioned]);
        assert_eq!(again.len(), 1);
        assert!(!Arc::ptr_eq(&typed[0], &again[0]));
    }
}
