//! The zone: an immutable snapshot of every record the cluster DNS answers
//! with authority, and the lookup that answers one question from it.
//!
//! A [`Zone`] is built by a pure function of Services, Endpoints and Pods
//! (`zone/build.rs`, no I/O, no clock) and never changes afterwards; the
//! server swaps whole snapshots. Every record is built once, at build time,
//! into a map keyed by the lowercased owner name, so answering is one hash
//! lookup that hands back slices of ready records: nothing is allocated on
//! the answer path.

mod build;
mod names;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write as _;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::ZoneError;

/// The TTL records carry until the server stamps its configured one.
pub const DEFAULT_TTL: u32 = 5;

/// An immutable snapshot of the cluster's DNS records.
///
/// Built with [`Zone::build`] from Services, Endpoints and Pods; handed to
/// the server with [`DnsHandle::set_zone`](crate::DnsHandle::set_zone).
/// Cheap to move, expensive to build (build it off the query path, as the
/// server never does).
#[derive(Clone, Debug)]
pub struct Zone {
    /// The cluster domain, lowercased and fully qualified.
    domain: LowerName,
    /// Every owned name: records, empty non-terminals (no records, but
    /// names below them exist) and the exact reverse names with PTRs.
    nodes: HashMap<LowerName, Node>,
    /// The cluster domain's SOA, for the authority section and SOA queries.
    soa: Record,
    /// SOAs for negative answers about owned reverse names.
    soa_v4: Record,
    soa_v6: Record,
    ttl: u32,
    skipped: Vec<String>,
}

/// The records of one owned name, each set ready to be sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub(crate) a: Vec<Record>,
    pub(crate) aaaa: Vec<Record>,
    pub(crate) srv: Vec<Record>,
    /// A and AAAA records of the SRV targets, for the additional section.
    pub(crate) srv_additional: Vec<Record>,
    pub(crate) ptr: Vec<Record>,
    pub(crate) cname: Option<Record>,
}

impl Node {
    fn records_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.a
            .iter_mut()
            .chain(self.aaaa.iter_mut())
            .chain(self.srv.iter_mut())
            .chain(self.srv_additional.iter_mut())
            .chain(self.ptr.iter_mut())
            .chain(self.cname.iter_mut())
    }

    fn records(&self) -> impl Iterator<Item = &Record> {
        self.a.iter().chain(self.aaaa.iter()).chain(self.srv.iter()).chain(self.ptr.iter()).chain(self.cname.iter())
    }
}

/// What the zone says about one question.
#[derive(Debug)]
pub(crate) enum Lookup<'z> {
    /// An authoritative answer from the snapshot.
    Local(Local<'z>),
    /// The name is not ours: ask upstream.
    Forward,
}

/// An authoritative answer: record sets borrowed from the snapshot.
#[derive(Debug)]
pub(crate) struct Local<'z> {
    /// `NoError` (answers, or NODATA when there are none) or `NXDomain`.
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: [&'z [Record]; 5],
    /// The SOA on negative answers, empty otherwise.
    pub(crate) authority: &'z [Record],
    pub(crate) additionals: &'z [Record],
    /// The target of a CNAME outside the cluster domain (an ExternalName
    /// service) that the answer should be completed with from upstream.
    pub(crate) chase: Option<&'z Name>,
}

impl<'z> Local<'z> {
    fn new(rcode: ResponseCode) -> Self {
        Local { rcode, answers: [&[]; 5], authority: &[], additionals: &[], chase: None }
    }

    /// The answer records, in order.
    pub(crate) fn answer_records(&self) -> impl Iterator<Item = &'z Record> + Clone + Send + 'z {
        let answers = self.answers;
        answers.into_iter().flatten()
    }

    /// How many answer records there are.
    pub(crate) fn answer_count(&self) -> usize {
        self.answers.iter().map(|set| set.len()).sum()
    }
}

impl Zone {
    /// An empty zone for `domain`: its apex and SOA, nothing else.
    pub fn empty(domain: &str) -> Result<Zone, ZoneError> {
        Zone::build(domain, &[], &[], &[])
    }

    /// The cluster domain, lowercased, without the trailing dot.
    pub fn domain(&self) -> String {
        let domain = self.domain.to_string();
        domain.strip_suffix('.').unwrap_or(&domain).to_owned()
    }

    /// The TTL every record carries.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// How many names the zone holds (owned names, empty non-terminals and
    /// reverse names).
    pub fn name_count(&self) -> usize {
        self.nodes.len()
    }

    /// What the build left out and why (an unparsable IP, a hostname that is
    /// not a DNS label), one line each, for the caller to log.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The same zone with every record's TTL (and the SOA's negative TTL)
    /// set to `ttl`.
    pub fn with_ttl(mut self, ttl: u32) -> Zone {
        if ttl == self.ttl {
            return self;
        }
        self.ttl = ttl;
        for record in self.nodes.values_mut().flat_map(Node::records_mut) {
            record.set_ttl(ttl);
        }
        for soa in [&mut self.soa, &mut self.soa_v4, &mut self.soa_v6] {
            set_soa_times(soa, ttl, None);
        }
        self
    }

    /// The same zone with `serial` in its SOAs.
    pub fn with_serial(mut self, serial: u32) -> Zone {
        let ttl = self.ttl;
        for soa in [&mut self.soa, &mut self.soa_v4, &mut self.soa_v6] {
            set_soa_times(soa, ttl, Some(serial));
        }
        self
    }

    /// The records under the cluster domain in RFC 1035 master-file syntax,
    /// SOA first, names sorted: what another DNS server needs to serve the
    /// same zone (the benchmark loads it into knot). Reverse names are not
    /// included, as they belong to other zones.
    pub fn zone_file(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "$ORIGIN {}", self.domain);
        let _ = writeln!(out, "{}", self.soa);
        let mut names: Vec<&LowerName> = self.nodes.keys().filter(|name| self.domain.zone_of(name)).collect();
        names.sort();
        for name in names {
            for record in self.nodes[name].records() {
                let _ = writeln!(out, "{record}");
            }
        }
        out
    }

    /// Answers one question (`name` as the request carries it, already
    /// lowercased) from the snapshot, or says it is not ours.
    pub(crate) fn lookup(&self, name: &LowerName, qtype: RecordType) -> Lookup<'_> {
        let Some(node) = self.nodes.get(name) else {
            if self.domain.zone_of(name) {
                let mut local = Local::new(ResponseCode::NXDomain);
                local.authority = std::slice::from_ref(&self.soa);
                return Lookup::Local(local);
            }
            return Lookup::Forward;
        };
        let mut local = Local::new(ResponseCode::NoError);
        if let Some(cname) = node.cname.as_ref().filter(|_| qtype != RecordType::CNAME) {
            self.follow_cname(cname, qtype, &mut local);
        } else {
            match qtype {
                RecordType::A => local.answers[0] = &node.a,
                RecordType::AAAA => local.answers[0] = &node.aaaa,
                RecordType::SRV => {
                    local.answers[0] = &node.srv;
                    local.additionals = &node.srv_additional;
                }
                RecordType::PTR => local.answers[0] = &node.ptr,
                RecordType::CNAME => local.answers[0] = node.cname.as_slice(),
                RecordType::SOA if name == &self.domain => {
                    local.answers[0] = std::slice::from_ref(&self.soa);
                }
                RecordType::ANY => {
                    local.answers = [&node.a, &node.aaaa, &node.srv, &node.ptr, node.cname.as_slice()];
                    if name == &self.domain {
                        local.answers[4] = std::slice::from_ref(&self.soa);
                    }
                }
                _ => {}
            }
        }
        if local.answer_count() == 0 {
            local.authority = std::slice::from_ref(self.soa_for(name));
        }
        Lookup::Local(local)
    }

    /// Answers with a CNAME, and with the target's records when the target
    /// is in the snapshot; a target elsewhere is left for upstream.
    fn follow_cname<'z>(&'z self, cname: &'z Record, qtype: RecordType, local: &mut Local<'z>) {
        local.answers[0] = std::slice::from_ref(cname);
        let RData::CNAME(target) = cname.data() else { return };
        let target_key = LowerName::new(&target.0);
        if !self.domain.zone_of(&target_key) {
            local.chase = Some(&target.0);
            return;
        }
        // One in-zone step; a chain of ExternalName services is not followed.
        if let Some(node) = self.nodes.get(&target_key) {
            match qtype {
                RecordType::A => local.answers[1] = &node.a,
                RecordType::AAAA => local.answers[1] = &node.aaaa,
                RecordType::SRV => local.answers[1] = &node.srv,
                RecordType::ANY => {
                    local.answers[1] = &node.a;
                    local.answers[2] = &node.aaaa;
                }
                _ => {}
            }
        }
    }

    /// The SOA of the zone `name` belongs to.
    fn soa_for(&self, name: &LowerName) -> &Record {
        if self.domain.zone_of(name) {
            &self.soa
        } else if names::in_addr_arpa().zone_of(name) {
            &self.soa_v4
        } else {
            &self.soa_v6
        }
    }
}

/// Sets an SOA record's TTL and negative TTL (and its serial if given).
fn set_soa_times(record: &mut Record, ttl: u32, serial: Option<u32>) {
    record.set_ttl(ttl);
    if let RData::SOA(soa) = record.data() {
        let soa = SOA::new(soa.mname().clone(), soa.rname().clone(), serial.unwrap_or(soa.serial()), soa.refresh(), soa.retry(), soa.expire(), ttl);
        *record.data_mut() = RData::SOA(soa);
    }
}
