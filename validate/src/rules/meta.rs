//! Object metadata: names, namespaces, labels and annotations.

use driftless_model::{Kind, Object};

use crate::names;
use crate::{Issues, Ptr};

const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

pub(crate) fn object_meta(object: &Object, issues: &mut Issues) {
    let kind = object.kind();
    let meta = object.metadata();
    let at = Ptr::root().key("metadata");
    match meta.name.as_deref() {
        None | Some("") => {
            if meta.generate_name.is_some() {
                issues.error(
                    &at.key("generateName"),
                    "generateName is not supported: an object in git needs a fixed name so each revision updates the same object",
                );
            } else {
                issues.error(&at, "missing required field \"name\"");
            }
        }
        Some(name) => issues.check(&at.key("name"), name_rule(kind)(name)),
    }
    match (&meta.namespace, kind.namespaced()) {
        (Some(ns), true) => issues.check(&at.key("namespace"), names::dns1123_label(ns)),
        (Some(ns), false) if !ns.is_empty() => {
            issues.warn(&at.key("namespace"), format!("ignored: {kind} is cluster-scoped, so the API server clears metadata.namespace"))
        }
        _ => {}
    }
    labels(meta.labels.as_ref(), &at.key("labels"), issues);
    if let Some(annotations) = &meta.annotations {
        let mut size = 0;
        for (key, value) in annotations {
            // The API server checks annotation keys lower-cased.
            issues.check(&at.key("annotations").key(key), names::qualified_name(&key.to_ascii_lowercase()));
            size += key.len() + value.len();
        }
        if size > ANNOTATIONS_MAX_BYTES {
            issues.error(&at.key("annotations"), format!("too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes"));
        }
    }
}

/// The name format the API server requires of each kind.
fn name_rule(kind: Kind) -> fn(&str) -> Result<(), String> {
    match kind {
        Kind::Namespace | Kind::StatefulSet => names::dns1123_label,
        Kind::Service => names::dns1035_label,
        _ => names::dns1123_subdomain,
    }
}

/// Label keys and values, wherever a label map appears (metadata, selectors,
/// node selectors).
pub(crate) fn labels(labels: Option<&std::collections::BTreeMap<String, String>>, at: &Ptr, issues: &mut Issues) {
    for (key, value) in labels.into_iter().flatten() {
        let field = at.key(key);
        issues.check(&field, names::qualified_name(key));
        issues.check(&field, names::label_value(value));
    }
}
