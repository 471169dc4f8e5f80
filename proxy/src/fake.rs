//! The boundary the control plane programs against: [`ServiceProxy`],
//! implemented by the real [`crate::Proxy`] and by [`FakeProxy`], which
//! checks tables as the real one does and records them.

use std::sync::{Arc, Mutex};

use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::table::{self, Bounds, ServiceTable};

/// What the daemon's service networking needs of a proxy.
pub trait ServiceProxy: Send {
    /// Serve exactly `table` (the whole table each time).
    fn apply(&mut self, table: &ServiceTable) -> Result<(), ProxyError>;
    /// Stop serving and remove what was programmed.
    fn shutdown(self: Box<Self>) -> Result<(), ProxyError>;
}

impl ServiceProxy for crate::Proxy {
    fn apply(&mut self, table: &ServiceTable) -> Result<(), ProxyError> {
        crate::Proxy::apply(self, table)
    }

    fn shutdown(self: Box<Self>) -> Result<(), ProxyError> {
        crate::Proxy::shutdown(*self)
    }
}

/// A proxy that touches nothing: it refuses what the real one refuses
/// and keeps every table it accepted, for tests of its callers.
#[derive(Debug)]
pub struct FakeProxy {
    config: ProxyConfig,
    applied: Arc<Mutex<Vec<ServiceTable>>>,
}

impl FakeProxy {
    /// A fake with the real proxy's configuration rules.
    pub fn new(config: ProxyConfig) -> Result<FakeProxy, ProxyError> {
        config.check()?;
        Ok(FakeProxy { config, applied: Arc::default() })
    }

    /// The tables it accepted, oldest first; the record stays readable
    /// after the fake is handed to its caller.
    pub fn applied(&self) -> Arc<Mutex<Vec<ServiceTable>>> {
        self.applied.clone()
    }
}

impl ServiceProxy for FakeProxy {
    fn apply(&mut self, table: &ServiceTable) -> Result<(), ProxyError> {
        let bounds = Bounds { service_cidr: self.config.service_cidr, pod_cidr: self.config.pods(), node_addresses: &self.config.node_addresses };
        table::check(table, &bounds)?;
        self.applied.lock().unwrap_or_else(|e| e.into_inner()).push(table.clone());
        Ok(())
    }

    fn shutdown(self: Box<Self>) -> Result<(), ProxyError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Protocol, ServicePort};

    #[test]
    fn the_fake_records_what_it_accepts_and_refuses_the_rest() {
        let config = ProxyConfig::new("10.98.0.0/16".parse().unwrap(), "10.245.0.0/24".parse().unwrap(), "dlp0");
        let mut fake = FakeProxy::new(config).unwrap();
        let mut table = ServiceTable {
            peers: Vec::new(),
            ports: vec![ServicePort {
                name: "ns/a:http".into(),
                protocol: Protocol::Tcp,
                frontends: vec!["10.98.0.1:80".parse().unwrap()],
                backends: vec![],
                session_affinity: None,
            }],
        };
        fake.apply(&table).unwrap();
        table.ports[0].frontends.push("10.1.2.3:80".parse().unwrap());
        assert!(fake.apply(&table).is_err());
        assert_eq!(fake.applied().lock().unwrap().len(), 1);
    }
}
