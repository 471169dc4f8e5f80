//! The kinds Driftless runs, and the facts about each that the rest of the
//! system needs: group, version, plural, scope and apply order.

use std::fmt;

/// Declares the [`Kind`] enum and, for each kind, the `k8s-openapi` type that
/// carries its fields. The declaration order is the apply order: things other
/// objects refer to (namespaces, storage, configuration) come first.
macro_rules! kinds {
    ($($kind:ident => $ty:ty, [$($short:literal),*];)*) => {
        /// A supported kind. Ordered for applying: dependencies first.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $(
                #[doc = concat!("`", stringify!($kind), "`")]
                $kind,
            )*
        }

        impl Kind {
            /// Every supported kind, in apply order.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// The API group (`""` for the core group).
            pub fn group(self) -> &'static str {
                match self { $(Kind::$kind => <$ty as k8s_openapi::Resource>::GROUP,)* }
            }

            /// The API version within the group (`v1`, `v2`).
            pub fn version(self) -> &'static str {
                match self { $(Kind::$kind => <$ty as k8s_openapi::Resource>::VERSION,)* }
            }

            /// The `apiVersion` a manifest carries (`v1`, `apps/v1`).
            pub fn api_version(self) -> &'static str {
                match self { $(Kind::$kind => <$ty as k8s_openapi::Resource>::API_VERSION,)* }
            }

            /// The `kind` a manifest carries.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$kind => <$ty as k8s_openapi::Resource>::KIND,)* }
            }

            /// The lower-case plural used in API paths (`deployments`).
            pub fn plural(self) -> &'static str {
                match self { $(Kind::$kind => <$ty as k8s_openapi::Resource>::URL_PATH_SEGMENT,)* }
            }

            /// The short names kubectl accepts for the kind (`deploy`, `svc`).
            pub fn short_names(self) -> &'static [&'static str] {
                match self { $(Kind::$kind => &[$($short),*],)* }
            }

            /// The draft-07 JSON Schema of the kind's type, as `schemars`
            /// derives it from the `k8s-openapi` type: the raw material of
            /// the committed schemas.
            pub fn raw_json_schema(self) -> serde_json::Value {
                let generator = schemars::generate::SchemaSettings::draft07().into_generator();
                match self { $(Kind::$kind => generator.into_root_schema_for::<$ty>().to_value(),)* }
            }

            /// Whether objects of this kind live in a namespace.
            pub fn namespaced(self) -> bool {
                match self {
                    $(Kind::$kind => is_namespaced::<<$ty as k8s_openapi::Resource>::Scope>(),)*
                }
            }
        }

        /// One typed object of a supported kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Object {
            $(
                #[doc = concat!("A `", stringify!($kind), "`.")]
                $kind(Box<$ty>),
            )*
        }

        impl Object {
            /// The object's kind.
            pub fn kind(&self) -> Kind {
                match self { $(Object::$kind(_) => Kind::$kind,)* }
            }

            /// The object's metadata.
            pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self { $(Object::$kind(o) => &o.metadata,)* }
            }

            /// The object's metadata, for changing it.
            pub fn metadata_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self { $(Object::$kind(o) => &mut o.metadata,)* }
            }

            /// Reads an object of `kind` from its JSON form, without copying
            /// the value first.
            pub fn from_value(kind: Kind, value: &serde_json::Value) -> Result<Object, serde_json::Error> {
                use serde::Deserialize;
                Ok(match kind { $(Kind::$kind => Object::$kind(Box::new(<$ty>::deserialize(value)?)),)* })
            }

            /// The object's JSON form, with `apiVersion` and `kind` set and
            /// unset optional fields left out.
            pub fn to_value(&self) -> serde_json::Value {
                let value = match self { $(Object::$kind(o) => serde_json::to_value(o),)* };
                // k8s-openapi types are plain data with string keys: they
                // always serialize.
                value.unwrap_or(serde_json::Value::Null)
            }
        }
    };
}

kinds! {
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
    HorizontalPodAutoscaler => k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler, ["hpa"];
    Ingress => k8s_openapi::api::networking::v1::Ingress, ["ing"];
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
    /// No supported kind has this name.
    #[error("unknown kind {kind} (apiVersion {api_version}); supported kinds: {}", supported())]
    Unsupported {
        /// The kind as written.
        kind: String,
        /// The apiVersion as written.
        api_version: String,
    },
}

fn supported() -> String {
    let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
    names.sort_unstable();
    names.join(", ")
}

impl Kind {
    /// Finds the kind a manifest's `apiVersion` and `kind` name.
    pub fn from_type(api_version: &str, kind: &str) -> Result<Kind, UnknownKind> {
        match Kind::ALL.iter().find(|k| k.name() == kind) {
            Some(k) if k.api_version() == api_version => Ok(*k),
            Some(k) => Err(UnknownKind::WrongVersion { kind: kind.to_owned(), found: api_version.to_owned(), expected: k.api_version() }),
            None => Err(UnknownKind::Unsupported { kind: kind.to_owned(), api_version: api_version.to_owned() }),
        }
    }

    /// Finds a kind by the names a command line accepts: the kind itself in
    /// any case, its plural, singular or a short name (`deploy`, `svc`).
    pub fn from_cli_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        Kind::ALL.iter().copied().find(|k| k.name().eq_ignore_ascii_case(&lower) || k.plural() == lower || k.short_names().contains(&lower.as_str()))
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
        assert_eq!(Kind::ALL.len(), 15);
    }

    #[test]
    fn from_type_explains_wrong_versions() {
        assert_eq!(Kind::from_type("apps/v1", "StatefulSet"), Ok(Kind::StatefulSet));
        let err = Kind::from_type("extensions/v1beta1", "Deployment").unwrap_err();
        assert_eq!(err.to_string(), "Deployment is served as apiVersion apps/v1, not extensions/v1beta1");
        let err = Kind::from_type("batch/v1", "Job").unwrap_err();
        assert!(err.to_string().starts_with("unknown kind Job (apiVersion batch/v1)"));
    }

    #[test]
    fn cli_names() {
        assert_eq!(Kind::from_cli_name("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::from_cli_name("Deployments"), Some(Kind::Deployment));
        assert_eq!(Kind::from_cli_name("svc"), Some(Kind::Service));
        assert_eq!(Kind::from_cli_name("nope"), None);
    }
}
