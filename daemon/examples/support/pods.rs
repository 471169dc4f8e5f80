//! What the control-plane benchmarks wait for: a number of pods Ready,
//! seen through the API as a client would see it.

// Each benchmark program includes this module and uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use driftless_api::Client;
use futures_util::StreamExt;
use serde_json::Value;

/// Whether a pod counts as Ready (and not on its way out).
fn ready(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_none()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Waits until exactly `n` pods exist and are Ready; when it happened. The
/// pods are listed first, then watched from the list's version, so the
/// judgement is never made on half a listing.
pub(crate) async fn wait_pods(client: &Client, n: usize) -> Instant {
    wait_pods_for(client, n, Duration::from_secs(60)).await
}

/// As [`wait_pods`], for up to `patience`. A watch the server ends (it
/// ends one that falls behind) is followed by a new list and watch, as
/// client-go's informers do.
pub(crate) async fn wait_pods_for(client: &Client, n: usize, patience: Duration) -> Instant {
    let deadline = Instant::now() + patience;
    loop {
        let list = client.get("/api/v1/namespaces/default/pods").await.unwrap();
        let mut pods: std::collections::BTreeMap<String, bool> =
            list["items"].as_array().into_iter().flatten().map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_owned(), ready(p))).collect();
        if pods.len() == n && pods.values().all(|r| *r) {
            return Instant::now();
        }
        let version = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_owned();
        let mut stream = client.stream(&format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={version}")).await.unwrap();
        let mut buffer = String::new();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let event: Value = serde_json::from_str(&line).unwrap();
                let pod = &event["object"];
                let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
                if event["type"] == "DELETED" {
                    pods.remove(&name);
                } else {
                    pods.insert(name, ready(pod));
                }
                if pods.len() == n && pods.values().all(|r| *r) {
                    return Instant::now();
                }
            }
            assert!(Instant::now() < deadline, "timed out with {} pods, {} Ready", pods.len(), pods.values().filter(|r| **r).count());
        }
        assert!(Instant::now() < deadline, "timed out with {} pods, {} Ready", pods.len(), pods.values().filter(|r| **r).count());
    }
}
