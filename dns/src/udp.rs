//! The UDP receive loop: one per socket, answering each query from the
//! snapshot in place (or from its answer cache, `answers.rs`, when the
//! same query came before), with `hickory-server`'s request parsing, its
//! `RequestHandler` (ours, `handler.rs`) and a `ResponseHandler` that keeps
//! the encoded answer; the datagrams waiting are read with one `recvmmsg`
//! and the answers sent with one `sendmmsg`, as knotd does.
//!
//! hickory's own `ServerFuture` spawns a task per UDP query and hands each
//! response to the socket through a channel; measured with dnsperf that was
//! about half of what this loop does (docs/benchmarks.md). Only queries
//! that must wait for upstream are spawned here, a bounded number at once.
//! TCP stays with `ServerFuture`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use arc_swap::ArcSwap;

use crate::answers::Answers;
use crate::handler::Handler;
use crate::zone::Zone;

/// Queries waiting for upstream at once, per socket; past that a query
/// that needs upstream is answered SERVFAIL at once.
const MAX_FORWARDS_IN_FLIGHT: usize = 1024;
/// The largest datagram read.
const RECEIVE_BUFFER: usize = 4096;

/// Datagrams read with one `recvmmsg` and answered with one `sendmmsg`.
const BATCH: usize = 32;

/// Answers queries on `socket` until `cancel` is cancelled: as many as are
/// waiting read at once, those answered from the zone sent back at once,
/// as knotd does (two system calls per batch instead of two per query).
pub(crate) async fn serve(socket: UdpSocket, handler: Arc<Handler>, cancel: CancellationToken) {
    let socket = Arc::new(socket);
    let mut buffers = vec![[0u8; RECEIVE_BUFFER]; BATCH];
    let mut forwards = JoinSet::new();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut answers = Answers::default();
    loop {
        tokio::select! {
            ready = socket.readable() => if let Err(error) = ready {
                debug!(%error, "udp socket not readable");
                continue;
            },
            () = cancel.cancelled() => break,
        }
        let received = match socket.try_io(Interest::READABLE, || receive(socket.as_raw_fd(), &mut buffers)) {
            Ok(received) => received,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                // ICMP errors from earlier sends show up here; keep going.
                debug!(%error, "udp receive failed");
                continue;
            }
        };
        while forwards.try_join_next().is_some() {}
        let zone = handler.zone.load_full();
        for (index, len, src) in received {
            let Some(src) = src.filter(|src| src.port() != 0) else { continue };
            let bytes = &buffers[index][..len];
            if let Some(answer) = answers.get(&zone, bytes) {
                replies.push((answer, src));
                continue;
            }
            let request = match read(bytes, src) {
                Datagram::Query(request) => request,
                Datagram::Malformed(Some(refusal)) => {
                    replies.extend(header_bytes(refusal).map(|bytes| (bytes, src)));
                    continue;
                }
                Datagram::Malformed(None) | Datagram::Response => continue,
            };
            if !handler.needs_upstream(&zone, &request) {
                let answered = Answered::default();
                handler.answer(&zone, &request, answered.clone()).await;
                if let Some(answer) = answered.take() {
                    answers.put(&zone, bytes, &answer);
                    replies.push((answer, src));
                }
            } else if forwards.len() < MAX_FORWARDS_IN_FLIGHT {
                let (handler, zone, socket) = (Arc::clone(&handler), Arc::clone(&zone), Arc::clone(&socket));
                forwards.spawn(async move {
                    let answered = Answered::default();
                    handler.answer(&zone, &request, answered.clone()).await;
                    if let Some(bytes) = answered.take()
                        && let Err(error) = socket.send_to(&bytes, src).await
                    {
                        debug!(%error, dst = %src, "udp send failed");
                    }
                });
            } else {
                warn!(%src, "too many queries waiting for upstream");
                let mut header = Header::response_from_request(request.header());
                header.set_response_code(ResponseCode::ServFail);
                replies.extend(header_bytes(header).map(|bytes| (bytes, src)));
            }
        }
        send_all(&socket, &mut replies).await;
    }
}

/// Reads the datagrams waiting on `fd` into `buffers`, without waiting:
/// each one's buffer, length and sender, in order.
fn receive(fd: RawFd, buffers: &mut [[u8; RECEIVE_BUFFER]]) -> io::Result<Vec<(usize, usize, Option<SocketAddr>)>> {
    // Not kept across awaits: it holds raw pointers, so it is not `Send`.
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(buffers.len(), None);
    let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers.iter_mut().map(|buffer| [IoSliceMut::new(buffer)]).collect();
    let received = recvmmsg(fd, &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None).map_err(io::Error::from)?;
    Ok(received.enumerate().map(|(index, message)| (index, message.bytes, message.address.as_ref().and_then(socket_addr))).collect())
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Sends `replies` (emptying it): as many as the socket takes with one
/// `sendmmsg`, the rest one by one, waiting for the socket as needed.
async fn send_all(socket: &UdpSocket, replies: &mut Vec<(Vec<u8>, SocketAddr)>) {
    if replies.is_empty() {
        return;
    }
    let sent = socket
        .try_io(Interest::WRITABLE, || {
            let slices: Vec<[IoSlice<'_>; 1]> = replies.iter().map(|(bytes, _)| [IoSlice::new(bytes)]).collect();
            let addresses: Vec<Option<SockaddrStorage>> = replies.iter().map(|(_, dst)| Some(SockaddrStorage::from(*dst))).collect();
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(replies.len(), None);
            let sent = sendmmsg(socket.as_raw_fd(), &mut headers, &slices, &addresses, [], MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)?;
            Ok(sent.count())
        })
        .unwrap_or(0);
    for (bytes, dst) in replies.drain(..).skip(sent) {
        if let Err(error) = socket.send_to(&bytes, dst).await {
            debug!(%error, %dst, "udp send failed");
        }
    }
}

/// What one datagram is.
#[allow(clippy::large_enum_variant, reason = "made and taken apart at once, per query: a Box would be an allocation per query")]
enum Datagram {
    /// A query to answer.
    Query(Request),
    /// A message that does not parse: the FORMERR header to answer with
    /// when its header does, nothing when even that is short.
    Malformed(Option<Header>),
    /// A response (ours reflected, or someone's spoofed): never answered,
    /// so that two servers cannot be set answering each other.
    Response,
}

fn read(bytes: &[u8], src: SocketAddr) -> Datagram {
    let message = match MessageRequest::read(&mut BinDecoder::new(bytes)) {
        Ok(message) => message,
        Err(error) => {
            debug!(%error, %src, "malformed query");
            let Ok(header) = Header::read(&mut BinDecoder::new(bytes)) else { return Datagram::Malformed(None) };
            if header.message_type() == MessageType::Response {
                return Datagram::Response;
            }
            let mut refusal = Header::response_from_request(&header);
            refusal.set_response_code(ResponseCode::FormErr);
            return Datagram::Malformed(Some(refusal));
        }
    };
    if message.message_type() == MessageType::Response {
        return Datagram::Response;
    }
    Datagram::Query(Request::new(message, src, Protocol::Udp))
}

fn header_bytes(header: Header) -> Option<Vec<u8>> {
    let mut buffer = Vec::with_capacity(12);
    header.emit(&mut BinEncoder::new(&mut buffer)).ok()?;
    Some(buffer)
}

/// The answer the UDP loop sends to `bytes` from `src`, without a socket
/// or upstreams: the same reading, handler and encoding (the fuzz target's
/// way in; not an API).
#[doc(hidden)]
pub async fn answer_datagram(zone: Arc<Zone>, bytes: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let request = match read(bytes, src) {
        Datagram::Query(request) => request,
        Datagram::Malformed(refusal) => return refusal.and_then(header_bytes),
        Datagram::Response => return None,
    };
    let handler = Handler { zone: Arc::new(ArcSwap::new(Arc::clone(&zone))), forwarder: None };
    let answered = Answered::default();
    handler.answer(&zone, &request, answered.clone()).await;
    answered.take()
}

/// Keeps the response it is given, encoded (see [`answer_datagram`]).
#[derive(Clone, Default)]
struct Answered(Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl Answered {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

#[async_trait]
impl ResponseHandler for Answered {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> io::Result<ResponseInfo> {
        // Within the client's limit: the handler has already made the
        // response fit (and set TC when it could not); this is the
        // backstop. One that cannot be encoded becomes its header with
        // SERVFAIL.
        let max = response.get_edns().as_ref().map_or(512, |edns| edns.max_payload());
        let header = *response.header();
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(max);
        let (bytes, info) = match response.destructive_emit(&mut encoder) {
            Ok(info) => (buffer, info),
            Err(error) => {
                warn!(%error, "cannot encode a response; answering SERVFAIL");
                let mut failed = header;
                failed.set_response_code(ResponseCode::ServFail);
                (header_bytes(failed).unwrap_or_default(), failed.into())
            }
        };
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    use serde_json::json;

    use super::*;

    fn zone() -> Arc<Zone> {
        let service = serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.10"}})).unwrap();
        Arc::new(Zone::build("cluster.local", &[service], &[], &[]).unwrap())
    }

    fn ask(bytes: &[u8]) -> Option<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(answer_datagram(zone(), bytes, "127.0.0.1:5353".parse().unwrap()))
    }

    fn query(name: &str) -> Message {
        let mut message = Message::new();
        message.set_id(4242).set_recursion_desired(true).add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        message
    }

    #[test]
    fn a_query_is_answered_from_the_zone() {
        let answer = Message::from_vec(&ask(&query("web.default.svc.cluster.local.").to_vec().unwrap()).unwrap()).unwrap();
        assert_eq!(answer.id(), 4242);
        assert_eq!(answer.message_type(), MessageType::Response);
        assert!(answer.authoritative());
        assert_eq!(answer.answers()[0].data(), &RData::A("10.96.0.10".parse().unwrap()));
    }

    #[test]
    fn a_broken_body_gets_formerr_and_a_response_or_a_scrap_gets_nothing() {
        let mut bytes = query("web.default.svc.cluster.local.").to_vec().unwrap();
        bytes.truncate(20); // the header, and part of the question
        let refusal = Message::from_vec(&ask(&bytes).unwrap()).unwrap();
        assert_eq!((refusal.id(), refusal.response_code()), (4242, ResponseCode::FormErr));

        let mut reflected = query("web.default.svc.cluster.local.");
        reflected.set_message_type(MessageType::Response);
        assert_eq!(ask(&reflected.to_vec().unwrap()), None);
        assert_eq!(ask(&[0x12, 0x34, 0x01]), None);
    }
}
