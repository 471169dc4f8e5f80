//! Webhook deliveries in: `POST /hooks/<name>` verified as each forge signs
//! it, read for the branch it moved, bounded in size and rate.
//!
//! Owns the configuration and the small types the daemon sees ([`Push`],
//! [`Forge`], [`HookConfig`]); the pieces live in [`verify`] (signatures),
//! [`payload`] (which ref moved), [`limit`] (the token bucket), [`stats`]
//! (counters) and `server` (the hyper loop). Must not touch git or the store:
//! a verified push of the watched branch becomes one call to the daemon's
//! callback and nothing else.

use std::fmt;
use std::time::Duration;

#[cfg(test)]
mod fixture_tests;
pub mod limit;
pub mod payload;
mod server;
pub mod stats;
pub mod verify;

pub use limit::RateLimit;
pub use payload::{Event, Malformed, RefKind, RefPush, parse};
pub use server::serve;
pub use stats::{HookCounts, HookStats};
pub use verify::{Unauthorized, verify};

/// A verified push of the watched branch: what the daemon's callback hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The `<name>` of `/hooks/<name>` the delivery came to (a free label).
    pub name: String,
    /// Which forge signed it.
    pub forge: Forge,
    /// The branch that moved (always the watched branch).
    pub branch: String,
    /// The new head SHA, when the payload says (GitLab, GitHub, Gitea,
    /// Bitbucket do; a generic delivery may not). `None` for a deletion.
    pub after: Option<String>,
}

/// The sender of a delivery, told by its event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forge {
    /// `X-GitHub-Event`, signed in `X-Hub-Signature-256`.
    GitHub,
    /// `X-Gitea-Event`, signed in `X-Gitea-Signature` or `X-Hub-Signature-256`.
    Gitea,
    /// `X-Forgejo-Event`, signed in `X-Forgejo-Signature` (or Gitea's headers).
    Forgejo,
    /// `X-Gitlab-Event`, authenticated by the shared `X-Gitlab-Token`.
    GitLab,
    /// Bitbucket Cloud: `X-Event-Key` with `X-Hook-UUID` or `repo:push`.
    Bitbucket,
    /// Bitbucket Server / Data Center: any other `X-Event-Key`.
    BitbucketServer,
    /// None of the above: `X-Signature: sha256=<hex>`, as Flux's generic-hmac.
    Generic,
}

impl Forge {
    /// The lowercase name used in logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::Gitea => "gitea",
            Forge::Forgejo => "forgejo",
            Forge::GitLab => "gitlab",
            Forge::Bitbucket => "bitbucket",
            Forge::BitbucketServer => "bitbucket-server",
            Forge::Generic => "generic",
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the webhook server verifies and bounds deliveries.
#[derive(Clone)]
pub struct HookConfig {
    /// The shared secret: the HMAC key, or GitLab's token. Never logged.
    pub secret: Vec<u8>,
    /// The watched branch (`main`, not `refs/heads/main`).
    pub branch: String,
    /// Largest body accepted; larger gets 413 without being read.
    pub max_body: usize,
    /// Token bucket over all deliveries, applied before any HMAC work.
    pub rate: RateLimit,
    /// How long a client may take to send the request head.
    pub header_timeout: Duration,
    /// How long a client may take to send the whole body.
    pub body_timeout: Duration,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
}

impl HookConfig {
    /// A configuration with the defaults: 25 MiB bodies, a burst of 20
    /// refilled at 5 a second, 10 s for the head and 30 s for the body.
    pub fn new(secret: impl Into<Vec<u8>>, branch: impl Into<String>) -> Self {
        HookConfig {
            secret: secret.into(),
            branch: branch.into(),
            // GitHub caps payloads at 25 MB; nothing legitimate is larger.
            max_body: 25 * 1024 * 1024,
            rate: RateLimit::default(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 128,
        }
    }
}

// The secret stays out of Debug output, so out of any log that prints a config.
impl fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookConfig")
            .field("secret", &"<redacted>")
            .field("branch", &self.branch)
            .field("max_body", &self.max_body)
            .field("rate", &self.rate)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let config = HookConfig::new("hunter2", "main");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("main"));
    }
}
