//! Routes between nodes' pod networks, host-gw style (as flannel's host-gw
//! backend): every other node's pod CIDR routed via that node's address,
//! which must be on a network this host reaches directly. Beneath them,
//! the whole cluster CIDR is routed `unreachable`: a pod address of a node
//! this one has no route for is refused here, never sent to the default
//! route. Both are in place before any pod address is used.
//!
//! Owns: the main table's routes of protocol [`PEER_PROTOCOL`] (found and
//! removed by it), and the cluster CIDR's unreachable route. Must not
//! touch: any other route (the pod CIDR's to the bridge, the service
//! CIDR's on `lo`, the host's own).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::NetError;

/// The routing protocol number of the routes to other nodes (unnamed in
/// iproute2's `rt_protos`; `ip route show proto 77` lists them).
pub const PEER_PROTOCOL: u8 = 77;
const MAIN_TABLE: u32 = 254;

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Netlink { what, source }
}

fn code(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code()),
        _ => None,
    }
}

fn unreachable_route(cidr: Ipv4Net) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .table_id(MAIN_TABLE)
        .kind(RouteType::Unreachable)
        .scope(RouteScope::Universe)
        .protocol(RouteProtocol::Static)
        .build()
}

/// Routes `cidr` unreachable (`ip route add unreachable CIDR`). Idempotent.
pub async fn ensure_unreachable(handle: &Handle, cidr: Ipv4Net) -> Result<(), NetError> {
    match handle.route().add(unreachable_route(cidr)).execute().await {
        Err(error) if code(&error) == Some(-17) => Ok(()),
        result => result.map_err(netlink(format!("route {cidr} unreachable"))),
    }
}

/// Removes that route. Idempotent.
pub async fn delete_unreachable(handle: &Handle, cidr: Ipv4Net) -> Result<(), NetError> {
    match handle.route().del(unreachable_route(cidr)).execute().await {
        Err(error) if code(&error) == Some(-3) => Ok(()),
        result => result.map_err(netlink(format!("delete the unreachable route {cidr}"))),
    }
}

fn peer_route(cidr: Ipv4Net, via: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .gateway(via)
        .table_id(MAIN_TABLE)
        .protocol(RouteProtocol::Other(PEER_PROTOCOL))
        .build()
}

/// The peer routes in place: destination and gateway.
async fn installed(handle: &Handle) -> Result<BTreeSet<(Ipv4Net, Ipv4Addr)>, NetError> {
    let mut query = RouteMessageBuilder::<Ipv4Addr>::new().table_id(MAIN_TABLE).build();
    query.header.address_family = AddressFamily::Inet;
    let mut routes = handle.route().get(query).execute();
    let mut found = BTreeSet::new();
    while let Some(route) = routes.try_next().await.map_err(netlink("list routes"))? {
        if route.header.protocol != RouteProtocol::Other(PEER_PROTOCOL) {
            continue;
        }
        let destination = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let gateway = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        if let (Some(destination), Some(gateway)) = (destination, gateway)
            && let Ok(cidr) = Ipv4Net::new(destination, route.header.destination_prefix_length)
        {
            found.insert((cidr, gateway));
        }
    }
    Ok(found)
}

/// Makes the peer routes exactly `wanted`: adds the missing, removes the
/// others of [`PEER_PROTOCOL`].
pub async fn set_peer_routes(handle: &Handle, wanted: &BTreeSet<(Ipv4Net, Ipv4Addr)>) -> Result<(), NetError> {
    let have = installed(handle).await?;
    for (cidr, via) in have.difference(wanted) {
        match handle.route().del(peer_route(*cidr, *via)).execute().await {
            Err(error) if code(&error) == Some(-3) => {}
            result => result.map_err(netlink(format!("delete the route {cidr} via {via}")))?,
        }
        tracing::info!(%cidr, %via, "removed the route to a node's pods");
    }
    for (cidr, via) in wanted.difference(&have) {
        handle.route().add(peer_route(*cidr, *via)).replace().execute().await.map_err(netlink(format!("route {cidr} via {via}")))?;
        tracing::info!(%cidr, %via, "routed a node's pods");
    }
    Ok(())
}
