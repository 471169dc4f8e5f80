//! `exec` into a running container: the request is upgraded to a raw
//! stream carrying [`crate::frame`]s; the command runs in the container
//! through the runtime's helper, its standard streams relayed both ways,
//! and its exit code sent last.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::StoreExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ApiState;
use super::logs::container_of;
use super::query::Query;
use crate::{ApiError, frame};

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, query: &Query, request: Request) -> Result<Response, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let container = container_of(&pod, name, query)?;
    let args = query.all("command");
    if args.is_empty() {
        return Err(ApiError::BadRequest("you must specify at least one command for the container".into()));
    }
    let upgrade = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade != Some(frame::PROTOCOL) {
        return Err(ApiError::BadRequest(format!("exec needs an upgrade to {}", frame::PROTOCOL)));
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = state.node.clone().ok_or_else(|| ApiError::BadRequest("this daemon runs no node".into()))?;
    let tty = query.flag("tty");
    let command =
        node.exec(&uid, &container, &args, tty).ok_or_else(|| ApiError::BadRequest(format!("container {container:?} in pod {name:?} is not running")))?;
    tracing::info!(pod = %format!("{namespace}/{name}"), container, ?args, tty, "exec");
    let on_upgrade = hyper::upgrade::on(request);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let io = TokioIo::new(upgraded);
        tokio::select! {
            result = relay(io, command) => if let Err(error) = result {
                tracing::warn!(%error, "exec stream ended with an error");
            },
            _ = shutdown.cancelled() => {}
        }
    });
    Ok((StatusCode::SWITCHING_PROTOCOLS, [(header::CONNECTION, "upgrade"), (header::UPGRADE, frame::PROTOCOL)]).into_response())
}

async fn relay<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(io: IO, command: std::process::Command) -> std::io::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut command = tokio::process::Command::from(command);
    command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return frame::write(&mut writer, frame::ERROR, error.to_string().as_bytes()).await,
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let (mut out_open, mut err_open, mut in_open) = (true, true, true);
    while out_open || err_open {
        tokio::select! {
            n = stdout.read(&mut out_buf), if out_open => match n? {
                0 => out_open = false,
                n => frame::write(&mut writer, frame::STDOUT, &out_buf[..n]).await?,
            },
            n = stderr.read(&mut err_buf), if err_open => match n? {
                0 => err_open = false,
                n => frame::write(&mut writer, frame::STDERR, &err_buf[..n]).await?,
            },
            incoming = frame::read(&mut reader), if in_open => match incoming? {
                Some((frame::STDIN, data)) => {
                    if let Some(stdin) = stdin.as_mut() {
                        // The command may have stopped reading; that is
                        // not the stream's failure.
                        if stdin.write_all(&data).await.is_err() {
                            stdin.shutdown().await.ok();
                        }
                    }
                }
                Some((frame::STDIN_EOF, _)) => drop(stdin.take()),
                Some(_) => {}
                None => {
                    // The client went away: stop the command.
                    in_open = false;
                    drop(stdin.take());
                    let _ = child.start_kill();
                }
            },
        }
    }
    let status = child.wait().await?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    frame::write(&mut writer, frame::EXIT, &code.to_be_bytes()).await?;
    writer.shutdown().await.ok();
    Ok(())
}
