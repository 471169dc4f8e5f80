//! The daemon's API and its client.
//!
//! Owns: the HTTP API the daemon serves on a Unix socket in its data folder
//! (and, optionally, over HTTPS behind bearer tokens, [`auth`], [`tls`]),
//! shaped as Kubernetes' REST API (`/api/v1/namespaces/{ns}/pods`,
//! `/apis/apps/v1/...`, Lists, Tables, `?watch=1` streams,
//! `labelSelector` and `fieldSelector`), pod logs, exec (over
//! [`channel`], the protocol kubectl speaks) and port-forward, and
//! Driftless' own endpoints (`/driftless/v1/status`, `history`, `sync`,
//! `images`, `write`); and the [`client`] the CLI talks to it with.
//!
//! Must not touch: the objects git declares. Every change to them goes to
//! the write path (`WriteOps`), which commits it to git for the sync to
//! apply; the API's own writes are deleting a pod git does not declare
//! (which its owner replaces, as `kubectl delete pod` does), asking for a
//! sync now, and managing the node's images.

pub mod auth;
pub mod channel;
pub mod client;
mod dial;
mod error;
pub mod portforward;
pub mod remote;
mod server;
pub mod spdy;
pub mod tls;
pub mod tunnel;

pub use client::{Client, ClientError};
pub use error::ApiError;
pub use remote::{RemoteStore, Transform};
pub use server::{
    ApiState, INITIAL_EVENTS_END, ImageOps, LogRequest, SERVING_CA, WriteFailure, WriteOps, authenticated, bind_unix, log_stream, serve_tls, serve_unix,
    serve_unix_on, write_as,
};

/// The socket's name in the data folder.
pub const SOCKET: &str = "driftless.sock";
