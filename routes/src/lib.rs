//! The routes that keep pod and service traffic on the node, read from the
//! kernel: the pod CIDR routed to the node bridge (which holds the
//! gateway), and the service CIDR routed `local` on `lo`. Without them a
//! DNAT rule or a pod's packet would leave by the default route.
//!
//! Owns: reading those two routes, for every component that must check
//! them before it sends or programs anything (the node runtime before it
//! runs pods, the service proxy before it programs rules).
//!
//! Must not touch: anything. It only reads; the node runtime creates and
//! removes the routes.

use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};

/// The kernel's `local` routing table.
pub const LOCAL_TABLE: u32 = 255;

/// The routes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// `/proc/net/route` could not be read.
    #[error("cannot read /proc/net/route: {0}")]
    Proc(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was asked.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: rtnetlink::Error,
    },
    /// The netlink socket or its runtime could not be made.
    #[error("netlink: {0}")]
    Io(#[source] std::io::Error),
    /// There is no `lo`.
    #[error("there is no loopback interface")]
    NoLoopback,
}

/// Whether the host's main routing table sends `cidr` to `device` (read
/// from `/proc/net/route`, which lists IPv4 routes with their destination
/// and mask in little-endian hex).
pub fn routed_to(cidr: Ipv4Net, device: &str) -> Result<bool, RouteError> {
    let table = std::fs::read_to_string("/proc/net/route").map_err(RouteError::Proc)?;
    Ok(proc_table_routes(&table, cidr, device))
}

fn proc_table_routes(table: &str, cidr: Ipv4Net, device: &str) -> bool {
    let hex = |ip: Ipv4Addr| format!("{:08X}", u32::from_le_bytes(ip.octets()));
    let (dest, mask) = (hex(cidr.network()), hex(cidr.netmask()));
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 7 && fields[0] == device && fields[1] == dest && fields[7] == mask
    })
}

/// Whether `cidr` is routed `local` on `lo` (in the `local` table), asked
/// over an existing netlink connection.
pub async fn local_on_lo(handle: &Handle, cidr: Ipv4Net) -> Result<bool, RouteError> {
    let mut links = handle.link().get().match_name("lo".to_owned()).execute();
    let lo = links.try_next().await.map_err(|source| RouteError::Netlink { what: "look up lo", source })?.ok_or(RouteError::NoLoopback)?.header.index;
    let query = RouteMessageBuilder::<Ipv4Addr>::new().table_id(LOCAL_TABLE).build();
    let mut routes = handle.route().get(query).execute();
    while let Some(route) = routes.try_next().await.map_err(|source| RouteError::Netlink { what: "list routes", source })? {
        let attrs = &route.attributes;
        let destination = attrs.iter().any(|a| matches!(a, RouteAttribute::Destination(RouteAddress::Inet(ip)) if *ip == cidr.network()));
        let on_lo = attrs.iter().any(|a| matches!(a, RouteAttribute::Oif(index) if *index == lo));
        if route.header.kind == RouteType::Local && route.header.destination_prefix_length == cidr.prefix_len() && destination && on_lo {
            return Ok(true);
        }
    }
    Ok(false)
}

/// [`local_on_lo`] from synchronous code, or from inside a tokio runtime
/// (where blocking on a nested runtime would panic): a thread of its own
/// with a current-thread runtime drives a netlink socket of its own.
pub fn local_on_lo_blocking(cidr: Ipv4Net) -> Result<bool, RouteError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(RouteError::Io)?;
                runtime.block_on(async {
                    let (connection, handle, _) = rtnetlink::new_connection().map_err(RouteError::Io)?;
                    tokio::spawn(connection);
                    local_on_lo(&handle, cidr).await
                })
            })
            .join()
            .unwrap_or_else(|_| Err(RouteError::Io(std::io::Error::other("the netlink thread panicked"))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_table() {
        // /proc/net/route as the kernel writes it: 10.244.0.0/24 on driftless0.
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     driftless0\t0000F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let cidr: Ipv4Net = "10.244.0.0/24".parse().unwrap();
        assert!(proc_table_routes(table, cidr, "driftless0"));
        assert!(!proc_table_routes(table, cidr, "eth0"));
        assert!(!proc_table_routes(table, "10.244.1.0/24".parse().unwrap(), "driftless0"));
    }
}
