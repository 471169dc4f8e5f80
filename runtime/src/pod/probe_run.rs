//! Running one probe against a running container, as kubelet's prober
//! runs it: exec, TCP, HTTP(S) GET with its headers, host and redirects,
//! and gRPC health checks; a failure carries kubelet's words for the
//! `Unhealthy` event.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ProbeAction;
use crate::Layout;

/// The most redirects kubelet follows.
const MAX_REDIRECTS: usize = 10;
/// kubelet's probe User-Agent (for this Kubernetes version).
const USER_AGENT: &str = "kube-probe/1.33";
/// How much of an exec probe's output is kept, as kubelet keeps 10 KiB.
const MAX_OUTPUT: usize = 10 * 1024;

/// Why a probe did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProbeError {
    /// It ran and failed (kubelet: "<Kind> probe failed: ...").
    Failed(String),
    /// It could not run (kubelet: "<Kind> probe errored and resulted in
    /// unknown state: ...").
    Errored(String),
}

impl ProbeError {
    /// The event message for a probe of `kind` (`Readiness`, `Liveness`,
    /// `Startup`).
    pub(crate) fn message(&self, kind: &str) -> String {
        match self {
            ProbeError::Failed(why) => format!("{kind} probe failed: {why}"),
            ProbeError::Errored(why) => format!("{kind} probe errored and resulted in unknown state: {why}"),
        }
    }
}

/// Runs `action` against container `id` (pod address `ip`) within
/// `timeout`; a timeout is a failure, as in Kubernetes.
pub(crate) fn run(action: &ProbeAction, layout: &Layout, id: &str, ip: Option<IpAddr>, timeout: Duration) -> Result<(), ProbeError> {
    let address = |host: &Option<String>| -> Result<String, ProbeError> {
        match (host, ip) {
            (Some(host), _) => Ok(host.clone()),
            (None, Some(ip)) => Ok(ip.to_string()),
            (None, None) => Err(ProbeError::Errored("the pod has no address yet".into())),
        }
    };
    match action {
        ProbeAction::Exec(args) => exec(layout, id, args, timeout),
        ProbeAction::TcpSocket { host, port } => tcp(&address(host)?, *port, timeout),
        ProbeAction::HttpGet { https, host, port, path, headers } => http_get(*https, &address(host)?, *port, path, headers, timeout),
        ProbeAction::Grpc { port, service } => grpc(&address(&None)?, *port, service, timeout),
        ProbeAction::Unresolvable(error) => Err(ProbeError::Errored(error.clone())),
    }
}

fn exec(layout: &Layout, id: &str, args: &[String], timeout: Duration) -> Result<(), ProbeError> {
    let mut child = layout
        .exec(id, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ProbeError::Errored(format!("exec: {e}")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProbeError::Failed(format!("command {args:?} timed out")));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut output = Vec::new();
    for pipe in [child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>), child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>)].into_iter().flatten() {
        let _ = pipe.take(MAX_OUTPUT as u64).read_to_end(&mut output);
    }
    output.truncate(MAX_OUTPUT);
    let text = String::from_utf8_lossy(&output).trim().to_owned();
    Err(ProbeError::Failed(if text.is_empty() { format!("command {args:?} exited with {}", status.code().unwrap_or(-1)) } else { text }))
}

fn socket_address(host: &str, port: u16) -> Result<SocketAddr, ProbeError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => {
            (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| ProbeError::Failed(format!("dial tcp: lookup {host}: no such host")))
        }
    }
}

fn tcp(host: &str, port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let addr = socket_address(host, port)?;
    TcpStream::connect_timeout(&addr, timeout).map(|_| ()).map_err(|e| ProbeError::Failed(format!("dial tcp {addr}: {e}")))
}

/// `host:port` as a URL authority (IPv6 addresses bracketed).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A GET whose status decides the probe: 200-399 passes, as in kubelet.
/// Redirects to the same host are followed (up to ten); one to another host
/// is not, and passes (kubelet's `followNonLocalRedirects=false`).
fn http_get(https: bool, host: &str, port: u16, path: &str, headers: &[(String, String)], timeout: Duration) -> Result<(), ProbeError> {
    let scheme = if https { "https" } else { "http" };
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .disable_verification(true)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).max_redirects(0).tls_config(tls).build().into();
    let origin = authority(host, port);
    let mut url = format!("{scheme}://{origin}{path}");
    for _ in 0..=MAX_REDIRECTS {
        let mut request = agent.get(&url);
        let named = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if !named("user-agent") {
            request = request.header("User-Agent", USER_AGENT);
        }
        if !named("accept") {
            request = request.header("Accept", "*/*");
        }
        let response = request.call().map_err(|e| ProbeError::Failed(format!("Get {url:?}: {e}")))?;
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
        match (status, location) {
            (300..=399, Some(location)) => match resolve(&url, &location) {
                Some((next, next_origin)) if next_origin == origin => url = next,
                // Off the host: not followed, and a pass.
                _ => return Ok(()),
            },
            (200..=399, _) => return Ok(()),
            _ => return Err(ProbeError::Failed(format!("HTTP probe failed with statuscode: {status}"))),
        }
    }
    Err(ProbeError::Failed(format!("Get {url:?}: stopped after {MAX_REDIRECTS} redirects")))
}

/// A redirect's target, resolved against `base`, and its authority.
fn resolve(base: &str, location: &str) -> Option<(String, String)> {
    let (scheme, rest) = base.split_once("://")?;
    let origin = rest.split('/').next()?;
    let absolute = if location.contains("://") {
        location.to_owned()
    } else if let Some(path) = location.strip_prefix('/') {
        format!("{scheme}://{origin}/{path}")
    } else {
        let path = &rest[origin.len()..];
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{origin}{dir}/{location}")
    };
    let next_origin = absolute.split_once("://")?.1.split('/').next()?.to_owned();
    // A URL without a port has the scheme's.
    let with_port = if next_origin.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        next_origin
    } else {
        format!("{next_origin}:{}", if absolute.starts_with("https") { 443 } else { 80 })
    };
    Some((absolute, with_port))
}

/// The gRPC health checking protocol's `Check`, as kubelet's gRPC prober
/// sends it (plain text, no TLS).
fn grpc(host: &str, port: u16, service: &str, timeout: Duration) -> Result<(), ProbeError> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| ProbeError::Errored(e.to_string()))?;
    let origin = authority(host, port);
    runtime.block_on(async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{origin}"))
            .map_err(|e| ProbeError::Errored(e.to_string()))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => channel,
            _ => return Err(ProbeError::Failed(format!("timeout: failed to connect service {origin:?} within {timeout:?}"))),
        };
        let request = HealthCheckRequest { service: service.to_owned() };
        match tokio::time::timeout(timeout, HealthClient::new(channel).check(request)).await {
            Err(_) => Err(ProbeError::Failed(format!("timeout: health rpc did not complete within {timeout:?}"))),
            Ok(Ok(response)) => {
                let status = response.into_inner().status;
                if status == ServingStatus::Serving as i32 {
                    Ok(())
                } else {
                    let name = ServingStatus::try_from(status).map_or_else(|_| status.to_string(), |s| s.as_str_name().to_owned());
                    Err(ProbeError::Failed(format!("service unhealthy (responded with {name:?})")))
                }
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                Err(ProbeError::Failed(format!("this server does not implement the grpc health protocol (grpc.health.v1.Health): {}", status.message())))
            }
            Ok(Err(status)) => Err(ProbeError::Failed(format!("rpc error: code = {:?} desc = {}", status.code(), status.message()))),
        }
    })
}

#[cfg(test)]
mod tests;
