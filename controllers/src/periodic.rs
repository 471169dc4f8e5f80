//! Passes run on a period until cancelled: the node's heartbeat, the node
//! lifecycle, eviction. Each pass runs on the blocking pool (store writes
//! block); a failed pass is logged and the next one tries again.
//!
//! Must not touch: what a pass does.

use std::sync::Arc;
use std::time::Duration;

use driftless_store::StoreError;
use tokio_util::sync::CancellationToken;

/// Runs `pass` at once and then every `period`, until `cancel` fires;
/// `what` names it in logs.
pub(crate) async fn every(period: Duration, what: &'static str, cancel: CancellationToken, pass: impl Fn() -> Result<(), StoreError> + Send + Sync + 'static) {
    let pass = Arc::new(pass);
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let run = pass.clone();
        match tokio::task::spawn_blocking(move || run()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, what, "a periodic pass failed"),
            Err(error) => tracing::warn!(%error, what, "a periodic pass panicked"),
        }
    }
}
