//! The UDP receive loop: one per socket, answering each query from the
//! snapshot in place, with `hickory-server`'s request parsing, its
//! `RequestHandler` (ours, `handler.rs`) and a `ResponseHandler` that sends
//! straight back on the socket.
//!
//! hickory's own `ServerFuture` spawns a task per UDP query and hands each
//! response to the socket through a channel; measured with dnsperf that was
//! about half of what this loop does (docs/benchmarks.md). Only queries
//! that must wait for upstream are spawned here, a bounded number at once.
//! TCP stays with `ServerFuture`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::handler::Handler;

/// Queries waiting for upstream at once, per socket; past that a query
/// that needs upstream is answered SERVFAIL at once.
const MAX_FORWARDS_IN_FLIGHT: usize = 1024;
/// The largest datagram read.
const RECEIVE_BUFFER: usize = 4096;

/// Answers queries on `socket` until `cancel` is cancelled.
pub(crate) async fn serve(socket: UdpSocket, handler: Arc<Handler>, cancel: CancellationToken) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0; RECEIVE_BUFFER];
    let mut forwards = JoinSet::new();
    loop {
        let (len, src) = tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(error) => {
                    // ICMP errors from earlier sends show up here; keep going.
                    debug!(%error, "udp receive failed");
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        while forwards.try_join_next().is_some() {}
        if src.port() == 0 {
            continue;
        }
        let bytes = &buffer[..len];
        let message = match MessageRequest::read(&mut BinDecoder::new(bytes)) {
            Ok(message) => message,
            Err(error) => {
                debug!(%error, %src, "malformed query");
                form_error(&socket, bytes, src).await;
                continue;
            }
        };
        if message.message_type() == MessageType::Response {
            continue;
        }
        let request = Request::new(message, src, Protocol::Udp);
        let response = UdpResponse { socket: Arc::clone(&socket), dst: src };
        let zone = handler.zone.load_full();
        if !handler.needs_upstream(&zone, &request) {
            handler.answer(&zone, &request, response).await;
        } else if forwards.len() < MAX_FORWARDS_IN_FLIGHT {
            let handler = Arc::clone(&handler);
            forwards.spawn(async move {
                handler.answer(&zone, &request, response).await;
            });
        } else {
            warn!(%src, "too many queries waiting for upstream");
            let mut header = Header::response_from_request(request.header());
            header.set_response_code(ResponseCode::ServFail);
            send_header(&socket, header, src).await;
        }
    }
}

/// Answers a message whose header parses but whose body does not with
/// FORMERR; drops anything shorter than a header.
async fn form_error(socket: &UdpSocket, bytes: &[u8], dst: SocketAddr) {
    let Ok(header) = Header::read(&mut BinDecoder::new(bytes)) else { return };
    if header.message_type() == MessageType::Response {
        return;
    }
    let mut response = Header::response_from_request(&header);
    response.set_response_code(ResponseCode::FormErr);
    send_header(socket, response, dst).await;
}

async fn send_header(socket: &UdpSocket, header: Header, dst: SocketAddr) {
    let mut buffer = Vec::with_capacity(12);
    if header.emit(&mut BinEncoder::new(&mut buffer)).is_ok() {
        let _ = socket.send_to(&buffer, dst).await;
    }
}

/// Sends one response back on the socket the query came in on.
#[derive(Clone)]
struct UdpResponse {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait]
impl ResponseHandler for UdpResponse {
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
        // The handler has already made the response fit the client's
        // limit (and set TC when it could not); this is the backstop.
        let max = response.get_edns().as_ref().map_or(512, |edns| edns.max_payload());
        let header = *response.header();
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(max);
        match response.destructive_emit(&mut encoder) {
            Ok(info) => {
                self.socket.send_to(&buffer, self.dst).await?;
                Ok(info)
            }
            Err(error) => {
                warn!(%error, "cannot encode a response; answering SERVFAIL");
                let mut failed = header;
                failed.set_response_code(ResponseCode::ServFail);
                send_header(&self.socket, failed, self.dst).await;
                Ok(failed.into())
            }
        }
    }
}
