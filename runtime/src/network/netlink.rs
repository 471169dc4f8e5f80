//! Links, addresses and routes through netlink (`rtnetlink`), never by
//! running `ip`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use nix::sched::CloneFlags;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};

use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The kernel refused a netlink request.
    #[error("{what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: rtnetlink::Error,
    },
    /// The routes could not be read.
    #[error(transparent)]
    Routes(#[from] driftless_routes::RouteError),
    /// A link that should exist does not.
    #[error("no link named {0}")]
    NoLink(String),
    /// The pod's network namespace could not be entered.
    #[error("cannot enter network namespace {}: {source}", path.display())]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Netlink { what, source }
}

/// Whether the kernel said the object already exists.
fn exists(error: &rtnetlink::Error) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -libc_eexist())
}

const fn libc_eexist() -> i32 {
    17
}

/// Hairpin mode on the pod's bridge port (`ip link set VETH type
/// bridge_slave hairpin on`), so the pod reaches itself through a
/// service. With bridged traffic passing through netfilter, a packet a
/// pod sends to a service whose chosen backend is the sender itself is
/// DNATed and bridged back out of the port it came in by, which the
/// bridge only does in hairpin mode: kubelet's `--hairpin-mode` and the
/// CNI bridge plugin's `hairpinMode` set it as the port is made, as here.
/// One request, by name: the kernel resolves the port from it.
async fn hairpin(handle: &Handle, host: &str) -> Result<(), NetError> {
    let port = LinkBridgePort::new(0).name(host.to_owned()).hairpin(true).build();
    handle.link().set_port(port).execute().await.map_err(netlink(format!("hairpin mode on {host}")))
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        // The kernel answers ENODEV for an unknown name.
        Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -19 => Ok(None),
        Err(source) => Err(NetError::Netlink { what: format!("look up link {name}"), source }),
    }
}

/// The node bridge pods attach to.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// Its name (`driftless0` on a real node).
    pub name: String,
    /// Its link index.
    pub index: u32,
    /// The pod CIDR, which is the bridge's own subnet.
    pub cidr: Ipv4Net,
    /// The bridge's address: the pods' default gateway.
    pub gateway: Ipv4Addr,
}

impl Bridge {
    /// Creates the bridge if needed, gives it the gateway address (which
    /// makes the kernel route the whole pod CIDR to it) and brings it up.
    /// Idempotent.
    pub async fn ensure(handle: &Handle, name: &str, cidr: Ipv4Net, gateway: Ipv4Addr) -> Result<Bridge, NetError> {
        if link_index(handle, name).await?.is_none()
            && let Err(error) = handle.link().add(LinkBridge::new(name).build()).execute().await
            && !exists(&error)
        {
            return Err(netlink(format!("create bridge {name}"))(error));
        }
        let index = link_index(handle, name).await?.ok_or_else(|| NetError::NoLink(name.to_owned()))?;
        if let Err(error) = handle.address().add(index, IpAddr::V4(gateway), cidr.prefix_len()).execute().await
            && !exists(&error)
        {
            return Err(netlink(format!("address {gateway}/{} on {name}", cidr.prefix_len()))(error));
        }
        handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(netlink(format!("bring up {name}")))?;
        Ok(Bridge { name: name.to_owned(), index, cidr: cidr.trunc(), gateway })
    }

    /// Deletes a bridge by name; deleting one that is gone is fine.
    pub async fn delete(handle: &Handle, name: &str) -> Result<(), NetError> {
        match link_index(handle, name).await? {
            Some(index) => handle.link().del(index).execute().await.map_err(netlink(format!("delete {name}"))),
            None => Ok(()),
        }
    }
}

/// A pod's connection to the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInterface {
    /// The host end of the veth pair, a port of the bridge.
    pub host_veth: String,
    /// The pod's address (on `eth0` inside the pod).
    pub ip: Ipv4Addr,
}

impl PodInterface {
    /// The host-side veth name for a pod: `veth` and 8 hex digits of a hash
    /// of its id (interface names are limited to 15 bytes).
    pub fn host_name(pod_id: &str) -> String {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let hash = pod_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        format!("veth{hash:08x}")
    }

    /// Connects the pod's network namespace to the bridge: a veth pair
    /// whose pod end becomes `eth0` with `ip`, loopback up, and a default
    /// route through the bridge. All of it from one thread of its own
    /// ([`on_both_sides`]).
    pub async fn attach(bridge: &Bridge, netns: &Path, pod_id: &str, ip: Ipv4Addr) -> Result<PodInterface, NetError> {
        let host = Self::host_name(pod_id);
        let (bridge, name) = (bridge.clone(), host.clone());
        on_both_sides(netns, move |netns_fd, node, pod| async move {
            // One request creates the pair with its pod end already inside
            // the pod's namespace and named eth0, and the host end already
            // a port of the bridge and up. Moving a link between namespaces
            // afterwards costs an RCU grace period (~25 ms measured here),
            // and every extra step a round trip.
            let pair = || {
                let peer = LinkUnspec::new_with_name("eth0").setns_by_fd(netns_fd).build();
                LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                    .name(name.clone())
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                    .controller(bridge.index)
                    .up()
                    .build()
            };
            let what = || format!("create veth {name} with its peer in the pod");
            // A pair left by an earlier try for this pod is deleted and made
            // again; asking for it first cost a round trip on every start.
            match node.link().add(pair()).execute().await {
                Err(error) if exists(&error) => {
                    Self::detach(&node, &name).await?;
                    node.link().add(pair()).execute().await.map_err(netlink(what()))?;
                }
                made => made.map_err(netlink(what()))?,
            }
            hairpin(&node, &name).await?;
            // An address used before keeps the old pod's MAC in the
            // bridge's neighbour cache until that entry goes stale
            // (seconds): forget it, so the first packet to the new pod is
            // resolved afresh.
            forget_neighbour(&node, bridge.index, ip).await?;
            configure_pod_side(&pod, "eth0", ip, bridge.cidr.prefix_len(), bridge.gateway).await
        })
        .await?;
        Ok(PodInterface { host_veth: host, ip })
    }

    /// The pod's interface if an earlier run of the daemon made it: its
    /// host end exists. Adopting it keeps the pod's connections alive; its
    /// pod end is configured again (a no-op when complete), since the
    /// earlier daemon may have been killed before it finished.
    pub async fn existing(bridge: &Bridge, netns: &Path, pod_id: &str, ip: Ipv4Addr) -> Result<Option<PodInterface>, NetError> {
        let host = Self::host_name(pod_id);
        let (bridge, name) = (bridge.clone(), host.clone());
        let found = on_both_sides(netns, move |_, node, pod| async move {
            if link_index(&node, &name).await?.is_none() {
                return Ok(false);
            }
            // A pod an older daemon started may lack it.
            hairpin(&node, &name).await?;
            configure_pod_side(&pod, "eth0", ip, bridge.cidr.prefix_len(), bridge.gateway).await?;
            Ok(true)
        })
        .await?;
        Ok(found.then_some(PodInterface { host_veth: host, ip }))
    }

    /// Waits until the kernel has deleted the pod's veth pair, which it does
    /// with the pod's network namespace once that has no user left; deletes
    /// the pair itself if it is still there at `deadline` (something still
    /// holds the namespace). Either way the pair is gone on return.
    pub async fn detach_after_namespace(handle: &Handle, host_veth: &str, deadline: std::time::Duration) -> Result<(), NetError> {
        let started = std::time::Instant::now();
        while link_index(handle, host_veth).await?.is_some() {
            if started.elapsed() >= deadline {
                return Self::detach(handle, host_veth).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Deletes the pod's veth pair (both ends go together). Idempotent.
    pub async fn detach(handle: &Handle, host_veth: &str) -> Result<(), NetError> {
        match link_index(handle, host_veth).await? {
            Some(index) => handle.link().del(index).execute().await.map_err(netlink(format!("delete {host_veth}"))),
            None => Ok(()),
        }
    }
}

/// Removes the neighbour (ARP) entry for `ip` on link `index`, if any:
/// one request naming it (`ip neigh del IP dev BRIDGE`), not a listing of
/// every entry, which grows with the pods on the bridge.
async fn forget_neighbour(handle: &Handle, index: u32, ip: Ipv4Addr) -> Result<(), NetError> {
    use rtnetlink::packet_route::AddressFamily;
    use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
    let mut entry = NeighbourMessage::default();
    entry.header.family = AddressFamily::Inet;
    entry.header.ifindex = index;
    entry.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    match handle.neighbours().del(entry).execute().await {
        // ENOENT: no entry for it, which is the usual case.
        Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -2 => Ok(()),
        done => done.map_err(netlink(format!("forget the neighbour {ip}"))),
    }
}

/// The loopback's index in every network namespace (the kernel's
/// `LOOPBACK_IFINDEX`): no need to ask for it.
const LOOPBACK: u32 = 1;

/// Configures the pod's side, over a handle whose socket is in the pod's
/// namespace.
async fn configure_pod_side(pod: &Handle, peer: &str, ip: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> Result<(), NetError> {
    pod.link().set(LinkUnspec::new_with_index(LOOPBACK).up().build()).execute().await.map_err(netlink("bring up lo"))?;
    let index = link_index(pod, peer).await?.ok_or_else(|| NetError::NoLink(peer.to_owned()))?;
    if peer != "eth0" {
        pod.link().set(LinkUnspec::new_with_index(index).name("eth0".to_owned()).build()).execute().await.map_err(netlink("rename to eth0"))?;
    }
    // Replace rather than add, here and for the route: adopting a pod whose
    // set-up a killed daemon left half done runs this again over what is
    // already there.
    pod.address().add(index, IpAddr::V4(ip), prefix).replace().execute().await.map_err(netlink(format!("address {ip}/{prefix}")))?;
    pod.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(netlink("bring up eth0"))?;
    let default = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).output_interface(index).build();
    pod.route().add(default).replace().execute().await.map_err(netlink(format!("default route via {gateway}")))?;
    Ok(())
}

/// Runs `work` on a thread of its own, with two netlink handles: `node`,
/// whose socket was opened in the node's namespace, and `pod`, whose
/// socket was opened after the thread entered the namespace at `netns`
/// (a socket belongs to the namespace it was opened in; entering one
/// changes only the thread). `work` also gets a descriptor of that
/// namespace, open while it runs. That thread alone drives both: requests
/// sent through the node's shared connection wait, each way, for another
/// thread to be scheduled, which on a busy node's two cores cost more
/// than the requests (docs/benchmarks.md).
async fn on_both_sides<T, W, F>(netns: &Path, work: W) -> Result<T, NetError>
where
    T: Send + 'static,
    W: FnOnce(RawFd, Handle, Handle) -> F + Send + 'static,
    F: Future<Output = Result<T, NetError>>,
{
    let path = netns.to_path_buf();
    let worker = std::thread::Builder::new()
        .name("pod-network".into())
        .spawn(move || -> Result<T, NetError> {
            let enter = |source| NetError::Netns { path: path.clone(), source };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(enter)?;
            runtime.block_on(async {
                let (connection, node, _) = rtnetlink::new_connection().map_err(enter)?;
                tokio::spawn(connection);
                let file = File::open(&path).map_err(enter)?;
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| enter(e.into()))?;
                let (connection, pod, _) = rtnetlink::new_connection().map_err(enter)?;
                tokio::spawn(connection);
                work(file.as_raw_fd(), node, pod).await
            })
        })
        .map_err(|source| NetError::Netns { path: netns.to_path_buf(), source })?;
    // Joined on a blocking thread, so the caller's runtime is not blocked.
    tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|e| NetError::Netns { path: PathBuf::new(), source: std::io::Error::other(e) })?
        .unwrap_or_else(|_| Err(NetError::Netns { path: PathBuf::new(), source: std::io::Error::other("the pod's network thread panicked") }))
}

/// The kernel's `local` routing table.
const LOCAL_TABLE: u32 = 255;

fn local_route(cidr: Ipv4Net, lo: u32) -> rtnetlink::packet_route::route::RouteMessage {
    use rtnetlink::packet_route::route::{RouteProtocol, RouteScope, RouteType};
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .output_interface(lo)
        .table_id(LOCAL_TABLE)
        .kind(RouteType::Local)
        .scope(RouteScope::Host)
        .protocol(RouteProtocol::Static)
        .build()
}

/// Routes `cidr` as `local` on `lo` (`ip route add local CIDR dev lo`):
/// the host accepts every address in it and none of its packets can leave
/// the machine. How the service CIDR is kept on the node (this kernel has
/// no `dummy` device). Idempotent.
pub async fn ensure_local_route(handle: &Handle, cidr: Ipv4Net) -> Result<(), NetError> {
    let lo = link_index(handle, "lo").await?.ok_or_else(|| NetError::NoLink("lo".into()))?;
    match handle.route().add(local_route(cidr, lo)).execute().await {
        Err(error) if exists(&error) => Ok(()),
        result => result.map_err(netlink(format!("route {cidr} as local on lo"))),
    }
}

/// Whether `cidr` is routed `local` on `lo` (see `driftless-routes`).
pub async fn local_route_exists(handle: &Handle, cidr: Ipv4Net) -> Result<bool, NetError> {
    driftless_routes::local_on_lo(handle, cidr).await.map_err(NetError::from)
}

/// Removes the `local` route for `cidr`. Idempotent.
pub async fn delete_local_route(handle: &Handle, cidr: Ipv4Net) -> Result<(), NetError> {
    let lo = link_index(handle, "lo").await?.ok_or_else(|| NetError::NoLink("lo".into()))?;
    match handle.route().del(local_route(cidr, lo)).execute().await {
        // ESRCH: no such route.
        Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -3 => Ok(()),
        result => result.map_err(netlink(format!("delete the local route {cidr}"))),
    }
}

/// Whether the host's main routing table sends `cidr` to `device` (see
/// `driftless-routes`).
pub fn route_exists(cidr: Ipv4Net, device: &str) -> std::io::Result<bool> {
    driftless_routes::routed_to(cidr, device).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_short_and_stable() {
        let name = PodInterface::host_name("default/web-7c5d9b7f4-x2x8q");
        assert_eq!(name.len(), 12);
        assert_eq!(name, PodInterface::host_name("default/web-7c5d9b7f4-x2x8q"));
        assert_ne!(name, PodInterface::host_name("default/web-7c5d9b7f4-x2x8r"));
    }
}
