//! `driftless port-forward`: listens on 127.0.0.1 and carries each
//! connection to a port of a pod over the API's `portforward` subresource,
//! as kubectl does; a Service is forwarded to one of its running pods, its
//! port translated to the target port.

use std::process::ExitCode;

use driftless_api::{portforward, tunnel};
use driftless_model::Kind;
use serde_json::Value;

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::PortForwardArgs;
use crate::connect::{block_on, client};

/// One forwarded port: local (0: any free one) to the service's or pod's.
struct Mapping {
    local: u16,
    remote: u16,
}

fn mappings(ports: &[String]) -> Result<Vec<Mapping>, CommandError> {
    let number = |text: &str| text.parse::<u16>().map_err(|_| CommandError::Usage(format!("invalid port {text:?}")));
    ports
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some(("", remote)) => Ok(Mapping { local: 0, remote: number(remote)? }),
            Some((local, remote)) => Ok(Mapping { local: number(local)?, remote: number(remote)? }),
            None => Ok(Mapping { local: number(spec)?, remote: number(spec)? }),
        })
        .collect()
}

/// Runs `port-forward` until interrupted.
pub fn run(args: &PortForwardArgs) -> Result<ExitCode, CommandError> {
    let mut mappings = mappings(&args.ports)?;
    block_on(async {
        let client = client(&args.connect);
        let (kind, name) = match args.target.split_once('/') {
            Some((kind, name)) => (Kind::from_cli_name(kind).ok_or_else(|| CommandError::Usage(format!("unknown kind {kind:?}")))?, name.to_owned()),
            None => (Kind::Pod, args.target.clone()),
        };
        let pod = match kind {
            Kind::Pod => client.get(&Kind::Pod.object_path(&args.namespace, &name)).await.map_err(client_error)?,
            Kind::Service => {
                let service = client.get(&Kind::Service.object_path(&args.namespace, &name)).await.map_err(client_error)?;
                let pod = pod_of_service(&client, &args.namespace, &service).await?;
                for mapping in &mut mappings {
                    mapping.remote = target_port(&service, &pod, mapping.remote)?;
                }
                pod
            }
            other => return Err(CommandError::Usage(format!("cannot forward to a {other}: name a pod or a service"))),
        };
        if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
            return Err(CommandError::Usage(format!("unable to forward port because pod is not running. Current status={}", pod["status"]["phase"])));
        }
        let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut listeners = Vec::new();
        for mapping in &mappings {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", mapping.local))
                .await
                .map_err(|e| CommandError::Usage(format!("unable to listen on port {}: {e}", mapping.local)))?;
            let local = listener.local_addr().map_err(|e| CommandError::Usage(e.to_string()))?.port();
            println!("Forwarding from 127.0.0.1:{local} -> {}", mapping.remote);
            listeners.push((listener, local, mapping.remote));
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // One session carries every forwarded connection, as kubectl's does.
        let path = format!("{}/portforward", Kind::Pod.object_path(&args.namespace, &pod_name));
        let (socket, _) = client.websocket(&path, &[portforward::WEBSOCKET_PROTOCOL]).await.map_err(client_error)?;
        let forwarder = portforward::Forwarder::new(tunnel::bytes(socket));
        let mut tasks = tokio::task::JoinSet::new();
        for (listener, local, remote) in listeners {
            let forwarder = forwarder.clone();
            tasks.spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    // Whoever reads our output may have gone: forwarding goes on.
                    let mut out = std::io::stdout();
                    let _ = writeln!(out, "Handling connection for {local}").and_then(|()| out.flush());
                    let forwarder = forwarder.clone();
                    tokio::spawn(async move {
                        if let Err(message) = forwarder.forward(remote, stream).await {
                            eprintln!("E portforward: an error occurred forwarding {local} -> {remote}: {message}");
                        }
                    });
                }
            });
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = tasks.join_next() => {}
            () = forwarder.closed() => return Err(CommandError::Usage("lost connection to pod".into())),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A running pod the Service selects, as kubectl picks one.
async fn pod_of_service(client: &driftless_api::Client, namespace: &str, service: &Value) -> Result<Value, CommandError> {
    let name = service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let selector: Vec<String> = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(CommandError::Usage(format!("service {name} has no selector: no pod to forward to")));
    }
    let query = form_query(&[("labelSelector", Some(&selector.join(",")))]);
    let pods = client.get(&format!("{}{query}", Kind::Pod.list_path(Some(namespace)))).await.map_err(client_error)?;
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running") && p.pointer("/metadata/deletionTimestamp").is_none())
        .cloned()
        .ok_or_else(|| CommandError::Usage(format!("no running pod behind service {name}")))
}

/// The pod port a Service port leads to: its `targetPort`, by number or by
/// the name of one of the pod's container ports.
fn target_port(service: &Value, pod: &Value, port: u16) -> Result<u16, CommandError> {
    let name = service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ports = service.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let entry = ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
        .ok_or_else(|| CommandError::Usage(format!("Service {name} does not have a service port {port}")))?;
    match entry.get("targetPort") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(|| CommandError::Usage(format!("bad target port {n}"))),
        Some(Value::String(named)) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| c.get("ports").and_then(Value::as_array).cloned().unwrap_or_default())
            .find(|p| p.get("name").and_then(Value::as_str) == Some(named))
            .and_then(|p| p.get("containerPort").and_then(Value::as_u64))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| CommandError::Usage(format!("pod does not have a named port {named:?}"))),
        _ => Ok(port),
    }
}
