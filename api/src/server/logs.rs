//! Pod logs: the container's CRI-format log file (`<time> <stream> <P|F>
//! <text>`) read back as the text the container wrote, optionally followed
//! as it grows (across kubelet-style rotations), with `previous`,
//! `tailLines` and `timestamps` as kubectl asks for them.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::StoreExt;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ApiState;
use super::query::Query;
use crate::ApiError;

/// The container a request names, or the pod's only one.
pub(crate) fn container_of(pod: &Pod, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<String> = pod.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.clone()).collect();
    match asked {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(ApiError::BadRequest(format!("container {c} is not valid for pod {name}"))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::BadRequest(format!("a container name must be specified for pod {name}, choose one of: [{}]", names.join(" ")))),
    }
}

/// One CRI log line as the text the container wrote (with its time when
/// asked): full lines (`F`) end in a newline, partial ones (`P`) do not.
pub(crate) fn decode_line(line: &str, timestamps: bool) -> Option<String> {
    let mut parts = line.splitn(4, ' ');
    let (time, _stream, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let text = parts.next().unwrap_or("");
    let mut out = String::new();
    if timestamps {
        out.push_str(time);
        out.push(' ');
    }
    out.push_str(text);
    if tag != "P" {
        out.push('\n');
    }
    Some(out)
}

/// What a log read asks for (kubectl's `container`, `previous`,
/// `timestamps`, `tailLines` and `follow`).
#[derive(Clone, Debug, Default)]
pub struct LogRequest {
    /// The container; the pod's only one when `None`.
    pub container: Option<String>,
    /// The previous (terminated) container's log instead.
    pub previous: bool,
    /// Each line with its time.
    pub timestamps: bool,
    /// Only the last lines.
    pub tail: Option<usize>,
    /// Keep sending what the container writes until the pod goes.
    pub follow: bool,
}

impl LogRequest {
    fn of(query: &Query) -> LogRequest {
        LogRequest {
            container: query.get("container").map(str::to_owned),
            previous: query.flag("previous"),
            timestamps: query.flag("timestamps"),
            tail: query.get("tailLines").and_then(|t| t.parse().ok()),
            follow: query.flag("follow"),
        }
    }
}

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, query: &Query) -> Result<Response, ApiError> {
    let request = LogRequest::of(query);
    let follow = request.follow && !request.previous;
    let text = stream(&state, namespace, name, &request).await?;
    if !follow {
        let body: String = futures_util::StreamExt::collect::<Vec<String>>(text).await.concat();
        return Ok((StatusCode::OK, [("content-type", "text/plain")], body).into_response());
    }
    let bytes = futures_util::StreamExt::map(text, |chunk| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)));
    Ok((StatusCode::OK, [("content-type", "text/plain")], Body::from_stream(bytes)).into_response())
}

/// A pod's log as chunks of whole lines: what the file holds now (its
/// last `tail` lines), then, when following, each new line as it is
/// written, until the pod is gone or the daemon stops. The one log reader
/// of the API and the dashboard.
pub async fn stream(state: &ApiState, namespace: &str, name: &str, request: &LogRequest) -> Result<BoxStream<'static, String>, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let container = container_of(&pod, name, request.container.as_deref())?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = state.node.clone().ok_or_else(|| ApiError::BadRequest("this daemon runs no node".into()))?;
    let previous = request.previous;
    let path = node.log_path(&uid, &container, previous).ok_or_else(|| {
        if previous {
            ApiError::BadRequest(format!("previous terminated container {container:?} in pod {name:?} not found"))
        } else {
            ApiError::BadRequest(format!("container {container:?} in pod {name:?} is waiting to start: no logs yet"))
        }
    })?;
    let timestamps = request.timestamps;
    let follow = request.follow && !previous;
    let text = tokio::fs::read_to_string(&path).await.map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let mut lines: Vec<String> = text.lines().filter_map(|l| decode_line(l, timestamps)).collect();
    if let Some(n) = request.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let head = lines.concat();
    let first = futures_util::stream::once(async move { head });
    if !follow {
        return Ok(first.boxed());
    }
    let offset = text.len() as u64;
    let shutdown = state.shutdown.clone();
    let store = state.store.clone();
    let (ns, pod_name) = (namespace.to_owned(), name.to_owned());
    let rest = futures_util::stream::unfold((path, offset, String::new()), move |(path, mut offset, mut partial)| {
        let (shutdown, store, ns, pod_name) = (shutdown.clone(), store.clone(), ns.clone(), pod_name.clone());
        let uid = uid.clone();
        async move {
            loop {
                let chunk = read_from(&path, &mut offset).await;
                if !chunk.is_empty() {
                    partial.push_str(&chunk);
                    let complete = partial.rfind('\n').map(|i| i + 1).unwrap_or(0);
                    let lines: String = partial[..complete].lines().filter_map(|l| decode_line(l, timestamps)).collect();
                    partial.drain(..complete);
                    if !lines.is_empty() {
                        return Some((lines, (path, offset, partial)));
                    }
                }
                // The pod is gone (or replaced): the stream ends.
                let alive = store.api::<Pod>().get(&ns, &pod_name).is_some_and(|p| p.metadata.uid.as_deref() == Some(uid.as_str()));
                if !alive {
                    return None;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    });
    Ok(first.chain(rest).boxed())
}

/// What the file has past `offset` (from the start again if it was
/// rotated, that is, is now shorter).
pub(crate) async fn read_from(path: &PathBuf, offset: &mut u64) -> String {
    let Ok(mut file) = tokio::fs::File::open(path).await else { return String::new() };
    let Ok(meta) = file.metadata().await else { return String::new() };
    if meta.len() < *offset {
        *offset = 0;
    }
    if meta.len() == *offset || file.seek(SeekFrom::Start(*offset)).await.is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).await.is_err() {
        return String::new();
    }
    *offset += buf.len() as u64;
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_decode_to_what_was_written() {
        assert_eq!(decode_line("2026-12-01T10:00:00.000000001Z stdout F hello world", false).unwrap(), "hello world\n");
        assert_eq!(decode_line("2026-12-01T10:00:00Z stderr P part", false).unwrap(), "part");
        assert_eq!(decode_line("2026-12-01T10:00:00Z stdout F ", true).unwrap(), "2026-12-01T10:00:00Z \n");
        assert_eq!(decode_line("garbage", false), None);
    }
}
