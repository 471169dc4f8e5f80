//! The `pod-template-hash`: a short, stable name for a pod template, which
//! names the ReplicaSet that runs it (`web-7c5d9b7f4`).

use driftless_model::k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label Kubernetes puts on a Deployment's ReplicaSets and pods.
pub const LABEL: &str = "pod-template-hash";

/// The hash of `template` (without any existing hash label) and the
/// collision count, as FNV-1a over its JSON, written with Kubernetes'
/// safe alphabet so it never spells words or confuses `0` and `o`.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(LABEL);
    }
    let json = serde_json::to_string(&template).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(json.as_bytes());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    safe_encode(&hash.to_string())
}

/// Kubernetes' `rand.SafeEncodeString`.
fn safe_encode(text: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    #[test]
    fn stable_ignores_its_own_label_and_changes_with_the_template() {
        let mut template = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])), ..Default::default() }),
            spec: None,
        };
        let a = pod_template_hash(&template, None);
        assert_eq!(a, pod_template_hash(&template, None));
        assert!(a.len() >= 6 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        template.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(LABEL.into(), a.clone());
        assert_eq!(a, pod_template_hash(&template, None));
        assert_ne!(a, pod_template_hash(&template, Some(1)));
        template.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("v".into(), "2".into());
        assert_ne!(a, pod_template_hash(&template, None));
    }
}
