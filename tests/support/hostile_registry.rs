//! A registry that misbehaves on purpose, shared by the test binaries. It
//! speaks the distribution API's pull side (`GET /v2/`, manifests, blobs;
//! the shapes the OCI distribution specification documents) over plain
//! HTTP on 127.0.0.1, and serves OCI image layouts by repository, each
//! with one fault, so a test sees what a broken or malicious registry does
//! to the node. Every endless answer is bounded: it stops at 512 MiB, after
//! 60 s, or when the client hangs up.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What a repository's answers get wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code, reason = "each test binary uses its part of this file")]
pub(crate) enum Fault {
    /// Nothing: the image as its layout holds it.
    None,
    /// The layer blob's bytes are changed (same length).
    CorruptLayer,
    /// The layer blob never ends.
    EndlessLayer,
    /// The manifest never ends.
    EndlessManifest,
    /// The manifest's `Docker-Content-Digest` names other content.
    WrongDigestHeader,
    /// The manifest names its layer `sha256:../../../<path>`.
    TraversalDigest,
}

const ENDLESS_CAP: u64 = 512 << 20;
const ENDLESS_TIME: Duration = Duration::from_secs(60);

struct Repository {
    name: String,
    layout: PathBuf,
    fault: Fault,
}

/// The registry; stopped when dropped.
pub(crate) struct HostileRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileRegistry {
    /// Serves each `(repository, layout, fault)`: the layout's first image
    /// under any tag or digest of that repository.
    pub(crate) fn start(repositories: &[(&str, &Path, Fault)]) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let repositories: Arc<Vec<Repository>> = Arc::new(
            repositories.iter().map(|(name, layout, fault)| Repository { name: (*name).to_owned(), layout: layout.to_path_buf(), fault: *fault }).collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let repositories = repositories.clone();
                        let stopping = stopping.clone();
                        std::thread::spawn(move || serve(stream, &repositories, &stopping));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                    Err(_) => return,
                }
            }
        });
        HostileRegistry { port, stop, thread: Some(thread) }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The layout's first manifest, as this repository's fault shapes it.
fn manifest(repository: &Repository) -> Vec<u8> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(repository.layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let bytes = std::fs::read(repository.layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    if repository.fault != Fault::TraversalDigest {
        return bytes;
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["layers"][0]["digest"] = "sha256:../../../../tmp/driftless-registry-escape".into();
    serde_json::to_vec(&manifest).unwrap()
}

fn layer_digest(repository: &Repository) -> String {
    let manifest: serde_json::Value = serde_json::from_slice(&manifest(repository)).unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

fn serve(stream: TcpStream, repositories: &[Repository], stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Headers are read and ignored: this registry authorizes everyone.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !answer(&mut out, method, path, repositories, stop) {
            return;
        }
    }
}

/// Answers one request; false when the connection must close.
fn answer(out: &mut TcpStream, method: &str, path: &str, repositories: &[Repository], stop: &AtomicBool) -> bool {
    let respond = |out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]| {
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).is_ok() && (method == "HEAD" || out.write_all(body).is_ok())
    };
    if path == "/v2/" || path == "/v2" {
        return respond(out, "200 OK", &[("Docker-Distribution-API-Version", "registry/2.0".into())], b"{}");
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return respond(out, "404 Not Found", &[], b"") };
    let repository = repositories.iter().find(|r| rest.starts_with(&format!("{}/", r.name)));
    let Some(repository) = repository else {
        return respond(out, "404 Not Found", &[], br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#);
    };
    let rest = &rest[repository.name.len() + 1..];
    if rest.starts_with("manifests/") {
        if repository.fault == Fault::EndlessManifest {
            endless(out, "application/vnd.oci.image.manifest.v1+json", b"{\"schemaVersion\":2,\"layers\":[", b"{\"a\":1},", stop);
            return false;
        }
        let body = manifest(repository);
        let digest = if repository.fault == Fault::WrongDigestHeader { digest_of(b"other content") } else { digest_of(&body) };
        let headers = [("Content-Type", "application/vnd.oci.image.manifest.v1+json".to_owned()), ("Docker-Content-Digest", digest)];
        return respond(out, "200 OK", &headers, &body);
    }
    if let Some(digest) = rest.strip_prefix("blobs/") {
        let is_layer = digest == layer_digest(repository);
        if is_layer && repository.fault == Fault::EndlessLayer {
            endless(out, "application/octet-stream", b"", &[0u8; 64 << 10], stop);
            return false;
        }
        let Some(hex) = digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) else {
            return respond(out, "404 Not Found", &[], b"");
        };
        let Ok(mut body) = std::fs::read(repository.layout.join("blobs/sha256").join(hex)) else {
            return respond(out, "404 Not Found", &[], br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#);
        };
        if is_layer && repository.fault == Fault::CorruptLayer {
            let middle = body.len() / 2;
            body[middle] ^= 0xff;
        }
        return respond(out, "200 OK", &[("Content-Type", "application/octet-stream".into()), ("Docker-Content-Digest", digest.to_owned())], &body);
    }
    respond(out, "404 Not Found", &[], b"")
}

/// An answer with no length that repeats `chunk` until the client hangs
/// up, the cap, the deadline or the registry's stop.
fn endless(out: &mut TcpStream, content_type: &str, start: &[u8], chunk: &[u8], stop: &AtomicBool) {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
    if out.write_all(head.as_bytes()).is_err() || out.write_all(start).is_err() {
        return;
    }
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < ENDLESS_CAP && started.elapsed() < ENDLESS_TIME && !stop.load(Ordering::SeqCst) {
        if out.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}
