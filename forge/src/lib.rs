//! The forge loop around the sync: webhook deliveries in, verified as each
//! forge signs them, and notifications out, signed the same way.
//!
//! Owns: the `POST /hooks/<name>` server ([`hooks`]), the per-forge signature
//! checks and payload readers, and the notification queue that posts Flux
//! shaped events with retries ([`notify`]). Both directions share one HMAC
//! implementation ([`sign`]).
//!
//! Must not touch: git, the store, or the sync loop. The daemon hands
//! [`hooks::serve`] a callback that only sends on a channel, and tells the
//! [`notify::Notifier`] what happened; this crate never decides what a push
//! means beyond "the watched branch moved".

pub mod hooks;
pub mod notify;
pub mod sign;

pub use hooks::{Forge, HookConfig, HookCounts, HookStats, Push, RateLimit, serve};
pub use notify::{Notifier, NotifyCounts, NotifyOptions};

/// Why the server or the notifier refused to start.
///
/// Everything that can go wrong after start (a bad delivery, an unreachable
/// receiver) is answered, counted and logged instead: neither loop stops for
/// one caller's mistake.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// An empty HMAC key signs nothing: anyone could forge a delivery.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// The configuration cannot work (zero burst, zero body limit, ...).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A notification URL is not an absolute http:// or https:// URL. It is
    /// named by position: URLs often carry a token in their path or query.
    #[error("notification url #{index} is invalid: {reason}")]
    BadUrl {
        /// Its position in the list given, from 1.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// https:// URLs need the system's root certificates and none loaded.
    #[error("cannot load root certificates for https notifications")]
    RootCertificates(#[source] std::io::Error),
    /// The TLS configuration could not be built.
    #[error("cannot configure tls for notifications")]
    Tls(#[source] rustls::Error),
}
