//! Running one probe against a running container.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::ProbeAction;
use crate::Layout;
use crate::lifecycle::probe::Outcome;

/// Runs `action` against container `id` (pod address `ip`) within
/// `timeout`; a timeout is a failure, as in Kubernetes.
pub(crate) fn run(action: &ProbeAction, layout: &Layout, id: &str, ip: Option<IpAddr>, timeout: Duration) -> Outcome {
    let passed = match action {
        ProbeAction::Exec(args) => exec(layout, id, args, timeout),
        ProbeAction::TcpSocket { port } => ip.is_some_and(|ip| TcpStream::connect_timeout(&SocketAddr::new(ip, *port), timeout).is_ok()),
        ProbeAction::HttpGet { port, path } => ip.is_some_and(|ip| http_get(SocketAddr::new(ip, *port), path, timeout)),
    };
    if passed { Outcome::Success } else { Outcome::Failure }
}

fn exec(layout: &Layout, id: &str, args: &[String], timeout: Duration) -> bool {
    let Ok(mut child) = layout.exec(id, args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// A GET whose status decides the probe: 200-399 passes, as in kubelet.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).max_redirects(0).user_agent("driftless-probe").build().into();
    match agent.get(&format!("http://{addr}{path}")).call() {
        Ok(response) => (200..400).contains(&response.status().as_u16()),
        Err(_) => false,
    }
}
