//! The forge loop, wired into the daemon: webhook deliveries that move the
//! watched branch wake the sync loop; syncs, failed rollouts and automatic
//! rollbacks go out as signed notifications.
//!
//! Owns: turning the daemon's news into `driftless-forge` events (the
//! sync loop's outcomes through its observer; rollouts through the Events
//! the controllers record, as Flux's notification-controller forwards its
//! controllers' events). Must not touch: the sync itself (a push only
//! wakes the loop, which fetches and judges the branch as on any poll).

use std::sync::{Arc, Mutex, PoisonError};

use driftless_forge::notify::{Event, ObjectRef, Reason, Severity};
use driftless_forge::{HookConfig, HookStats, Notifier, NotifyOptions, Push};
use driftless_store::{EventType, Store};
use driftless_sync::{Observer, Outcome, Reply, SyncStatus, Trigger};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::DaemonConfig;
use crate::CommandError;

/// Reads a secret file: its bytes without the trailing newline editors add.
pub(super) fn secret(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, CommandError> {
    let bytes = std::fs::read(path).map_err(|source| CommandError::Io { path: path.to_owned(), source })?;
    let trimmed = bytes.trim_ascii_end().to_vec();
    if trimmed.is_empty() {
        return Err(CommandError::Usage(format!("{flag} {}: the file is empty; an empty secret would accept anyone's signature", path.display())));
    }
    Ok(trimmed)
}

/// Serves `POST /hooks/<name>` on `--webhook-listen`: a verified push of
/// the watched branch wakes the sync loop at once.
pub(super) async fn webhooks(
    config: &DaemonConfig,
    branch: &str,
    sync: std::sync::mpsc::Sender<Trigger>,
    cancel: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, CommandError> {
    let (Some(address), Some(secret_file)) = (&config.webhook_listen, &config.webhook_secret_file) else { return Ok(None) };
    let secret = secret(secret_file, "--webhook-secret-file")?;
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| CommandError::Io { path: address.into(), source })?;
    let sync = Mutex::new(sync);
    let on_push = Arc::new(move |push: Push| {
        tracing::info!(hook = %push.name, forge = %push.forge, branch = %push.branch, after = ?push.after, "push received; syncing now");
        // "Sync now", not "a ref changed": a delivery is one event, with no
        // burst of file changes to let pass first. Nobody waits for the
        // outcome.
        let _ = sync.lock().unwrap_or_else(PoisonError::into_inner).send(Trigger::Now(Reply::ignored()));
    });
    let hook_config = HookConfig::new(secret, branch);
    tracing::info!(%address, "serving webhooks at /hooks/<name>");
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = driftless_forge::serve(listener, hook_config, on_push, Arc::new(HookStats::new()), cancel).await {
            tracing::error!(%error, "webhook server failed");
        }
    })))
}

/// The notifier of `--notify`, if any URL is given.
pub(super) fn notifier(config: &DaemonConfig, cancel: CancellationToken) -> Result<Option<Arc<Notifier>>, CommandError> {
    if config.notify.is_empty() {
        return Ok(None);
    }
    let key = match (&config.notify_secret_file, &config.webhook_secret_file) {
        (Some(file), _) => Some(secret(file, "--notify-secret-file")?),
        (None, Some(file)) => Some(secret(file, "--webhook-secret-file")?),
        (None, None) => None,
    };
    let (notifier, _task) =
        Notifier::start(config.notify.clone(), key, NotifyOptions::default(), cancel).map_err(|error| CommandError::Usage(format!("--notify: {error}")))?;
    Ok(Some(Arc::new(notifier)))
}

fn repository(branch: &str) -> ObjectRef {
    ObjectRef { kind: "Repository".into(), namespace: "default".into(), name: branch.to_owned(), api_version: "driftless.dev/v1".into() }
}

/// The sync loop's observer: an applied commit is Flux's
/// `ReconciliationSucceeded`, a refused one `SyncRefused` with its errors.
pub(super) fn sync_observer(notifier: Arc<Notifier>) -> Observer {
    Box::new(move |outcome: &Outcome, status: &SyncStatus| {
        let event = match outcome {
            Outcome::Applied { commit, actions } => {
                let subject = status.applied.as_ref().map(|c| c.subject.as_str()).unwrap_or_default();
                let message = format!("applied {} ({subject}): {} changes", &commit[..commit.len().min(7)], actions.len());
                Event::new(repository(&status.branch), Severity::Info, Reason::ReconciliationSucceeded, message)
                    .with_revision(&status.branch, commit)
                    .with_metadata("changes", actions.len().to_string())
            }
            Outcome::Refused { commit, errors } => {
                let subject = status.refused.as_ref().map(|(c, _)| c.subject.as_str()).unwrap_or_default();
                let running = status.applied.as_ref().map_or("nothing".to_owned(), |a| a.id[..a.id.len().min(7)].to_owned());
                let message = format!("refused {} ({subject}); still running {running}:\n{}", &commit[..commit.len().min(7)], errors.join("\n"));
                Event::new(repository(&status.branch), Severity::Error, Reason::SyncRefused, message).with_revision(&status.branch, commit)
            }
            Outcome::Unchanged { .. } => return,
        };
        notifier.send(&event);
    })
}

/// Forwards the Events controllers record about rollouts: a Deployment past
/// its progress deadline, an automatic rollback made or refused.
pub(super) async fn forward_rollouts(store: Arc<dyn Store>, notifier: Arc<Notifier>, branch: String, cancel: CancellationToken) {
    let mut events = store.watch();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.recv() => event,
        };
        let change = match event {
            Ok(change) => change,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        // A new Event only: a repeat of one bumps its count (Modified).
        if change.kind != EventType::Added || change.key.kind != driftless_model::Kind::Event {
            continue;
        }
        if let Some(notification) = rollout_notification(&change.object, &branch) {
            notifier.send(&notification);
        }
    }
}

/// The notification for an Event, if it is one users are told of.
fn rollout_notification(event: &Value, branch: &str) -> Option<Event> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (severity, reason) = match text("/reason").as_str() {
        "ProgressDeadlineExceeded" | "RollbackRefused" => (Severity::Error, Reason::RolloutFailed),
        "RolledBack" => (Severity::Error, Reason::RolledBack),
        _ => return None,
    };
    let kind = text("/involvedObject/kind");
    let involved = ObjectRef {
        api_version: driftless_model::Kind::from_name(&kind).map(|k| k.api_version().to_owned()).unwrap_or_default(),
        kind,
        namespace: text("/involvedObject/namespace"),
        name: text("/involvedObject/name"),
    };
    Some(Event::new(involved, severity, reason, text("/message")).with_metadata("event", text("/reason")).with_metadata("branch", branch))
}
