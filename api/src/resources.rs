//! The resources the API serves: URL plural, kind, group, version, scope.

/// One resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The URL segment (`deployments`).
    pub plural: &'static str,
    /// The kind (`Deployment`).
    pub kind: &'static str,
    /// The group (`apps`, empty for core).
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short: &'static [&'static str],
}

impl Resource {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The URL prefix of the group and version (`/apis/apps/v1`, `/api/v1`).
    pub fn prefix(&self) -> String {
        if self.group.is_empty() { format!("/api/{}", self.version) } else { format!("/apis/{}/{}", self.group, self.version) }
    }

    /// The URL of a list (in `namespace`, or across all).
    pub fn list_path(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}/namespaces/{ns}/{}", self.prefix(), self.plural),
            _ => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    /// The URL of one object.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.list_path(Some(namespace)))
    }
}

macro_rules! resource {
    ($plural:literal, $kind:literal, $group:literal, $version:literal, $namespaced:literal, [$($short:literal),*]) => {
        Resource { plural: $plural, kind: $kind, group: $group, version: $version, namespaced: $namespaced, short: &[$($short),*] }
    };
}

/// Everything served.
pub const ALL: &[Resource] = &[
    resource!("pods", "Pod", "", "v1", true, ["po"]),
    resource!("services", "Service", "", "v1", true, ["svc"]),
    resource!("endpoints", "Endpoints", "", "v1", true, ["ep"]),
    resource!("configmaps", "ConfigMap", "", "v1", true, ["cm"]),
    resource!("secrets", "Secret", "", "v1", true, []),
    resource!("namespaces", "Namespace", "", "v1", false, ["ns"]),
    resource!("nodes", "Node", "", "v1", false, ["no"]),
    resource!("events", "Event", "", "v1", true, ["ev"]),
    resource!("persistentvolumes", "PersistentVolume", "", "v1", false, ["pv"]),
    resource!("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", true, ["pvc"]),
    resource!("replicationcontrollers", "ReplicationController", "", "v1", true, ["rc"]),
    resource!("deployments", "Deployment", "apps", "v1", true, ["deploy"]),
    resource!("replicasets", "ReplicaSet", "apps", "v1", true, ["rs"]),
    resource!("statefulsets", "StatefulSet", "apps", "v1", true, ["sts"]),
    resource!("controllerrevisions", "ControllerRevision", "apps", "v1", true, []),
    resource!("storageclasses", "StorageClass", "storage.k8s.io", "v1", false, ["sc"]),
    resource!("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2", true, ["hpa"]),
    resource!("ingresses", "Ingress", "networking.k8s.io", "v1", true, ["ing"]),
];

/// The resource at a group, version and plural.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    ALL.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource a command line names: plural, singular, kind or short
/// name, in any case.
pub fn by_name(name: &str) -> Option<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let lower = lower.split('.').next().unwrap_or(&lower).to_owned();
    ALL.iter().find(|r| {
        r.plural == lower
            || r.kind.eq_ignore_ascii_case(&lower)
            || r.short.contains(&lower.as_str())
            || r.plural.strip_suffix('s') == Some(lower.as_str())
            || (r.plural.ends_with("es") && r.plural.strip_suffix("es") == Some(lower.as_str()))
    })
}

/// The resource of a kind.
pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    ALL.iter().find(|r| r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_kubectl_resolves_them() {
        for (name, kind) in [
            ("po", "Pod"),
            ("pods", "Pod"),
            ("pod", "Pod"),
            ("deploy", "Deployment"),
            ("deployment", "Deployment"),
            ("svc", "Service"),
            ("ingress", "Ingress"),
            ("ingresses", "Ingress"),
            ("ep", "Endpoints"),
            ("endpoints", "Endpoints"),
            ("sts", "StatefulSet"),
            ("pvc", "PersistentVolumeClaim"),
            ("StorageClass", "StorageClass"),
            ("deployments.apps", "Deployment"),
        ] {
            assert_eq!(by_name(name).map(|r| r.kind), Some(kind), "{name}");
        }
        assert_eq!(by_kind("Deployment").unwrap().list_path(Some("web")), "/apis/apps/v1/namespaces/web/deployments");
        assert_eq!(by_kind("Node").unwrap().object_path("", "n1"), "/api/v1/nodes/n1");
    }
}
