//! What `kubectl top` shows for a metrics object: its CPU in millicores
//! (`873m`), memory in mebibytes (`12Mi`), and a node's share of what it
//! can allocate (`43%`), as kubectl's `top` printer writes them.
//!
//! Must not touch: I/O; every function reads JSON given to it.

use driftless_model::Quantity;
use serde_json::Value;

fn quantity(value: Option<&Value>) -> Option<Quantity> {
    value.and_then(Value::as_str).and_then(|text| text.parse().ok())
}

/// CPU as kubectl prints it: millicores, rounded up.
pub fn cpu(usage: &Value) -> String {
    format!("{}m", quantity(usage.get("cpu")).map_or(0, |q| q.millis()))
}

/// Memory as kubectl prints it: whole mebibytes.
pub fn memory(usage: &Value) -> String {
    format!("{}Mi", quantity(usage.get("memory")).map_or(0, |q| q.value()) / (1024 * 1024))
}

/// `usage`'s share of `allocatable` for `resource`, as `43%`; `<unknown>`
/// without an allocatable amount, as kubectl says.
pub fn percent(usage: &Value, allocatable: Option<&Value>, resource: &str) -> String {
    let used = quantity(usage.get(resource));
    let total = quantity(allocatable.and_then(|a| a.get(resource)));
    match (used, total) {
        (Some(used), Some(total)) if resource == "cpu" && total.millis() > 0 => format!("{}%", used.millis() * 100 / total.millis()),
        (Some(used), Some(total)) if total.value() > 0 => format!("{}%", used.value() * 100 / total.value()),
        _ => "<unknown>".into(),
    }
}

/// A pod's usage: its containers' summed.
pub fn pod_usage(metrics: &Value) -> Value {
    let containers = metrics.get("containers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let sum = |resource: &str| -> i128 { containers.iter().filter_map(|c| quantity(c.pointer(&format!("/usage/{resource}")))).map(|q| q.nanos()).sum() };
    // Summed in nano-units, written back in the units the API uses.
    serde_json::json!({"cpu": format!("{}n", sum("cpu")), "memory": format!("{}", sum("memory") / 1_000_000_000)})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn as_kubectl_top_prints_them() {
        let usage = json!({"cpu": "873456789n", "memory": "13312Ki"});
        assert_eq!(cpu(&usage), "874m");
        assert_eq!(memory(&usage), "13Mi");
        let allocatable = json!({"cpu": "2", "memory": "26624Ki"});
        assert_eq!(percent(&usage, Some(&allocatable), "cpu"), "43%");
        assert_eq!(percent(&usage, Some(&allocatable), "memory"), "50%");
        assert_eq!(percent(&usage, None, "cpu"), "<unknown>");
        let pod = json!({"containers": [{"name": "a", "usage": {"cpu": "500000000n", "memory": "1024Ki"}}, {"name": "b", "usage": {"cpu": "250000000n", "memory": "2048Ki"}}]});
        let summed = pod_usage(&pod);
        assert_eq!((cpu(&summed), memory(&json!({"memory": "3145728"}))), ("750m".to_owned(), "3Mi".to_owned()));
        assert_eq!(summed["memory"], "3145728");
    }
}
