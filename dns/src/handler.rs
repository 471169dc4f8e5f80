//! The request handler: answers one parsed request from the current zone
//! snapshot, or forwards it, and sends the response with the right flags
//! (AA on authoritative answers, RD echoed, RA when upstreams exist), EDNS
//! and truncation.
//!
//! It is a `hickory-server` [`RequestHandler`] written over the snapshot
//! rather than hickory's generic `Catalog` and `Authority`: one hash lookup,
//! record sets borrowed from the snapshot, no copy of a record.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hickory_proto::op::{Edns, Header, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_proto::xfer::Protocol;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use tracing::debug;

use crate::forward::Forwarder;
use crate::zone::{Lookup, Zone};

/// The largest UDP response sent to an EDNS client, whatever size it
/// offers: the 2020 DNS flag day's 1232 bytes, which no path fragments.
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;
/// The UDP limit for clients without EDNS (RFC 1035).
const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// Answers requests from the zone the server currently holds.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) zone: Arc<ArcSwap<Zone>>,
    pub(crate) forwarder: Option<Arc<Forwarder>>,
}

impl Handler {
    /// Whether answering `request` from `zone` waits for upstream (a
    /// forwarded name, or an ExternalName target to complete); every other
    /// answer is ready without waiting.
    pub(crate) fn needs_upstream(&self, zone: &Zone, request: &Request) -> bool {
        let (Some(_), [query]) = (&self.forwarder, request.queries()) else { return false };
        match zone.lookup(query.name(), query.query_type()) {
            Lookup::Forward => true,
            Lookup::Local(local) => local.chase.is_some() && query.query_type() != RecordType::CNAME,
        }
    }

    /// Answers `request` from the snapshot `zone` (the one the caller
    /// decided with, so that a swap in between cannot change the decision).
    pub(crate) async fn answer<R: ResponseHandler>(&self, zone: &Zone, request: &Request, response_handle: R) -> ResponseInfo {
        let info = self.respond_to(zone, request, response_handle).await;
        count(info.response_code());
        info
    }

    async fn respond_to<R: ResponseHandler>(&self, zone: &Zone, request: &Request, mut response_handle: R) -> ResponseInfo {
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(self.forwarder.is_some());
        let mut limit = (request.protocol() == Protocol::Udp).then_some(CLASSIC_UDP_PAYLOAD);
        let edns = request.edns().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_version(0);
            ours.set_max_payload(theirs.max_payload().clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD));
            ours
        });
        let builder = || {
            let mut builder = MessageResponseBuilder::from_message_request(request);
            if let Some(edns) = &edns {
                builder.edns(edns.clone());
            }
            builder
        };
        if let (Some(ours), Some(limit)) = (&edns, limit.as_mut()) {
            *limit = ours.max_payload();
        }

        let refuse = |code: ResponseCode| {
            let mut header = header;
            header.set_response_code(code);
            header
        };
        if request.edns().is_some_and(|edns| edns.version() > 0) {
            return send(&mut response_handle, builder().build_no_records(refuse(ResponseCode::BADVERS))).await;
        }
        if request.op_code() != OpCode::Query {
            return send(&mut response_handle, builder().build_no_records(refuse(ResponseCode::NotImp))).await;
        }
        let Ok(info) = request.request_info() else {
            return send(&mut response_handle, builder().build_no_records(refuse(ResponseCode::FormErr))).await;
        };
        let query = info.query;
        if query.query_class() != DNSClass::IN {
            return send(&mut response_handle, builder().build_no_records(refuse(ResponseCode::Refused))).await;
        }

        match zone.lookup(query.name(), query.query_type()) {
            Lookup::Local(local) => {
                header.set_authoritative(true);
                header.set_response_code(local.rcode);
                // An ExternalName's target, completed from upstream.
                let chased = match (local.chase, &self.forwarder) {
                    (Some(target), Some(forwarder)) if query.query_type() != RecordType::CNAME => {
                        let forwarded = forwarder.forward(target.clone(), query.query_type()).await;
                        forwarded.answers
                    }
                    _ => Vec::new(),
                };
                let answers = local.answer_records().chain(chased.iter());
                let sections = Sections { answers, authority: local.authority.iter(), additionals: local.additionals.iter() };
                respond(&mut response_handle, builder, header, sections, limit).await
            }
            Lookup::Forward => {
                let Some(forwarder) = &self.forwarder else {
                    return send(&mut response_handle, builder().build_no_records(refuse(ResponseCode::Refused))).await;
                };
                let name = Name::from(query.name());
                let forwarded = forwarder.forward(name, query.query_type()).await;
                header.set_response_code(forwarded.rcode);
                let sections = Sections { answers: forwarded.answers.iter(), authority: forwarded.authority.iter(), additionals: [].iter() };
                respond(&mut response_handle, builder, header, sections, limit).await
            }
        }
    }
}

/// Counts a response by its code, with CoreDNS's label values.
fn count(code: ResponseCode) {
    let rcode = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    };
    driftless_telemetry::metrics().dns_responses.get_or_create(&driftless_telemetry::RcodeLabel { rcode }).inc();
}

#[async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        let zone = self.zone.load_full();
        self.answer(&zone, request, response_handle).await
    }
}

/// The three record sections of a response, as iterators that can be run
/// twice (once to measure, once to send).
struct Sections<A, N, D> {
    answers: A,
    authority: N,
    additionals: D,
}

/// Sends the sections, or, over UDP, an empty truncated response (TC) when
/// they do not fit the client's limit, so that it asks again over TCP.
async fn respond<'a, 'q, R, B, A, N, D>(
    response_handle: &mut R,
    builder: B,
    mut header: Header,
    sections: Sections<A, N, D>,
    limit: Option<u16>,
) -> ResponseInfo
where
    R: ResponseHandler,
    B: Fn() -> MessageResponseBuilder<'q>,
    A: Iterator<Item = &'a Record> + Clone + Send + 'a,
    N: Iterator<Item = &'a Record> + Clone + Send + 'a,
    D: Iterator<Item = &'a Record> + Clone + Send + 'a,
{
    if let Some(limit) = limit
        && !fits(&builder, header, &sections, limit)
    {
        header.set_truncated(true);
        return send(response_handle, builder().build_no_records(header)).await;
    }
    let Sections { answers, authority, additionals } = sections;
    send(response_handle, builder().build(header, answers, [].iter(), authority, additionals)).await
}

/// Whether the response fits in `limit` bytes: certainly when an upper
/// bound of its size (no name compression) does, otherwise by encoding it.
fn fits<'a, 'q, B, A, N, D>(builder: &B, header: Header, sections: &Sections<A, N, D>, limit: u16) -> bool
where
    B: Fn() -> MessageResponseBuilder<'q>,
    A: Iterator<Item = &'a Record> + Clone + Send + 'a,
    N: Iterator<Item = &'a Record> + Clone + Send + 'a,
    D: Iterator<Item = &'a Record> + Clone + Send + 'a,
{
    // Header, question (at most a 255-byte name), OPT.
    let mut bound = Some(12 + 259 + 11);
    let all = sections.answers.clone().chain(sections.authority.clone()).chain(sections.additionals.clone());
    for record in all {
        bound = bound.zip(record_bound(record)).map(|(sum, len)| sum + len);
    }
    if bound.is_some_and(|bound| bound <= usize::from(limit)) {
        return true;
    }
    let mut buffer = Vec::with_capacity(usize::from(limit));
    let mut encoder = BinEncoder::new(&mut buffer);
    encoder.set_max_size(limit);
    let response = builder().build(header, sections.answers.clone(), [].iter(), sections.authority.clone(), sections.additionals.clone());
    response.destructive_emit(&mut encoder).is_ok_and(|info| !info.truncated())
}

/// An upper bound of one record's encoded size, for the record kinds the
/// zone holds; `None` for others.
fn record_bound(record: &Record) -> Option<usize> {
    let name = |name: &Name| name.len() + 1;
    let rdata = match record.data() {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::SRV(srv) => 6 + name(srv.target()),
        RData::PTR(ptr) => name(&ptr.0),
        RData::CNAME(cname) => name(&cname.0),
        RData::SOA(soa) => 20 + name(soa.mname()) + name(soa.rname()),
        _ => return None,
    };
    Some(name(record.name()) + 10 + rdata)
}

async fn send<'a, R: ResponseHandler>(
    response_handle: &mut R,
    response: hickory_server::authority::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let header = *response.header();
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            debug!(%error, "cannot send a response");
            let mut failed = header;
            failed.set_response_code(ResponseCode::ServFail);
            failed.into()
        }
    }
}
