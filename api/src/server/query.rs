//! Query parameters: `watch`, `labelSelector`, `fieldSelector` and the
//! rest, read as Kubernetes reads them (repeated keys kept in order).

use driftless_model::selector::Selector;
use serde_json::Value;

use crate::ApiError;

/// A request's query.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "1" || v == "true" || v.is_empty())
    }

    pub(crate) fn watch(&self) -> bool {
        self.flag("watch")
    }

    pub(crate) fn label_selector(&self) -> Result<Selector, ApiError> {
        Selector::parse(self.get("labelSelector").unwrap_or("")).map_err(|e| ApiError::BadRequest(e.to_string()))
    }

    pub(crate) fn field_selector(&self) -> Result<Fields, ApiError> {
        Fields::parse(self.get("fieldSelector").unwrap_or(""))
    }
}

/// A field selector: `metadata.name=web,spec.nodeName!=n1`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields(Vec<(String, bool, String)>);

impl Fields {
    fn parse(text: &str) -> Result<Fields, ApiError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::BadRequest(format!("invalid field selector {text:?}")));
            };
            out.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Fields(out))
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object.pointer(&pointer).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).unwrap_or_default();
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn repeated_keys_and_selectors() {
        let q = Query::parse(Some("command=ls&command=-l&watch=1&labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1"));
        assert_eq!(q.all("command"), ["ls", "-l"]);
        assert!(q.watch());
        let pod = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "n1"}});
        assert!(q.label_selector().unwrap().matches(&crate::server::labels(&pod)));
        assert!(q.field_selector().unwrap().matches(&pod));
        assert!(!Fields::parse("spec.nodeName!=n1").unwrap().matches(&pod));
        assert!(Fields::parse("nonsense").is_err());
    }
}
