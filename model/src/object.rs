//! Reading typed objects from manifests' JSON values.

use crate::{Kind, Object, ObjectRef, UnknownKind};

/// Why a JSON value is not a typed object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// `apiVersion` or `kind` is missing or not a string.
    #[error("missing {0}")]
    MissingTypeField(&'static str),
    /// The kind is not one Driftless runs.
    #[error(transparent)]
    UnknownKind(#[from] UnknownKind),
    /// An older served version's field cannot be converted.
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    /// The fields do not fit the kind's type.
    #[error("{0}")]
    Shape(#[source] serde_json::Error),
}

impl Object {
    /// Reads the `apiVersion`/`kind` of a manifest value and the typed object.
    pub fn parse(value: &serde_json::Value) -> Result<Object, ObjectError> {
        let kind = kind_of(value)?;
        if value.get("apiVersion").and_then(|v| v.as_str()) != Some(kind.api_version()) {
            let mut stored = value.clone();
            crate::convert::to_stored(kind, &mut stored)?;
            return Object::from_value(kind, &stored).map_err(ObjectError::Shape);
        }
        Object::from_value(kind, value).map_err(ObjectError::Shape)
    }

    /// The object's identity, with the namespace defaulted.
    pub fn object_ref(&self) -> ObjectRef {
        let meta = self.metadata();
        ObjectRef::new(self.kind(), meta.namespace.as_deref(), meta.name.clone().unwrap_or_default())
    }
}

/// The kind a manifest value declares.
pub fn kind_of(value: &serde_json::Value) -> Result<Kind, ObjectError> {
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).ok_or(ObjectError::MissingTypeField("apiVersion"))?;
    let kind = value.get("kind").and_then(|v| v.as_str()).ok_or(ObjectError::MissingTypeField("kind"))?;
    Ok(Kind::from_type(api_version, kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_round_trips() {
        let value = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}}}
        });
        let object = Object::parse(&value).unwrap();
        assert_eq!(object.kind(), Kind::Deployment);
        assert_eq!(object.object_ref().to_string(), "Deployment shop/web");
        assert_eq!(object.to_value(), value);
    }

    #[test]
    fn reports_missing_type_fields() {
        let err = Object::parse(&json!({"kind": "Pod"})).unwrap_err();
        assert_eq!(err.to_string(), "missing apiVersion");
    }
}
