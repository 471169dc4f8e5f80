//! The answer cache of one UDP receive loop: the encoded answers it gave
//! from the current zone snapshot, keyed by the query's bytes after its
//! ID, so a repeated query is answered without parsing, looking up or
//! encoding it again.
//!
//! An answer from the zone is a pure function of the query message and
//! the snapshot (handler.rs neither randomizes nor looks at the sender), so
//! the same bytes get the same answer but for the ID, which is copied from
//! each query. The key is every byte after the ID: flags, question (with
//! its exact letter case, which the answer echoes), and the EDNS record
//! (payload size, DO bit), so queries that differ in any of them are
//! answered apart. Answers that needed an upstream are never cached.
//!
//! Owns: nothing but its map. Must not touch: the socket or the zone. It
//! is owned by one loop (one thread), so it takes no lock; it holds the
//! snapshot its answers came from and starts over when the loop serves
//! another, and when it is full.

use std::collections::HashMap;
use std::sync::Arc;

use crate::zone::Zone;

/// Answers kept per loop; past that the cache starts over (a flood of
/// distinct names costs one clear per this many queries).
pub(crate) const MAX_ANSWERS: usize = 2048;
/// Queries longer than this are answered without the cache (a question and
/// an EDNS record fit in far less).
const MAX_QUERY: usize = 512;
/// The DNS header's ID: the first two bytes of a message.
const ID: usize = 2;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Answers {
    /// The snapshot the answers came from (held, so it cannot be freed and
    /// another allocated at its address).
    zone: Option<Arc<Zone>>,
    by_query: HashMap<Box<[u8]>, Box<[u8]>>,
}

impl Answers {
    /// The answer to `query` from `zone`, if one was kept, with the query's
    /// ID.
    pub(crate) fn get(&mut self, zone: &Arc<Zone>, query: &[u8]) -> Option<Vec<u8>> {
        if query.len() <= ID || query.len() > MAX_QUERY {
            return None;
        }
        if !self.zone.as_ref().is_some_and(|kept| Arc::ptr_eq(kept, zone)) {
            self.by_query.clear();
            self.zone = Some(Arc::clone(zone));
            return None;
        }
        let kept = self.by_query.get(&query[ID..])?;
        let mut answer = kept.to_vec();
        answer[..ID].copy_from_slice(&query[..ID]);
        Some(answer)
    }

    /// Keeps `answer`, given to `query` from `zone` alone (no upstream).
    pub(crate) fn put(&mut self, zone: &Arc<Zone>, query: &[u8], answer: &[u8]) {
        if query.len() <= ID || query.len() > MAX_QUERY || answer.len() < ID {
            return;
        }
        if !self.zone.as_ref().is_some_and(|kept| Arc::ptr_eq(kept, zone)) {
            self.by_query.clear();
            self.zone = Some(Arc::clone(zone));
        }
        if self.by_query.len() >= MAX_ANSWERS {
            self.by_query.clear();
        }
        self.by_query.insert(query[ID..].into(), answer.into());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_query.len()
    }
}

#[cfg(test)]
mod tests {
    //! The cache against the loop's own answering (`answer_datagram`): a
    //! kept answer is byte for byte what answering again would give.

    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use serde_json::json;

    use super::*;
    use crate::udp::answer_datagram;

    fn zone(ip: &str) -> Arc<Zone> {
        let service = serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": ip}})).unwrap();
        Arc::new(Zone::build("cluster.local", &[service], &[], &[]).unwrap())
    }

    fn query(id: u16, name: &str, edns: bool) -> Vec<u8> {
        let mut message = Message::new();
        message.set_id(id).set_recursion_desired(true).add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if edns {
            message.set_edns(Edns::new());
        }
        message.to_vec().unwrap()
    }

    fn answer(zone: &Arc<Zone>, query: &[u8]) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(answer_datagram(Arc::clone(zone), query, "127.0.0.1:5353".parse().unwrap())).unwrap()
    }

    #[test]
    fn a_repeated_query_gets_the_answer_it_would_get_with_its_own_id() {
        let zone = zone("10.96.0.10");
        let mut answers = Answers::default();
        let first = query(1, "web.default.svc.cluster.local.", true);
        assert_eq!(answers.get(&zone, &first), None);
        answers.put(&zone, &first, &answer(&zone, &first));

        let again = query(0xbeef, "web.default.svc.cluster.local.", true);
        assert_eq!(answers.get(&zone, &again), Some(answer(&zone, &again)));
        assert_eq!(Message::from_vec(&answers.get(&zone, &again).unwrap()).unwrap().id(), 0xbeef);
    }

    #[test]
    fn queries_differing_in_case_or_edns_are_answered_apart() {
        let zone = zone("10.96.0.10");
        let mut answers = Answers::default();
        let lower = query(1, "web.default.svc.cluster.local.", true);
        answers.put(&zone, &lower, &answer(&zone, &lower));
        // DNS 0x20: the answer echoes the question's letters as sent.
        assert_eq!(answers.get(&zone, &query(2, "WeB.default.svc.cluster.local.", true)), None);
        assert_eq!(answers.get(&zone, &query(3, "web.default.svc.cluster.local.", false)), None);
    }

    #[test]
    fn a_new_snapshot_starts_over() {
        let (old, new) = (zone("10.96.0.10"), zone("10.96.0.11"));
        let mut answers = Answers::default();
        let asked = query(1, "web.default.svc.cluster.local.", true);
        answers.put(&old, &asked, &answer(&old, &asked));
        assert_eq!(answers.get(&new, &asked), None);
        assert_eq!(answers.len(), 0);
        answers.put(&new, &asked, &answer(&new, &asked));
        assert_eq!(answers.get(&new, &asked), Some(answer(&new, &asked)));
        assert_ne!(answer(&old, &asked), answer(&new, &asked));
    }

    #[test]
    fn the_cache_is_bounded_and_skips_what_is_not_a_query() {
        let zone = zone("10.96.0.10");
        let mut answers = Answers::default();
        for n in 0..=MAX_ANSWERS {
            let asked = query(1, &format!("n{n}.default.svc.cluster.local."), false);
            answers.put(&zone, &asked, &asked);
            assert!(answers.len() <= MAX_ANSWERS);
        }
        assert_eq!(answers.len(), 1, "full, it started over");
        answers.put(&zone, &[0x12], &[0x12]);
        assert_eq!(answers.get(&zone, &[0x12]), None);
        assert_eq!(answers.get(&zone, &vec![0; MAX_QUERY + 1]), None);
    }
}
