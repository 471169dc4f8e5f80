//! Label selectors, and whether they select a template's labels.

use std::collections::BTreeMap;

use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::one_of;
use crate::names;
use crate::{Issues, Ptr};

/// Checks a set-based selector and that it selects `template_labels`.
/// `what` names the owner in messages ("deployment").
pub(crate) fn label_selector(
    selector: &LabelSelector,
    at: &Ptr,
    template_labels: Option<&BTreeMap<String, String>>,
    template_at: &Ptr,
    what: &str,
    issues: &mut Issues,
) {
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    let match_labels = selector.match_labels.as_ref();
    if expressions.is_empty() && match_labels.is_none_or(BTreeMap::is_empty) {
        issues.error(at, format!("empty selector is invalid for {what}"));
        return;
    }
    super::meta::labels(match_labels, &at.key("matchLabels"), issues);
    for (i, expr) in expressions.iter().enumerate() {
        let at = at.key("matchExpressions").idx(i);
        issues.check(&at.key("key"), names::qualified_name(&expr.key));
        one_of(issues, &at.key("operator"), &expr.operator, &["In", "NotIn", "Exists", "DoesNotExist"]);
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => issues.error(&at.key("values"), "must be specified when `operator` is 'In' or 'NotIn'"),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                issues.error(&at.key("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
            }
            _ => {}
        }
    }
    let empty = BTreeMap::new();
    if !matches(selector, template_labels.unwrap_or(&empty)) {
        issues.error(template_at, "`selector` does not match template `labels`");
    }
}

/// Whether `selector` selects an object with `labels`.
pub(crate) fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    driftless_model::selector::matches(selector, labels)
}

/// Checks an equality selector (ReplicationController, Service) and, when a
/// template is given, that it selects the template's labels.
pub(crate) fn map_selector(
    selector: &BTreeMap<String, String>,
    at: &Ptr,
    template_labels: Option<&BTreeMap<String, String>>,
    template_at: &Ptr,
    issues: &mut Issues,
) {
    super::meta::labels(Some(selector), at, issues);
    let empty = BTreeMap::new();
    let labels = template_labels.unwrap_or(&empty);
    if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        issues.error(template_at, "`selector` does not match template `labels`");
    }
}
