//! Which container `logs` and `exec` use when none is named, as kubectl
//! picks it: the `kubectl.kubernetes.io/default-container` annotation,
//! else the first container, with kubectl's note when there was a choice.

use serde_json::Value;

use super::get::client_error;
use crate::CommandError;

/// The annotation naming a pod's default container.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// The container to ask for, when the pod has more than one and none is
/// named (printing `Defaulted container "a" out of: a, b` on stderr);
/// `None` leaves the choice to the API (one container, or one named).
pub(crate) async fn pick(client: &driftless_api::Client, namespace: &str, pod: &str, named: Option<&str>) -> Result<Option<String>, CommandError> {
    if named.is_some() {
        return Ok(named.map(str::to_owned));
    }
    let object = client.get(&format!("/api/v1/namespaces/{namespace}/pods/{pod}")).await.map_err(client_error)?;
    let (chosen, note) = choose(&object);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(chosen)
}

/// The choice and the note, for a pod's JSON.
fn choose(pod: &Value) -> (Option<String>, Option<String>) {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}")).and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    if containers.len() + init.len() <= 1 {
        return (None, None);
    }
    let annotated = pod.pointer("/metadata/annotations").and_then(|a| a.get(DEFAULT_CONTAINER)).and_then(Value::as_str);
    // An annotation naming no container is ignored, as kubectl ignores it.
    let chosen = annotated.filter(|a| containers.iter().any(|c| c == a)).map(str::to_owned).or_else(|| containers.first().cloned());
    let Some(chosen) = chosen else { return (None, None) };
    // kubectl says nothing when the annotation chose.
    if annotated == Some(chosen.as_str()) {
        return (Some(chosen), None);
    }
    let all: Vec<String> = containers.iter().cloned().chain(init.iter().map(|i| format!("{i} (init)"))).collect();
    let note = format!("Defaulted container {chosen:?} out of: {}", all.join(", "));
    (Some(chosen), Some(note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_annotation_then_the_first_container_with_kubectls_note() {
        let pod = json!({"spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}, {"name": "sidecar"}]}});
        assert_eq!(choose(&pod), (Some("app".into()), Some("Defaulted container \"app\" out of: app, sidecar, setup (init)".into())));
        let annotated = json!({"metadata": {"annotations": {DEFAULT_CONTAINER: "sidecar"}}, "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]}});
        assert_eq!(choose(&annotated), (Some("sidecar".into()), None));
        assert_eq!(choose(&json!({"spec": {"containers": [{"name": "only"}]}})), (None, None));
    }
}
