//! The probes against real servers on loopback: an HTTP server the test
//! writes (to see what the probe sends), `openssl s_server` for HTTPS, and
//! tonic's gRPC health server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};

use super::*;

#[path = "../../../../tests/support/ports.rs"]
mod ports;

const SECOND: Duration = Duration::from_secs(1);

/// Serves each path as the test says; records every request's head.
fn http_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        // Bounded: the tests make fewer than 64 requests.
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            record.lock().unwrap().push(head);
            let response = match path.as_str() {
                "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned(),
                "/fail" => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_owned(),
                "/here" => "HTTP/1.1 302 Found\r\nLocation: /fail\r\nContent-Length: 0\r\n\r\n".to_owned(),
                // TEST-NET-1: never contacted, the redirect is not followed.
                "/away" => "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/fail\r\nContent-Length: 0\r\n\r\n".to_owned(),
                _ => "HTTP/1.1 301 Moved Permanently\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_owned(),
            };
            let _ = stream.write_all(response.as_bytes());
            // Close as a server should: end our side, then drain until the
            // client closes, so no unread byte turns the close into a
            // reset that reaches the client before the response does.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(SECOND));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
    });
    (port, seen)
}

#[test]
fn http_probes_send_kubelets_headers_and_follow_only_local_redirects() {
    let (port, seen) = http_server();
    assert_eq!(http_get(false, "127.0.0.1", port, "/ok", &[], SECOND), Ok(()));
    let head = seen.lock().unwrap().last().unwrap().to_lowercase();
    assert!(head.contains("user-agent: kube-probe/1.33") && head.contains("accept: */*"), "{head}");

    let headers = [("Host".to_owned(), "example.test".to_owned()), ("X-Custom-Header".to_owned(), "Awesome".to_owned())];
    assert_eq!(http_get(false, "127.0.0.1", port, "/ok", &headers, SECOND), Ok(()));
    let head = seen.lock().unwrap().last().unwrap().to_lowercase();
    assert!(head.contains("host: example.test") && head.contains("x-custom-header: awesome"), "{head}");

    assert_eq!(http_get(false, "127.0.0.1", port, "/fail", &[], SECOND), Err(ProbeError::Failed("HTTP probe failed with statuscode: 500".into())));
    // A redirect on the host is followed (to the failing page); one off it is a pass.
    assert_eq!(http_get(false, "127.0.0.1", port, "/here", &[], SECOND), Err(ProbeError::Failed("HTTP probe failed with statuscode: 500".into())));
    assert_eq!(http_get(false, "127.0.0.1", port, "/away", &[], SECOND), Ok(()));
    let Err(ProbeError::Failed(looped)) = http_get(false, "127.0.0.1", port, "/loop", &[], SECOND) else { panic!("a redirect loop fails") };
    assert!(looped.ends_with("stopped after 10 redirects"), "{looped}");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Err(ProbeError::Failed(refused)) = http_get(false, "127.0.0.1", closed, "/", &[], SECOND) else { panic!("nothing listens") };
    assert!(refused.starts_with(&format!("Get \"http://127.0.0.1:{closed}/\"")), "{refused}");
    let Err(ProbeError::Failed(refused)) = tcp("127.0.0.1", closed, SECOND) else { panic!("nothing listens") };
    assert!(refused.starts_with(&format!("dial tcp 127.0.0.1:{closed}: ")), "{refused}");
    assert_eq!(tcp("127.0.0.1", port, SECOND), Ok(()));
}

/// `openssl s_server` with a self-signed certificate, killed on drop
/// (its certificate folder goes with it).
struct OpenSsl {
    child: Child,
    _certs: tempfile::TempDir,
}

impl Drop for OpenSsl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_probes_do_not_check_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=probe.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = ports::free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = OpenSsl { child, _certs: dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(true, "127.0.0.1", port, "/", &[], Duration::from_secs(5)), Ok(()));
    // The same port over plain HTTP is not a pass.
    assert!(http_get(false, "127.0.0.1", port, "/", &[], Duration::from_secs(5)).is_err());
    drop(server);
}

#[test]
fn grpc_probes_ask_the_health_service() {
    use tonic_health::ServingStatus;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let (reporter, service) = tonic_health::server::health_reporter();
            reporter.set_service_status("db", ServingStatus::NotServing).await;
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ready_tx.send(()).unwrap();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
        });
    });
    ready_rx.recv().unwrap();
    let timeout = Duration::from_secs(5);
    assert_eq!(grpc("127.0.0.1", port, "", timeout), Ok(()));
    assert_eq!(grpc("127.0.0.1", port, "db", timeout), Err(ProbeError::Failed("service unhealthy (responded with \"NOT_SERVING\")".into())));
    let Err(ProbeError::Failed(unknown)) = grpc("127.0.0.1", port, "cache", timeout) else { panic!("an unknown service fails") };
    assert!(unknown.starts_with("rpc error: code = NotFound"), "{unknown}");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Err(ProbeError::Failed(down)) = grpc("127.0.0.1", closed, "", SECOND) else { panic!("nothing listens") };
    assert_eq!(down, format!("timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s"));
}

#[test]
fn unresolvable_probes_fail_with_kubelets_words() {
    let error = ProbeError::Errored("strconv.Atoi: parsing \"metrics\": invalid syntax".into());
    assert_eq!(error.message("Readiness"), "Readiness probe errored and resulted in unknown state: strconv.Atoi: parsing \"metrics\": invalid syntax");
    assert_eq!(
        ProbeError::Failed("HTTP probe failed with statuscode: 500".into()).message("Liveness"),
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
}
