//! The routes from this node to the other nodes' pods: every Node's pod
//! CIDR (`spec.podCIDR`) via its InternalIP, kept as the Nodes change (a
//! node joins, moves, or is deleted), host-gw style. The runtime installs
//! them (`driftless_runtime::network::peers`), and refuses any that would
//! lead anywhere but another node of this cluster.
//!
//! Must not touch: the routes themselves (the runtime's), or the Nodes.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::Kind;
use driftless_store::Store;
use ipnet::Ipv4Net;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A peer: its name, pod CIDR and address.
pub(crate) type Peer = (String, Ipv4Net, Ipv4Addr);

/// Installs the routes to the peers (the node runtime, or a fake).
pub(crate) trait PeerRoutes: Send + Sync + 'static {
    /// Routes exactly `peers`; the ones refused, with why.
    fn route_peers(&self, peers: &[Peer]) -> Result<Vec<String>, String>;
}

impl PeerRoutes for driftless_runtime::node::Node {
    fn route_peers(&self, peers: &[Peer]) -> Result<Vec<String>, String> {
        driftless_runtime::node::Node::route_peers(self, peers).map_err(|e| e.to_string())
    }
}

/// Even with no Node changing, the routes are put back this often (one
/// removed by hand comes back).
const RECHECK: Duration = Duration::from_secs(30);

/// The other nodes with a pod CIDR and an address, by name.
pub(crate) fn peers_of(store: &dyn Store, own: &str) -> Vec<Peer> {
    let mut peers: Vec<Peer> = store
        .list(Kind::Node, None)
        .0
        .iter()
        .filter_map(|node| {
            let name = node.pointer("/metadata/name")?.as_str()?;
            let cidr: Ipv4Net = node.pointer("/spec/podCIDR")?.as_str()?.parse().ok()?;
            let address = node.pointer("/status/addresses")?.as_array()?.iter().find(|a| a["type"] == "InternalIP")?;
            let ip: Ipv4Addr = address.get("address").and_then(Value::as_str)?.parse().ok()?;
            (name != own).then(|| (name.to_owned(), cidr.trunc(), ip))
        })
        .collect();
    peers.sort();
    peers
}

/// Keeps the routes current until `cancel` fires.
pub(crate) async fn run(store: Arc<dyn Store>, routes: Arc<dyn PeerRoutes>, own: String, cancel: CancellationToken) {
    let mut events = store.watch();
    let mut applied: Option<Vec<Peer>> = None;
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        let peers = peers_of(&*store, &own);
        if applied.as_ref() != Some(&peers) {
            let (installer, wanted) = (routes.clone(), peers.clone());
            match tokio::task::spawn_blocking(move || installer.route_peers(&wanted)).await {
                Ok(Ok(refused)) => {
                    for why in &refused {
                        tracing::warn!(%why, "not routing a node's pods");
                    }
                    tracing::debug!(peers = peers.len(), "routes to the other nodes' pods in place");
                    applied = Some(peers);
                }
                Ok(Err(error)) => tracing::warn!(%error, "could not route the other nodes' pods; trying again"),
                Err(error) => tracing::warn!(%error, "routing the other nodes' pods panicked"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.recv() => match event {
                Ok(event) if event.key.kind != Kind::Node => continue,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => applied = None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = recheck.tick() => applied = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use driftless_store::{Batch, Key, Op, SqliteStore};
    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Fake(Mutex<Vec<Vec<Peer>>>);

    impl PeerRoutes for Fake {
        fn route_peers(&self, peers: &[Peer]) -> Result<Vec<String>, String> {
            self.0.lock().unwrap().push(peers.to_vec());
            Ok(Vec::new())
        }
    }

    fn node(name: &str, cidr: &str, ip: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"podCIDR": cidr},
               "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}})
    }

    async fn until(fake: &Fake, wanted: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let last: Option<Vec<String>> = fake.0.lock().unwrap().last().map(|p| p.iter().map(|(n, c, ip)| format!("{n} {c} {ip}")).collect());
            if last.as_deref().is_some_and(|l| l == wanted) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "routes {last:?}, wanted {wanted:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn routes_follow_the_nodes() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        store.apply(Batch::one(Op::Create(node("node-1", "10.244.1.0/24", "192.0.2.1")))).unwrap();
        store.apply(Batch::one(Op::Create(node("node-2", "10.244.2.0/24", "192.0.2.2")))).unwrap();
        let fake = Arc::new(Fake::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(store.clone(), fake.clone(), "node-1".into(), cancel.clone()));
        until(&fake, &["node-2 10.244.2.0/24 192.0.2.2"]).await;
        // A node joins; one without an address or CIDR yet is not routed.
        store.apply(Batch::one(Op::Create(node("node-3", "10.244.3.0/24", "192.0.2.3")))).unwrap();
        store.apply(Batch::one(Op::Create(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-4"}})))).unwrap();
        until(&fake, &["node-2 10.244.2.0/24 192.0.2.2", "node-3 10.244.3.0/24 192.0.2.3"]).await;
        // One is deleted.
        store.apply(Batch::one(Op::Delete { key: Key::new(Kind::Node, "", "node-2"), uid: None })).unwrap();
        until(&fake, &["node-3 10.244.3.0/24 192.0.2.3"]).await;
        cancel.cancel();
        task.await.unwrap();
    }
}
