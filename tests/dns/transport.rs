//! UDP and TCP, truncation and EDNS: oversized UDP answers set TC (at 512
//! bytes without EDNS, at the offered size up to 1232 with it), TCP carries
//! them whole, and EDNS is answered in kind.

use hickory_client::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_client::proto::rr::RecordType;

use crate::support::{Dig, TestClient, addr, cluster, name, raw_udp, raw_udp_message, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_served_over_tcp_too() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::tcp(addr(&dns)).await;
    for (name, qtype, count) in [
        ("web.default.svc.cluster.local.", RecordType::A, 1),
        ("_web._tcp.nginx.default.svc.cluster.local.", RecordType::SRV, 2),
        ("huge.default.svc.cluster.local.", RecordType::A, 100),
    ] {
        let response = client.query(name, qtype).await;
        assert_eq!(response.response_code(), ResponseCode::NoError);
        assert!(response.header().authoritative() && !response.header().truncated());
        assert_eq!(response.answers().len(), count, "{name}");
    }
    let dig = Dig::run(addr(&dns), &["+tcp", "huge.default.svc.cluster.local"]).await;
    assert_eq!(dig.section("ANSWER").len(), 100);
    assert!(dig.output.contains("(TCP)"), "{}", dig.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_udp_answers_are_truncated() {
    let dns = start(cluster(), Vec::new());
    // 40 addresses: about 700 bytes. Too big without EDNS...
    let (response, size) = raw_udp(addr(&dns), "big.default.svc.cluster.local.", RecordType::A, None).await;
    assert!(response.truncated() && response.answers().is_empty() && size <= 512, "{size} bytes");
    assert!(response.extensions().as_ref().is_none());
    // ... and sent whole to a client offering 1232.
    let (response, size) = raw_udp(addr(&dns), "big.default.svc.cluster.local.", RecordType::A, Some(1232)).await;
    assert!(!response.truncated() && response.answers().len() == 40, "{size} bytes");
    assert_eq!(response.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
    // 100 addresses do not fit even there; a client offering more still
    // gets at most 1232 bytes.
    let (response, size) = raw_udp(addr(&dns), "huge.default.svc.cluster.local.", RecordType::A, Some(4096)).await;
    assert!(response.truncated() && size <= 1232, "{size} bytes");

    // dig sees TC and asks again over TCP.
    let dig = Dig::run(addr(&dns), &["+noedns", "big.default.svc.cluster.local"]).await;
    assert!(dig.output.contains("Truncated, retrying in TCP mode"), "{}", dig.output);
    assert_eq!(dig.section("ANSWER").len(), 40);
    // With +ignore it keeps the truncated UDP answer.
    let dig = Dig::run(addr(&dns), &["+noedns", "+ignore", "big.default.svc.cluster.local"]).await;
    assert!(dig.flags().contains(&"tc"), "{}", dig.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_is_answered_in_kind() {
    let dns = start(cluster(), Vec::new());
    let (response, _) = raw_udp(addr(&dns), "web.default.svc.cluster.local.", RecordType::A, Some(4096)).await;
    let edns = response.extensions().as_ref().expect("an OPT record in the response");
    assert_eq!((edns.version(), edns.max_payload()), (0, 1232));
    let (response, _) = raw_udp(addr(&dns), "web.default.svc.cluster.local.", RecordType::A, None).await;
    assert!(response.extensions().as_ref().is_none());
    assert_eq!(response.answers().len(), 1);

    // An EDNS version we do not speak.
    let mut message = Message::new();
    message.set_id(7).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
    message.add_query(Query::query(name("web.default.svc.cluster.local."), RecordType::A));
    let mut edns = Edns::new();
    edns.set_version(1);
    message.set_edns(edns);
    let (response, _) = raw_udp_message(addr(&dns), &message.to_vec().unwrap()).await;
    // BADVERS is 16, which hickory decodes under its other name, BADSIG.
    assert_eq!(u16::from(response.response_code()), u16::from(ResponseCode::BADVERS));
    assert!(response.answers().is_empty());

    let dig = Dig::run(addr(&dns), &["+bufsize=1400", "web.default.svc.cluster.local"]).await;
    assert!(dig.output.contains("EDNS: version: 0, flags:; udp: 1232"), "{}", dig.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unsupported_requests_get_an_error_not_silence() {
    let dns = start(cluster(), Vec::new());
    // Two questions in one message.
    let mut message = Message::new();
    message.set_id(8).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
    message.add_query(Query::query(name("web.default.svc.cluster.local."), RecordType::A));
    message.add_query(Query::query(name("dual.default.svc.cluster.local."), RecordType::A));
    let (response, _) = raw_udp_message(addr(&dns), &message.to_vec().unwrap()).await;
    assert_eq!(response.response_code(), ResponseCode::FormErr);
    // A NOTIFY.
    let mut message = Message::new();
    message.set_id(9).set_message_type(MessageType::Query).set_op_code(OpCode::Notify);
    message.add_query(Query::query(name("cluster.local."), RecordType::SOA));
    let (response, _) = raw_udp_message(addr(&dns), &message.to_vec().unwrap()).await;
    assert_eq!(response.response_code(), ResponseCode::NotImp);
    // A header that promises a question the message does not hold.
    let header = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let (response, _) = raw_udp_message(addr(&dns), &header).await;
    assert_eq!((response.id(), response.response_code()), (0x1234, ResponseCode::FormErr));
    // The server still answers afterwards.
    let mut client = TestClient::udp(addr(&dns)).await;
    assert_eq!(client.query("web.default.svc.cluster.local.", RecordType::A).await.answers().len(), 1);
}
