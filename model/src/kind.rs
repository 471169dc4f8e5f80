//! The one kind table: every kind Driftless stores, serves or runs, and the
//! facts about each that the rest of the system needs (group, version,
//! plural, short names, scope, apply order, and whether git may declare
//! it). The API's resource table, the sync's namespaced kinds and the
//! validator's kind check all derive from here; nothing else lists kinds.

use std::fmt;

/// `KindOf` for one type of the table below.
macro_rules! kind_of {
    ($ty:ty, $kind:ident) => {
        impl KindOf for $ty {
            const KIND_OF: Kind = Kind::$kind;
            // Never inlined: one copy of a kind's decoding in the binary.
            #[inline(never)]
            fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
                serde::Deserialize::deserialize(value)
            }
        }
    };
}

/// Declares the [`Kind`] enum and, for each kind, the `k8s-openapi` type that
/// carries its fields. Declared kinds come first, in apply order: things
/// other objects refer to (namespaces, storage, configuration) first. Then
/// the kinds only the daemon writes (the node registers itself; controllers
/// write revisions; everything records events).
macro_rules! kinds {
    (
        declared { $($kind:ident => $ty:ty, [$($short:literal),*];)* }
        observed { $($okind:ident => $oty:ty, [$($oshort:literal),*];)* }
    ) => {
        /// A kind Driftless knows. Ordered for applying: dependencies first.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $(
                #[doc = concat!("`", stringify!($kind), "`")]
                $kind,
            )*
            $(
                #[doc = concat!("`", stringify!($okind), "` (written by the daemon, never declared)")]
                $okind,
            )*
        }

        impl Kind {
            /// Every kind, declared ones first in apply order: what the
            /// store holds and the API serves.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind,)* $(Kind::$okind,)*];

            /// The kinds git may declare, in apply order.
            pub const DECLARABLE: &'static [Kind] = &[$(Kind::$kind),*];

            /// The API group (`""` for the core group).
            pub fn group(self) -> &'static str {
                match self {
                    $(Kind::$kind => <$ty as k8s_openapi::Resource>::GROUP,)*
                    $(Kind::$okind => <$oty as k8s_openapi::Resource>::GROUP,)*
                }
            }

            /// The API version within the group (`v1`, `v2`).
            pub fn version(self) -> &'static str {
                match self {
                    $(Kind::$kind => <$ty as k8s_openapi::Resource>::VERSION,)*
                    $(Kind::$okind => <$oty as k8s_openapi::Resource>::VERSION,)*
                }
            }

            /// The `apiVersion` a manifest carries (`v1`, `apps/v1`).
            pub fn api_version(self) -> &'static str {
                match self {
                    $(Kind::$kind => <$ty as k8s_openapi::Resource>::API_VERSION,)*
                    $(Kind::$okind => <$oty as k8s_openapi::Resource>::API_VERSION,)*
                }
            }

            /// The `kind` a manifest carries.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$kind => <$ty as k8s_openapi::Resource>::KIND,)*
                    $(Kind::$okind => <$oty as k8s_openapi::Resource>::KIND,)*
                }
            }

            /// The lower-case plural used in API paths (`deployments`).
            pub fn plural(self) -> &'static str {
                match self {
                    $(Kind::$kind => <$ty as k8s_openapi::Resource>::URL_PATH_SEGMENT,)*
                    $(Kind::$okind => <$oty as k8s_openapi::Resource>::URL_PATH_SEGMENT,)*
                }
            }

            /// The short names kubectl accepts for the kind (`deploy`, `svc`).
            pub fn short_names(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$kind => &[$($short),*],)*
                    $(Kind::$okind => &[$($oshort),*],)*
                }
            }

            /// Whether git may declare objects of this kind.
            pub fn declarable(self) -> bool {
                match self {
                    $(Kind::$kind => true,)*
                    $(Kind::$okind => false,)*
                }
            }

            /// The draft-07 JSON Schema of the kind's type, as `schemars`
            /// derives it from the `k8s-openapi` type: the raw material of
            /// the committed schemas.
            #[cfg(feature = "schema-gen")]
            pub fn raw_json_schema(self) -> serde_json::Value {
                let generator = schemars::generate::SchemaSettings::draft07().into_generator();
                match self {
                    $(Kind::$kind => generator.into_root_schema_for::<$ty>().to_value(),)*
                    $(Kind::$okind => generator.into_root_schema_for::<$oty>().to_value(),)*
                }
            }

            /// Whether objects of this kind live in a namespace.
            pub fn namespaced(self) -> bool {
                match self {
                    $(Kind::$kind => is_namespaced::<<$ty as k8s_openapi::Resource>::Scope>(),)*
                    $(Kind::$okind => is_namespaced::<<$oty as k8s_openapi::Resource>::Scope>(),)*
                }
            }
        }

        /// One typed object of a known kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Object {
            $(
                #[doc = concat!("A `", stringify!($kind), "`.")]
                $kind(Box<$ty>),
            )*
            $(
                #[doc = concat!("A `", stringify!($okind), "`.")]
                $okind(Box<$oty>),
            )*
        }

        impl Object {
            /// The object's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Object::$kind(_) => Kind::$kind,)*
                    $(Object::$okind(_) => Kind::$okind,)*
                }
            }

            /// The object's metadata.
            pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self {
                    $(Object::$kind(o) => &o.metadata,)*
                    $(Object::$okind(o) => &o.metadata,)*
                }
            }

            /// The object's metadata, for changing it.
            pub fn metadata_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self {
                    $(Object::$kind(o) => &mut o.metadata,)*
                    $(Object::$okind(o) => &mut o.metadata,)*
                }
            }

            /// Reads an object of `kind` from its JSON form, without copying
            /// the value first.
            pub fn from_value(kind: Kind, value: &serde_json::Value) -> Result<Object, serde_json::Error> {
                Ok(match kind {
                    $(Kind::$kind => Object::$kind(Box::new(<$ty as KindOf>::from_json(value)?)),)*
                    $(Kind::$okind => Object::$okind(Box::new(<$oty as KindOf>::from_json(value)?)),)*
                })
            }

            /// The object's JSON form, with `apiVersion` and `kind` set and
            /// unset optional fields left out.
            pub fn to_value(&self) -> serde_json::Value {
                let value = match self {
                    $(Object::$kind(o) => serde_json::to_value(o),)*
                    $(Object::$okind(o) => serde_json::to_value(o),)*
                };
                // k8s-openapi types are plain data with string keys: they
                // always serialize.
                value.unwrap_or(serde_json::Value::Null)
            }
        }

        /// The kind of a `k8s-openapi` type, for typed access to the store,
        /// and the one way the binary reads such an object from JSON.
        pub trait KindOf: k8s_openapi::Resource + Sized {
            /// The kind.
            const KIND_OF: Kind;

            /// Reads the object from its JSON form, without copying the
            /// value first. Use this, not `serde_json::from_value` or
            /// `Deserialize::deserialize`: serde's code for a kind is
            /// generic, so every crate that calls it for itself gets its own
            /// copy (a `PodSpec` is 100 KB of code, a `Volume` 150 KB), and
            /// the daemon kept six copies of each resident
            /// (docs/benchmarks.md, issue 21). Defined here, it is compiled
            /// once.
            fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error>;
        }

        $(kind_of!($ty, $kind);)*
        $(kind_of!($oty, $okind);)*
    };
}

kinds! {
    declared {
        Namespace => k8s_openapi::api::core::v1::Namespace, ["ns"];
        StorageClass => k8s_openapi::api::storage::v1::StorageClass, ["sc"];
        PersistentVolume => k8s_openapi::api::core::v1::PersistentVolume, ["pv"];
        PersistentVolumeClaim => k8s_openapi::api::core::v1::PersistentVolumeClaim, ["pvc"];
        ConfigMap => k8s_openapi::api::core::v1::ConfigMap, ["cm"];
        Secret => k8s_openapi::api::core::v1::Secret, [];
        Service => k8s_openapi::api::core::v1::Service, ["svc"];
        Endpoints => k8s_openapi::api::core::v1::Endpoints, ["ep"];
        Pod => k8s_openapi::api::core::v1::Pod, ["po"];
        ReplicationController => k8s_openapi::api::core::v1::ReplicationController, ["rc"];
        ReplicaSet => k8s_openapi::api::apps::v1::ReplicaSet, ["rs"];
        Deployment => k8s_openapi::api::apps::v1::Deployment, ["deploy"];
        StatefulSet => k8s_openapi::api::apps::v1::StatefulSet, ["sts"];
        DaemonSet => k8s_openapi::api::apps::v1::DaemonSet, ["ds"];
        Job => k8s_openapi::api::batch::v1::Job, [];
        CronJob => k8s_openapi::api::batch::v1::CronJob, ["cj"];
        HorizontalPodAutoscaler => k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler, ["hpa"];
        Ingress => k8s_openapi::api::networking::v1::Ingress, ["ing"];
    }
    observed {
        Node => k8s_openapi::api::core::v1::Node, ["no"];
        ControllerRevision => k8s_openapi::api::apps::v1::ControllerRevision, [];
        Event => k8s_openapi::api::core::v1::Event, ["ev"];
        Lease => k8s_openapi::api::coordination::v1::Lease, [];
    }
}

fn is_namespaced<S: k8s_openapi::ResourceScope + 'static>() -> bool {
    std::any::TypeId::of::<S>() == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>()
}

/// An `apiVersion`/`kind` pair that Driftless does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownKind {
    /// The kind exists for Driftless, under another `apiVersion`.
    #[error("{kind} is served as apiVersion {expected}, not {found}")]
    WrongVersion {
        /// The kind as written.
        kind: String,
        /// The apiVersion as written.
        found: String,
        /// The apiVersion Driftless serves the kind under.
        expected: &'static str,
    },
    /// The kind exists, but only the daemon writes it.
    #[error("{kind} objects are written by Driftless itself and cannot be declared in git")]
    NotDeclarable {
        /// The kind as written.
        kind: String,
    },
    /// No supported kind has this name.
    #[error("unknown kind {kind} (apiVersion {api_version}); supported kinds: {}", supported())]
    Unsupported {
        /// The kind as written.
        kind: String,
        /// The apiVersion as written.
        api_version: String,
    },
}

/// Older versions the API server still serves beside a kind's stored one;
/// manifests written in them are converted on reading (`convert.rs`).
const ALSO_SERVED: &[(Kind, &str)] = &[(Kind::HorizontalPodAutoscaler, "autoscaling/v1")];

fn supported() -> String {
    let mut names: Vec<_> = Kind::DECLARABLE.iter().map(|k| k.name()).collect();
    names.sort_unstable();
    names.join(", ")
}

impl Kind {
    /// Whether the kind's objects carry a `status` the server writes (a
    /// `status` subresource in Kubernetes' API).
    pub fn has_status(self) -> bool {
        const WITH_STATUS: &[&str] = &[
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "Service",
            "Node",
            "Namespace",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "HorizontalPodAutoscaler",
            "Ingress",
            "ReplicationController",
            "PodDisruptionBudget",
        ];
        WITH_STATUS.contains(&self.name())
    }

    /// Finds the kind a manifest's `apiVersion` and `kind` name, among the
    /// kinds git may declare.
    pub fn from_type(api_version: &str, kind: &str) -> Result<Kind, UnknownKind> {
        match Kind::from_name(kind) {
            Some(k) if !k.declarable() => Err(UnknownKind::NotDeclarable { kind: kind.to_owned() }),
            Some(k) if k.api_version() == api_version || ALSO_SERVED.contains(&(k, api_version)) => Ok(k),
            Some(k) => Err(UnknownKind::WrongVersion { kind: kind.to_owned(), found: api_version.to_owned(), expected: k.api_version() }),
            None => Err(UnknownKind::Unsupported { kind: kind.to_owned(), api_version: api_version.to_owned() }),
        }
    }

    /// The kind named exactly so (`Deployment`), declared or not: how the
    /// store's keys name kinds.
    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == kind)
    }

    /// The kind served at a group, version and plural (`apps`, `v1`,
    /// `deployments`).
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.group() == group && k.version() == version && k.plural() == plural)
    }

    /// Finds a kind by the names a command line accepts, as kubectl
    /// resolves them: the kind in any case, its plural, its singular or a
    /// short name (`deploy`, `svc`), optionally qualified by its group
    /// (`deployments.apps`).
    pub fn from_cli_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let (name, group) = match lower.split_once('.') {
            Some((name, group)) => (name, Some(group)),
            None => (lower.as_str(), None),
        };
        Kind::ALL.iter().copied().find(|k| {
            let named = k.name().eq_ignore_ascii_case(name) || k.plural() == name || k.short_names().contains(&name);
            let grouped = group.is_none_or(|g| g == k.group() || (k.group().is_empty() && g == "core"));
            named && grouped
        })
    }

    /// The URL prefix of the kind's group and version (`/apis/apps/v1`,
    /// `/api/v1`).
    pub fn api_prefix(self) -> String {
        if self.group().is_empty() { format!("/api/{}", self.version()) } else { format!("/apis/{}/{}", self.group(), self.version()) }
    }

    /// The URL of a list of the kind (in `namespace`, or across all).
    pub fn list_path(self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("{}/namespaces/{ns}/{}", self.api_prefix(), self.plural()),
            _ => format!("{}/{}", self.api_prefix(), self.plural()),
        }
    }

    /// The URL of one object of the kind.
    pub fn object_path(self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.list_path(Some(namespace)))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_reads_from_json_as_serde_does_and_names_a_bad_field() {
        use k8s_openapi::api::apps::v1::Deployment;
        let value = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}});
        let read = Deployment::from_json(&value).unwrap();
        assert_eq!(read, serde_json::from_value::<Deployment>(value.clone()).unwrap());
        assert_eq!(read.spec.as_ref().and_then(|s| s.replicas), Some(3));
        let mut bad = value;
        bad["spec"]["replicas"] = serde_json::json!("three");
        let error = Deployment::from_json(&bad).unwrap_err().to_string();
        assert!(error.contains("invalid type: string \"three\""), "{error}");
    }

    #[test]
    fn kinds_know_their_group_and_scope() {
        assert_eq!(Kind::Deployment.api_version(), "apps/v1");
        assert_eq!(Kind::Deployment.group(), "apps");
        assert_eq!(Kind::Pod.api_version(), "v1");
        assert_eq!(Kind::HorizontalPodAutoscaler.api_version(), "autoscaling/v2");
        assert_eq!(Kind::Ingress.api_version(), "networking.k8s.io/v1");
        assert!(Kind::Pod.namespaced());
        assert!(!Kind::Namespace.namespaced());
        assert!(!Kind::PersistentVolume.namespaced());
        assert!(!Kind::StorageClass.namespaced());
        assert_eq!(Kind::DECLARABLE.len(), 18);
        assert_eq!(Kind::ALL.len(), 22);
        assert_eq!(Kind::Lease.api_version(), "coordination.k8s.io/v1");
        assert!(Kind::Lease.namespaced() && !Kind::Lease.declarable());
        assert_eq!(Kind::Job.api_version(), "batch/v1");
        assert!(Kind::DECLARABLE.iter().all(|k| k.declarable()));
        assert!(!Kind::Node.namespaced() && Kind::Event.namespaced() && !Kind::Event.declarable());
    }

    #[test]
    fn from_type_explains_wrong_versions() {
        assert_eq!(Kind::from_type("apps/v1", "StatefulSet"), Ok(Kind::StatefulSet));
        let err = Kind::from_type("extensions/v1beta1", "Deployment").unwrap_err();
        assert_eq!(err.to_string(), "Deployment is served as apiVersion apps/v1, not extensions/v1beta1");
        let err = Kind::from_type("v1", "Node").unwrap_err();
        assert_eq!(err.to_string(), "Node objects are written by Driftless itself and cannot be declared in git");
        let err = Kind::from_type("batch/v1beta1", "CronJob").unwrap_err();
        assert_eq!(err.to_string(), "CronJob is served as apiVersion batch/v1, not batch/v1beta1");
    }

    #[test]
    fn cli_names() {
        assert_eq!(Kind::from_cli_name("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::from_cli_name("Deployments"), Some(Kind::Deployment));
        assert_eq!(Kind::from_cli_name("svc"), Some(Kind::Service));
        assert_eq!(Kind::from_cli_name("nope"), None);
        for (name, kind) in [
            ("po", Kind::Pod),
            ("pod", Kind::Pod),
            ("ingress", Kind::Ingress),
            ("ingresses", Kind::Ingress),
            ("ep", Kind::Endpoints),
            ("endpoints", Kind::Endpoints),
            ("StorageClass", Kind::StorageClass),
            ("deployments.apps", Kind::Deployment),
            ("nodes", Kind::Node),
            ("ev", Kind::Event),
            ("controllerrevisions", Kind::ControllerRevision),
            ("pvc", Kind::PersistentVolumeClaim),
        ] {
            assert_eq!(Kind::from_cli_name(name), Some(kind), "{name}");
        }
        assert_eq!(Kind::from_cli_name("deployments.batch"), None);
        assert_eq!(Kind::Deployment.list_path(Some("web")), "/apis/apps/v1/namespaces/web/deployments");
        assert_eq!(Kind::Node.object_path("", "n1"), "/api/v1/nodes/n1");
        assert_eq!(Kind::from_path("apps", "v1", "deployments"), Some(Kind::Deployment));
    }
}
