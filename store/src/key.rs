//! Object identity in the store: kind, namespace and name.

use std::fmt;

use driftless_model::Kind;
use serde_json::Value;

/// Identifies one stored object. `namespace` is empty for cluster-scoped
/// kinds. Ordered by kind (the kind table's order), namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The kind.
    pub kind: Kind,
    /// The namespace, or empty.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl Key {
    /// A key from its parts.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Key {
        Key { kind, namespace: namespace.into(), name: name.into() }
    }

    /// The key of an object's JSON, from `kind` and `metadata`; `None` for
    /// a kind the store does not hold or an object without a name.
    pub fn of(value: &Value) -> Option<Key> {
        let kind = Kind::from_name(value.get("kind")?.as_str()?)?;
        let meta = value.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        (!name.is_empty()).then(|| Key::new(kind, namespace, name))
    }
}

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() { write!(f, "{}/{}", self.kind, self.name) } else { write!(f, "{}/{}/{}", self.kind, self.namespace, self.name) }
    }
}
