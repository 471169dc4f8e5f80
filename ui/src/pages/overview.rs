//! The Overview: what the daemon syncs and runs (repository, branch, path,
//! the running commit), when it last looked, the last refusal with its
//! errors, the declared objects counted by health, and each node's
//! allocatable against what its pods request.
//!
//! Must not touch: the store (it reads a snapshot of this instant).

use std::collections::BTreeMap;

use driftless_diff::Live;
use driftless_model::Kind;
use driftless_model::k8s_openapi::api::core::v1::{Pod, PodSpec};
use driftless_store::{Key, Store};
use driftless_sync::{StoreLive, Syncer};
use maud::{Markup, html};
use serde_json::Value;

use crate::health::{self, Health};

/// A node's row.
struct NodeRow {
    name: String,
    cpu: (i128, i128),
    memory: (i128, i128),
    pods: usize,
}

/// Everything the page shows, read at once.
pub(crate) struct Overview {
    sync: driftless_sync::SyncStatus,
    health: BTreeMap<Health, usize>,
    nodes: Vec<NodeRow>,
    now: i64,
}

impl Overview {
    /// Reads the page's facts from `store`.
    pub(crate) fn read(store: &dyn Store) -> Overview {
        let sync = Syncer::status(store);
        let live = StoreLive::new(store);
        let mut counts: BTreeMap<Health, usize> = BTreeMap::new();
        for object in live.declared() {
            let key = Key::new(object.kind, object.namespace.clone().unwrap_or_default(), object.name.clone());
            let value = store.get(&key);
            *counts.entry(health::assess(object.kind.name(), value.as_deref()).health).or_default() += 1;
        }
        let pods = store.list(Kind::Pod, None).0;
        let mut nodes: Vec<NodeRow> = store
            .list(Kind::Node, None)
            .0
            .iter()
            .map(|node| {
                let text = |p: &str| node.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
                let quantity = |p: &str| text(p).parse::<driftless_model::Quantity>().ok();
                NodeRow {
                    name: text("/metadata/name"),
                    cpu: (0, quantity("/status/allocatable/cpu").map_or(0, |q| q.millis())),
                    memory: (0, quantity("/status/allocatable/memory").map_or(0, |q| q.value())),
                    pods: 0,
                }
            })
            .collect();
        for pod in pods.iter() {
            let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            let Some(row) = nodes.iter_mut().find(|n| n.name == node) else { continue };
            // Only the spec, read in place: copying and parsing each whole
            // pod (status included) was most of this page's time at 1,000
            // pods (docs/benchmarks.md, "The dashboard").
            let Some(Ok(spec)) = pod.get("spec").map(<PodSpec as serde::Deserialize>::deserialize) else { continue };
            let typed = Pod { spec: Some(spec), ..Pod::default() };
            let asked = driftless_model::requests::requests(&typed);
            row.cpu.0 += asked.cpu;
            row.memory.0 += asked.memory;
            row.pods += 1;
        }
        Overview { sync, health: counts, nodes, now: jiff::Timestamp::now().as_second() }
    }

    /// The page's content.
    pub(crate) fn render(&self) -> Markup {
        let sync = &self.sync;
        let ago = |t: i64| format!("{} ago", driftless_printers::age::human(self.now - t));
        html! {
            h1 { "Overview" }
            section aria-labelledby="source" {
                h2 id="source" { "Source" }
                dl.facts {
                    dt { "Repository" } dd { code { (sync.repo) } }
                    dt { "Branch" } dd { code { (sync.branch) } }
                    dt { "Path" } dd { code { @if sync.path.is_empty() { "/" } @else { (sync.path) } } }
                    dt { "Running" }
                    dd {
                        @if let Some(applied) = &sync.applied {
                            code { (short(&applied.id)) } " " (applied.subject)
                            span.muted { " by " (applied.author) ", committed " (ago(applied.time)) }
                        } @else {
                            span.muted { "nothing applied yet" }
                        }
                    }
                    dt { "Last sync" }
                    dd {
                        @if sync.synced_at > 0 { (ago(sync.synced_at)) } @else { span.muted { "not yet" } }
                        @if let Some(error) = &sync.error { " " span.error { "(failed: " (error) ")" } }
                    }
                }
            }
            @if let Some((commit, errors)) = &sync.refused {
                section.refused aria-labelledby="refused" {
                    h2 id="refused" { "Refused: " code { (short(&commit.id)) } " " (commit.subject) }
                    p { "By " (commit.author) ". The daemon keeps running the last good revision." }
                    ul { @for error in errors { li { (super::file::located(error, &commit.id)) } } }
                }
            }
            section aria-labelledby="health" {
                h2 id="health" { "Declared objects by health" }
                @if self.health.is_empty() {
                    p.muted { "Git declares nothing yet." }
                } @else {
                    ul.counts {
                        @for (health, count) in &self.health {
                            li { span class={ "health health-" (health.as_str()) } { (health.as_str()) } ": " (count) }
                        }
                    }
                }
            }
            section aria-labelledby="nodes" {
                h2 id="nodes" { "Nodes" }
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Node" } th scope="col" { "CPU requested" } th scope="col" { "Memory requested" } th scope="col" { "Pods" } } }
                        tbody {
                            @for node in &self.nodes {
                                tr {
                                    th scope="row" { (node.name) }
                                    td { (usage(node.cpu, |m| format!("{m}m"))) }
                                    td { (usage(node.memory, |b| format!("{}Mi", b >> 20))) }
                                    td { (node.pods) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

/// `requested / allocatable (percent)` with a bar.
fn usage((used, of): (i128, i128), unit: impl Fn(i128) -> String) -> Markup {
    let percent = if of > 0 { (used * 100 / of).clamp(0, 999) } else { 0 };
    html! {
        (unit(used)) " / " (unit(of)) " (" (percent) "%) "
        span.bar role="img" aria-label={ (percent) "% requested" } { span style={ "width:" (percent.min(100)) "%" } {} }
    }
}
