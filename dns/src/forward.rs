//! Forwarding: names outside the cluster domain (and reverse names the zone
//! has no record for) are asked of the upstream servers through
//! `hickory-resolver`, and answered with the upstream's response code, so an
//! upstream NXDOMAIN stays NXDOMAIN. A failed or slow upstream is a
//! SERVFAIL within the configured bound, never a hang.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::ProtoErrorKind;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::xfer::Protocol;
use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, TokioResolver};
use tracing::debug;

/// A resolver over the configured upstreams, with its own small cache.
pub(crate) struct Forwarder {
    resolver: TokioResolver,
    timeout: Duration,
}

/// What upstream said about one question.
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: Vec<Record>,
    /// The upstream's SOA on negative answers.
    pub(crate) authority: Vec<Record>,
}

impl Forwarded {
    fn servfail() -> Self {
        Forwarded { rcode: ResponseCode::ServFail, answers: Vec::new(), authority: Vec::new() }
    }
}

impl Forwarder {
    /// A forwarder to `upstreams` (each over UDP, and TCP when an answer is
    /// truncated), or `None` when there are none. `timeout` bounds a whole
    /// forwarded query.
    pub(crate) fn new(upstreams: &[SocketAddr], timeout: Duration) -> Option<Forwarder> {
        if upstreams.is_empty() {
            return None;
        }
        let mut servers = NameServerConfigGroup::new();
        for &addr in upstreams {
            servers.push(NameServerConfig::new(addr, Protocol::Udp));
            servers.push(NameServerConfig::new(addr, Protocol::Tcp));
        }
        let mut options = ResolverOpts::default();
        // Two tries per query inside the overall bound.
        options.timeout = (timeout / 2).max(Duration::from_millis(50));
        options.attempts = 1;
        // A forwarder: no hosts file, no search list, keep CNAME chains.
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        options.preserve_intermediates = true;
        options.recursion_desired = true;
        options.edns0 = true;
        options.cache_size = 4096;
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let resolver = TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).with_options(options).build();
        Some(Forwarder { resolver, timeout })
    }

    /// Asks upstream for `name`/`qtype`.
    pub(crate) async fn forward(&self, name: Name, qtype: RecordType) -> Forwarded {
        let lookup = tokio::time::timeout(self.timeout, self.resolver.lookup(name.clone(), qtype)).await;
        match lookup {
            Err(_) => {
                debug!(%name, %qtype, "upstream timed out");
                Forwarded::servfail()
            }
            Ok(Ok(lookup)) => Forwarded { rcode: ResponseCode::NoError, answers: lookup.records().to_vec(), authority: Vec::new() },
            Ok(Err(error)) => negative(&name, qtype, error),
        }
    }
}

/// An upstream's negative answer as it was given, anything else SERVFAIL.
fn negative(name: &Name, qtype: RecordType, error: ResolveError) -> Forwarded {
    if let Some(ProtoErrorKind::NoRecordsFound { response_code, soa, .. }) = error.proto().map(|e| e.kind()) {
        let authority = soa.iter().map(|soa| soa.as_ref().clone().into_record_of_rdata()).collect();
        return Forwarded { rcode: *response_code, answers: Vec::new(), authority };
    }
    debug!(%name, %qtype, %error, "upstream failed");
    Forwarded::servfail()
}
