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

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::sysctl::SysctlError;

/// The ports this proxy switched to hairpin mode.
#[derive(Debug, Default)]
pub(crate) struct Hairpin {
    enabled: BTreeSet<PathBuf>,
}

impl Hairpin {
    /// Turns hairpin mode on for every port of `bridge` that lacks it.
    pub(crate) fn ensure(&mut self, bridge: &str) -> Result<(), SysctlError> {
        let ports = PathBuf::from("/sys/class/net").join(bridge).join("brif");
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| SysctlError::Io { path, source }
        };
        for entry in std::fs::read_dir(&ports).map_err(io(&ports))? {
            let flag = entry.map_err(io(&ports))?.path().join("hairpin_mode");
            match std::fs::read_to_string(&flag) {
                Ok(value) if value.trim() == "1" => continue,
                Ok(_) => {}
                // The port went away with its pod meanwhile.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io(&flag)(error)),
            }
            std::fs::write(&flag, "1").map_err(io(&flag))?;
            tracing::debug!(port = %flag.display(), "hairpin mode on");
            self.enabled.insert(flag);
        }
        Ok(())
    }

    /// Turns it off again where this proxy turned it on and the port is
    /// still there.
    pub(crate) fn restore(&mut self) -> Result<(), SysctlError> {
        let mut first = Ok(());
        for flag in std::mem::take(&mut self.enabled) {
            match std::fs::write(&flag, "0") {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound && first.is_ok() => first = Err(SysctlError::Io { path: flag, source: error }),
                _ => {}
            }
        }
        first
    }
}
