//! Hairpin mode on the bridge's ports, so a pod can reach itself through
//! a service.
//!
//! With bridged traffic passing through netfilter, a packet a pod sends to
//! a service whose chosen backend sits on the same bridge is not routed
//! but bridged after DNAT (br_netfilter's "bridged DNAT"); when the backend
//! is the sender itself, the bridge would have to send the frame back out
//! of the port it came in by, which it only does in hairpin mode. Kubelet
//! turns it on for each pod's veth (`--hairpin-mode=hairpin-veth`); here
//! the proxy does it for every port of its bridge whenever it applies a
//! table (a pod is an endpoint only after an apply, so it always has it
//! by the time it can be chosen), and turns it off again on shutdown.
//!
//! Through netlink (`ip link set PORT type bridge_slave hairpin on`), not
//! sysfs: `/sys/class/net` shows the network namespace of whoever mounted
//! `/sys`, which for a node agent entered into a namespace with `nsenter
//! --net` is not its own.
//!
//! Must not touch: ports of other bridges, or any other port flag.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{InfoBridgePort, InfoPortData, LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkBridgePort};

use crate::sysctl::SysctlError;

/// The ports (link indexes) this proxy switched to hairpin mode.
#[derive(Debug, Default)]
pub(crate) struct Hairpin {
    enabled: BTreeSet<u32>,
}

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> SysctlError {
    let what = what.into();
    move |source| SysctlError::Netlink { what, source }
}

/// Whether the kernel said the link is gone (a pod stopped meanwhile).
fn gone(error: &rtnetlink::Error) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -19)
}

/// Runs `work` with a netlink handle, on a runtime of its own (callers are
/// blocking threads).
fn with_netlink<T>(work: impl AsyncFnOnce(&Handle) -> Result<T, SysctlError>) -> Result<T, SysctlError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(|source| SysctlError::Io { path: "netlink runtime".into(), source })?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|source| SysctlError::Io { path: "netlink socket".into(), source })?;
        tokio::spawn(connection);
        work(&handle).await
    })
}

fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| if let LinkAttribute::Controller(index) = a { Some(*index) } else { None })
}

fn hairpin(link: &LinkMessage) -> Option<bool> {
    let infos = link.attributes.iter().find_map(|a| if let LinkAttribute::LinkInfo(infos) = a { Some(infos) } else { None })?;
    infos.iter().find_map(|info| match info {
        LinkInfo::PortData(InfoPortData::BridgePort(flags)) => {
            flags.iter().find_map(|f| if let InfoBridgePort::HairpinMode(on) = f { Some(*on) } else { None })
        }
        _ => None,
    })
}

async fn set(handle: &Handle, index: u32, on: bool) -> Result<bool, SysctlError> {
    match handle.link().set_port(LinkBridgePort::new(index).hairpin(on).build()).execute().await {
        Ok(()) => Ok(true),
        Err(error) if gone(&error) => Ok(false),
        Err(error) => Err(netlink(format!("hairpin {} on port {index}", if on { "on" } else { "off" }))(error)),
    }
}

impl Hairpin {
    /// Turns hairpin mode on for every port of `bridge` that lacks it.
    pub(crate) fn ensure(&mut self, bridge: &str) -> Result<(), SysctlError> {
        let enabled = &mut self.enabled;
        with_netlink(async |handle| {
            let mut found = handle.link().get().match_name(bridge.to_owned()).execute();
            let bridge_index = found.try_next().await.map_err(netlink(format!("look up bridge {bridge}")))?.map(|l| l.header.index);
            let Some(bridge_index) = bridge_index else { return Ok(()) };
            // Only the bridge's ports (the kernel filters a dump by
            // IFLA_MASTER), without their counters: a full dump of a node
            // of 100 pods was the agent's largest transient allocation
            // (3.6 MiB, heaptrack), on every apply.
            let mut request = handle.link().get().set_filter_mask(AddressFamily::Unspec, vec![LinkExtentMask::SkipStats]);
            request.message_mut().attributes.push(LinkAttribute::Controller(bridge_index));
            let mut links = request.execute();
            let mut ports = Vec::new();
            while let Some(link) = links.try_next().await.map_err(netlink("list links"))? {
                if controller(&link) == Some(bridge_index) && hairpin(&link) != Some(true) {
                    ports.push(link.header.index);
                }
            }
            for index in ports {
                if set(handle, index, true).await? {
                    tracing::debug!(port = index, %bridge, "hairpin mode on");
                    enabled.insert(index);
                }
            }
            Ok(())
        })
    }

    /// Turns it off again where this proxy turned it on and the port is
    /// still there.
    pub(crate) fn restore(&mut self) -> Result<(), SysctlError> {
        let ports = std::mem::take(&mut self.enabled);
        if ports.is_empty() {
            return Ok(());
        }
        with_netlink(async |handle| {
            let mut first = Ok(());
            for index in ports {
                if let Err(error) = set(handle, index, false).await
                    && first.is_ok()
                {
                    first = Err(error);
                }
            }
            first
        })
    }
}
