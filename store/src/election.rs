//! Leader election over etcd, as client-go's leaderelection does it with
//! a lease-guarded key: each candidate holds a lease; the one whose
//! create-if-absent of the leader key (attached to its lease) succeeds
//! leads, for as long as it keeps the lease alive. The others wait for the
//! key to go (its lease expired or was revoked) and try again.
//!
//! Owns: campaigning, keeping the lease alive, noticing its loss, and the
//! fence ([`Leadership::fence`]): the leader key's create revision, which
//! [`crate::EtcdStore`] makes every write of a fenced store conditional
//! on, so a leader that lost its lease (paused, partitioned) cannot write
//! after another was elected, whatever it believes.
//!
//! Must not touch: what a leader does. A leader stops acting when its
//! `lost` channel says so; it believes itself leader at most until the
//! lease's TTL after its last successful renewal, less a margin, so it
//! stops before the lease can expire.

use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::watch;

use crate::{EtcdConfig, StoreError};

/// How long a leader's lease lasts without renewal: a killed leader is
/// replaced within about this long.
pub const LEASE_TTL: Duration = Duration::from_secs(8);
/// How often the lease is renewed.
const RENEW_EVERY: Duration = Duration::from_millis(2500);
/// How long before the lease could expire a leader stops acting.
const MARGIN: Duration = Duration::from_secs(2);

/// The election among the control-plane instances on one store.
pub struct Election {
    client: Client,
    config: EtcdConfig,
    key: String,
    identity: String,
}

/// What an elected instance holds.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// The leader key.
    pub key: String,
    /// Its create revision: the fence every write is conditional on.
    pub revision: i64,
    /// This instance's identity, as written in the key.
    pub identity: String,
    lease: i64,
}

impl Leadership {
    /// The fence for [`crate::EtcdStore::fence`].
    pub fn fence(&self) -> (String, i64) {
        (self.key.clone(), self.revision)
    }
}

fn etcd_error(error: etcd_client::Error) -> StoreError {
    StoreError::Etcd(error.to_string())
}

/// A client of its own for the election (no per-request timeout: a
/// campaign waits as long as it must).
async fn connect(config: &EtcdConfig) -> Result<Client, StoreError> {
    let mut options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_keep_alive(crate::etcd::KEEPALIVE.0, crate::etcd::KEEPALIVE.1);
    if let Some(tls) = &config.tls {
        options = options.with_tls(
            etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(&tls.ca))
                .identity(etcd_client::Identity::from_pem(&tls.cert, &tls.key)),
        );
    }
    Client::connect(config.endpoints.clone(), Some(options)).await.map_err(etcd_error)
}

/// A candidate's lease, and when it was last known alive (granted or
/// renewed: the time the request was sent, so never later than etcd's).
#[derive(Clone, Copy)]
struct Candidate {
    lease: i64,
    renewed: Instant,
}

impl Election {
    /// An election under the store's prefix, for the instance named
    /// `identity` (shown as the leader in status).
    pub async fn new(config: &EtcdConfig, identity: &str) -> Result<Election, StoreError> {
        let client = connect(config).await?;
        Ok(Election { client, config: config.clone(), key: format!("{}/driftless/leader", config.prefix.trim_end_matches('/')), identity: identity.to_owned() })
    }

    /// Who leads now, if anyone.
    pub async fn leader(&mut self) -> Result<Option<String>, StoreError> {
        let response = self.client.get(self.key.as_str(), None).await.map_err(etcd_error)?;
        Ok(response.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Ends the leadership of an earlier run of this same instance (its
    /// identity names its data folder, which one process at a time may
    /// use): a restarted leader need not wait for its old lease to
    /// expire. Whether there was one to end.
    pub async fn reclaim(&mut self) -> Result<bool, StoreError> {
        let response = self.client.get(self.key.as_str(), None).await.map_err(etcd_error)?;
        let Some(kv) = response.kvs().first() else { return Ok(false) };
        if kv.value() != self.identity.as_bytes() || kv.lease() == 0 {
            return Ok(false);
        }
        tracing::info!(identity = %self.identity, "ending this instance's leadership from before its restart");
        self.client.lease_revoke(kv.lease()).await.map_err(etcd_error)?;
        Ok(true)
    }

    /// Waits until this instance leads; then keeps its lease alive in the
    /// background. The channel turns `false` when leadership is lost (the
    /// lease could not be renewed in time, or the key is gone): act no
    /// more.
    pub async fn campaign(&mut self) -> Result<(Leadership, watch::Receiver<bool>), StoreError> {
        let mut candidate = None;
        let mut failures = 0u32;
        loop {
            match self.attempt(&mut candidate).await {
                Ok(Some(elected)) => return Ok(elected),
                Ok(None) => failures = 0,
                // A member lost, etcd between leaders: a standby keeps
                // standing by, on a new lease in case its own expired. A
                // campaign whose answer was lost may have won: the key
                // under this identity is ended rather than waited out.
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "campaigning failed; trying again");
                    if let Some(old) = candidate.take() {
                        let _ = self.client.lease_revoke(old.lease).await;
                    }
                    let _ = self.reclaim().await;
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
                }
            }
        }
    }

    /// One try at the leader key; if another holds it, waits until it is
    /// gone (`None`), keeping the candidate's lease alive meanwhile so it
    /// is ready.
    async fn attempt(&mut self, candidate: &mut Option<Candidate>) -> Result<Option<(Leadership, watch::Receiver<bool>)>, StoreError> {
        let current = match *candidate {
            Some(current) => current,
            None => {
                let asked = Instant::now();
                let lease = self.client.lease_grant(LEASE_TTL.as_secs() as i64, None).await.map_err(etcd_error)?.id();
                *candidate.insert(Candidate { lease, renewed: asked })
            }
        };
        let txn = Txn::new().when([Compare::create_revision(self.key.as_str(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
            self.key.as_str(),
            self.identity.as_str(),
            Some(PutOptions::new().with_lease(current.lease)),
        )]);
        let response = self.client.txn(txn).await.map_err(etcd_error)?;
        let revision = response.header().map_or(0, |h| h.revision());
        if response.succeeded() {
            tracing::info!(identity = %self.identity, revision, "elected leader");
            let leadership = Leadership { key: self.key.clone(), revision, identity: self.identity.clone(), lease: current.lease };
            let (tx, rx) = watch::channel(true);
            spawn_keeper(self.config.clone(), leadership.clone(), current.renewed, tx)?;
            return Ok(Some((leadership, rx)));
        }
        let mut watcher = self.client.watch(self.key.as_str(), Some(WatchOptions::new().with_start_revision(revision + 1))).await.map_err(etcd_error)?;
        let (mut keeper, mut acks) = self.client.lease_keep_alive(current.lease).await.map_err(etcd_error)?;
        let mut renew = tokio::time::interval(RENEW_EVERY);
        loop {
            tokio::select! {
                message = watcher.message() => {
                    match message.map_err(etcd_error)? {
                        Some(response) if response.events().iter().any(|e| e.event_type() == EventType::Delete) => return Ok(None),
                        Some(_) => {}
                        None => return Err(StoreError::Etcd("the watch of the leader key ended".into())),
                    }
                }
                _ = renew.tick() => {
                    let asked = Instant::now();
                    keeper.keep_alive().await.map_err(etcd_error)?;
                    match tokio::time::timeout(RENEW_EVERY, acks.message()).await {
                        Ok(Ok(Some(ack))) if ack.ttl() > 0 => {
                            if let Some(candidate) = candidate.as_mut() {
                                candidate.renewed = asked;
                            }
                        }
                        Ok(Ok(_)) => return Err(StoreError::Etcd("the candidate's lease is gone".into())),
                        Ok(Err(error)) => return Err(etcd_error(error)),
                        Err(_) => return Err(StoreError::Etcd("renewing the candidate's lease timed out".into())),
                    }
                }
            }
        }
    }

    /// Gives leadership up at once (a clean shutdown): the key goes with
    /// the lease, and another instance is elected without waiting for it
    /// to expire.
    pub async fn resign(&mut self, leadership: &Leadership) -> Result<(), StoreError> {
        self.client.lease_revoke(leadership.lease).await.map_err(etcd_error)?;
        Ok(())
    }
}

/// Runs [`keep`] on a thread and runtime of its own, with a client of its
/// own: the leader's renewals must not wait for a busy caller's runtime
/// (whose workers a blocking store write can hold), or it could go on
/// believing it leads after its lease could have expired.
fn spawn_keeper(config: EtcdConfig, leadership: Leadership, renewed: Instant, lost: watch::Sender<bool>) -> Result<(), StoreError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| StoreError::Io { path: "leader lease runtime".into(), source })?;
    std::thread::Builder::new()
        .name("leader-lease".into())
        .spawn(move || runtime.block_on(keep(config, leadership, renewed, lost)))
        .map_err(|source| StoreError::Io { path: "leader lease thread".into(), source })?;
    Ok(())
}

/// Renews the leader's lease until it cannot; says `false` once the lease
/// may be lost: before it could expire, not after. A renewal that fails
/// (the etcd member serving the stream died, etcd is between leaders) is
/// tried again on a new stream, which the client sends to a live member;
/// one is never waited for past the point of stepping down.
async fn keep(config: EtcdConfig, leadership: Leadership, mut renewed: Instant, lost: watch::Sender<bool>) {
    let mut client = None;
    let mut stream = None;
    let mut tick = tokio::time::interval(RENEW_EVERY);
    // The first tick is at once; the election's own grant or renewal was
    // just now.
    tick.tick().await;
    loop {
        let deadline = renewed + LEASE_TTL - MARGIN;
        let asked = Instant::now();
        if asked >= deadline {
            tracing::warn!(identity = %leadership.identity, "the leader lease was not renewed in time; stepping down");
            let _ = lost.send(false);
            return;
        }
        let renewal = async {
            if client.is_none() {
                client = Some(connect(&config).await?);
            }
            if stream.is_none() {
                let opened = client.as_mut().expect("connected above").lease_keep_alive(leadership.lease).await.map_err(|error| match error {
                    // etcd-client reads the first answer itself: a lease
                    // that is gone is an error there.
                    etcd_client::Error::LeaseKeepAliveError(_) => StoreError::NotLeader { key: leadership.key.clone(), revision: leadership.revision },
                    other => etcd_error(other),
                })?;
                stream = Some(opened);
            }
            let (keeper, acks) = stream.as_mut().expect("opened above");
            keeper.keep_alive().await.map_err(etcd_error)?;
            acks.message().await.map_err(etcd_error)
        };
        // Never past the point of stepping down.
        match tokio::time::timeout(RENEW_EVERY.min(deadline - asked), renewal).await {
            Ok(Ok(Some(ack))) if ack.ttl() > 0 => renewed = asked,
            Ok(Ok(Some(_)) | Err(StoreError::NotLeader { .. })) => {
                tracing::warn!(identity = %leadership.identity, "the leader lease is gone; stepping down");
                let _ = lost.send(false);
                return;
            }
            Ok(Ok(None)) => {
                tracing::warn!("the lease's renewal stream ended; opening another");
                stream = None;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "renewing the leader lease failed; trying again on a new stream");
                stream = None;
            }
            Err(_) => {
                tracing::warn!("renewing the leader lease timed out; trying again on a new stream");
                stream = None;
            }
        }
        if lost.is_closed() {
            // Nobody listens: the instance is shutting down.
            return;
        }
        // The next renewal, or the deadline if that comes first.
        let deadline = renewed + LEASE_TTL - MARGIN;
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline.into()) => {}
            // Nobody listens any more: the instance is gone.
            () = lost.closed() => return,
            _ = tick.tick() => {}
        }
    }
}
