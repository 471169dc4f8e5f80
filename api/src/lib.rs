//! The daemon's API and its client.
//!
//! Owns: the HTTP API the daemon serves on a Unix socket in its data folder
//! (and, optionally, on TCP behind a bearer token), shaped as Kubernetes'
//! REST API (`/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/...`, Lists,
//! `?watch=1` streams, `labelSelector` and `fieldSelector`), pod logs and
//! exec, and Driftless' own endpoints (`/driftless/v1/status`, `history`,
//! `sync`, `images`); and the [`client`] the CLI talks to it with.
//!
//! Must not touch: the objects themselves. The API is read-only, as git is
//! the only source of truth: its only writes are deleting a pod (which its
//! owner replaces, as `kubectl delete pod` does), asking for a sync now,
//! and managing the node's images.

pub mod auth;
pub mod client;
mod error;
pub mod frame;
mod server;
pub mod tls;

pub use client::{Client, ClientError};
pub use error::ApiError;
pub use server::portforward::PROTOCOL as PORT_FORWARD_PROTOCOL;
pub use server::{ApiState, ImageOps, WriteFailure, WriteOps, serve_tls, serve_unix};

/// The socket's name in the data folder.
pub const SOCKET: &str = "driftless.sock";
