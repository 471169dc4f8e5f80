//! Object identity: (group, kind, namespace, name).

use std::fmt;

use crate::Kind;

/// Identifies one object. The group is implied by the kind (each supported
/// kind lives in exactly one group). `namespace` is `None` exactly for
/// cluster-scoped kinds; a namespaced object that names none is in
/// [`crate::DEFAULT_NAMESPACE`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// The kind, which also fixes the group and version.
    pub kind: Kind,
    /// The namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference, placing a namespaced object in the default
    /// namespace when `namespace` is `None` and dropping the namespace of a
    /// cluster-scoped one.
    pub fn new(kind: Kind, namespace: Option<&str>, name: impl Into<String>) -> Self {
        let namespace = if kind.namespaced() { Some(namespace.filter(|ns| !ns.is_empty()).unwrap_or(crate::DEFAULT_NAMESPACE).to_owned()) } else { None };
        ObjectRef { kind, namespace, name: name.into() }
    }

    /// `Kind/name`, the form diagnostics use.
    pub fn kind_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_defaults_and_cluster_scope() {
        let r = ObjectRef::new(Kind::Service, None, "web");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.to_string(), "Service default/web");
        let r = ObjectRef::new(Kind::Namespace, Some("ignored"), "team-a");
        assert_eq!(r.namespace, None);
        assert_eq!(r.to_string(), "Namespace team-a");
        assert_eq!(r.kind_name(), "Namespace/team-a");
    }

    #[test]
    fn apply_order_puts_namespaces_first() {
        let mut refs = [ObjectRef::new(Kind::Deployment, None, "a"), ObjectRef::new(Kind::ConfigMap, None, "z"), ObjectRef::new(Kind::Namespace, None, "n")];
        refs.sort();
        let kinds: Vec<_> = refs.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Namespace, Kind::ConfigMap, Kind::Deployment]);
    }
}
