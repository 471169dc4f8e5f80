//! Typed access for callers that work with `k8s-openapi` objects: the kind
//! comes from the type ([`KindOf`]), never from a string.

use std::marker::PhantomData;
use std::sync::Arc;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::Metadata;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
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

impl<S: Store + ?Sized, T: KindOf + DeserializeOwned> Api<'_, S, T> {
    /// The object `namespace/name` (`""` for cluster-scoped kinds), if it
    /// exists and parses.
    pub fn get(&self, namespace: &str, name: &str) -> Option<T> {
        let value = self.store.get(&Key::new(T::KIND_OF, namespace, name))?;
        T::deserialize(&*value).ok()
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

/// Typed reads and single writes over any [`Store`].
pub trait StoreExt: Store {
    /// The objects of type `T`.
    fn api<T: KindOf + DeserializeOwned>(&self) -> Api<'_, Self, T> {
        Api { store: self, kind: PhantomData }
    }

    /// Writes one operation; returns the object as written, or `None` for
    /// a deletion of an absent object.
    fn write(&self, op: Op) -> Result<Option<Arc<Value>>, StoreError> {
        Ok(self.apply(Batch::one(op))?.pop())
    }

    /// Creates a typed object; returns it as stored.
    fn create_as<T: KindOf + Serialize + DeserializeOwned>(&self, object: &T) -> Result<T, StoreError> {
        let written = self.write(Op::Create(to_value(object)))?;
        parse_written(written)
    }

    /// Updates a typed object (checking its `resourceVersion` if set);
    /// returns it as stored.
    fn update_as<T: KindOf + Serialize + DeserializeOwned>(&self, object: &T) -> Result<T, StoreError> {
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

fn parse<T: DeserializeOwned>(value: &Value) -> Option<T> {
    match T::deserialize(value) {
        Ok(object) => Some(object),
        Err(error) => {
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(%error, kind, "stored object does not parse");
            None
        }
    }
}

fn parse_written<T: KindOf + DeserializeOwned>(written: Option<Arc<Value>>) -> Result<T, StoreError> {
    let written = written.ok_or(StoreError::Unnamed)?;
    T::deserialize(&*written)
        .map_err(|source| StoreError::Corrupt { what: Key::of(&written).map_or_else(|| T::KIND_OF.name().to_owned(), |k| k.to_string()), source })
}
