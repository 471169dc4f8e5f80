//! Typed access for callers that work with `k8s-openapi` objects.

use std::sync::Arc;

use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use driftless_model::k8s_openapi::{Metadata, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Batch, Key, Op, Store, StoreError};

/// The key of a typed object.
pub fn key_of<T: Resource + Metadata<Ty = ObjectMeta>>(object: &T) -> Key {
    let meta = object.metadata();
    Key::new(T::KIND, meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// Typed reads and single writes over any [`Store`].
pub trait StoreExt: Store {
    /// The object `namespace/name` of type `T`, if it exists and parses.
    fn get_as<T: Resource + DeserializeOwned>(&self, namespace: &str, name: &str) -> Option<T> {
        let value = self.get(&Key::new(T::KIND, namespace, name))?;
        T::deserialize(&*value).ok()
    }

    /// Every object of type `T` (in `namespace` if given). Objects that do
    /// not parse as `T` are skipped with a warning; the store only holds
    /// what its writers put there, so this means a bug, not bad input.
    fn list_as<T: Resource + DeserializeOwned>(&self, namespace: Option<&str>) -> Vec<T> {
        let (values, _) = self.list(T::KIND, namespace);
        values.iter().filter_map(|value| parse(value)).collect()
    }

    /// Writes one operation; returns the object as written, or `None` for
    /// a deletion of an absent object.
    fn write(&self, op: Op) -> Result<Option<Arc<Value>>, StoreError> {
        Ok(self.apply(Batch::one(op))?.pop())
    }

    /// Creates a typed object; returns it as stored.
    fn create_as<T: Resource + Serialize + DeserializeOwned>(&self, object: &T) -> Result<T, StoreError> {
        let written = self.write(Op::Create(to_value(object)))?;
        parse_written(written)
    }

    /// Updates a typed object (checking its `resourceVersion` if set);
    /// returns it as stored.
    fn update_as<T: Resource + Serialize + DeserializeOwned>(&self, object: &T) -> Result<T, StoreError> {
        let written = self.write(Op::Update(to_value(object)))?;
        parse_written(written)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// A typed object as JSON with `apiVersion` and `kind` set.
pub fn to_value<T: Resource + Serialize>(object: &T) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(T::API_VERSION.into()));
        map.insert("kind".into(), Value::String(T::KIND.into()));
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

fn parse_written<T: Resource + DeserializeOwned>(written: Option<Arc<Value>>) -> Result<T, StoreError> {
    let written = written.ok_or(StoreError::Unnamed)?;
    T::deserialize(&*written).map_err(|source| StoreError::Corrupt { key: Key::of(&written).unwrap_or_else(|| Key::new(T::KIND, "", "")), source })
}
