//! The etcd store against the store's contract (`conformance.rs`), each
//! test on an etcd of its own (`tests/support/etcd.rs`), and what only a shared
//! store has: two instances seeing each other's writes and conflicting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::{Op, StoreExt};

#[path = "../../../tests/support/ports.rs"]
mod ports;
#[path = "../../../tests/support/etcd.rs"]
#[allow(dead_code)]
mod server;
use server::{Etcd, free_port};

impl Etcd {
    fn config(&self, prefix: &str) -> EtcdConfig {
        let mut config = EtcdConfig::parse(&self.url).unwrap();
        config.prefix = prefix.to_owned();
        config
    }
}

fn fresh() -> (Etcd, impl Fn() -> Arc<dyn Store>) {
    let etcd = Etcd::start();
    let config = etcd.config("/registry");
    (etcd, move || Arc::new(EtcdStore::connect(&config).unwrap()) as Arc<dyn Store>)
}

crate::conformance::conformance_tests!(fresh());

#[test]
fn two_instances_see_each_others_writes_and_conflict_as_one_store() {
    let etcd = Etcd::start();
    let (a, b) = (EtcdStore::connect(&etcd.config("/registry")).unwrap(), EtcdStore::connect(&etcd.config("/registry")).unwrap());
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {}});
    let created = a.write(Op::Create(pod.clone())).unwrap().unwrap();
    let key = Key::of(&created).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.get(&key).is_none() {
        assert!(Instant::now() < deadline, "b never saw a's write");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*b.get(&key).unwrap(), *created);
    // b writes from a stale read: a conflict, as on one store.
    let stale = (*created).clone();
    a.write(Op::Status { key: key.clone(), uid: None, status: json!({"phase": "Running"}) }).unwrap();
    let mut changed = stale;
    changed["spec"]["nodeName"] = json!("n1");
    assert!(matches!(b.write(Op::Update(changed)), Err(StoreError::Conflict { .. })), "b read an older version");
    // A write naming no version is computed again on what a wrote.
    let put = b
        .write(Op::Put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "n2"}})))
        .unwrap()
        .unwrap();
    assert_eq!(put["status"]["phase"], "Running", "a's status is kept");
    assert_eq!(put["metadata"]["uid"], created["metadata"]["uid"]);
    // A prefix is a store of its own.
    let other = EtcdStore::connect(&etcd.config("/other")).unwrap();
    assert!(other.get(&key).is_none());
}

#[test]
fn a_compacted_revision_makes_the_watch_list_again() {
    let etcd = Etcd::start();
    let store = EtcdStore::connect(&etcd.config("/registry")).unwrap();
    let pod = |name: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {}});
    store.write(Op::Create(pod("a"))).unwrap();
    store.write(Op::Create(pod("c"))).unwrap();
    // A watcher that fell behind here (a copy of memory at this revision)...
    let behind = {
        let cache = store.shared.cache();
        Cache { objects: cache.objects.clone(), meta: cache.meta.clone(), versions: cache.versions.clone(), revision: cache.revision }
    };
    let old = behind.revision;
    let (events, _) = broadcast::channel(16);
    let shared = Arc::new(Shared {
        cache: Mutex::new(behind),
        moved: Condvar::new(),
        events,
        layout: store.shared.layout.clone(),
        broken: Mutex::new(None),
        progress: tokio::sync::Mutex::new(None),
    });
    let mut rx = shared.events.subscribe();
    // ...while others write and etcd compacts past it.
    store.write(Op::Create(pod("b"))).unwrap();
    store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "a"), uid: None }).unwrap();
    store.write(Op::Status { key: Key::new(Kind::Pod, "default", "c"), uid: None, status: json!({"phase": "Running"}) }).unwrap();
    let (mut client, compact_to) = (store.client.clone(), store.revision() as i64);
    block(store.runtime(), async move { client.compact(compact_to, None).await }).unwrap();

    let client = store.client.clone();
    let shared_again = shared.clone();
    let listed = block(store.runtime(), async move {
        let mut client = client;
        let mut revision = old;
        let restart = watch_from(&mut client, &shared_again, &mut revision).await;
        assert!(matches!(restart, Ok(Restart::Compacted)), "etcd says the revision is gone");
        list(client, shared_again).await
    })
    .unwrap();
    assert_eq!(listed, store.revision());
    let mut seen = Vec::new();
    while let Ok(event) = rx.try_recv() {
        seen.push((event.kind, event.key.name));
    }
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        seen,
        [(EventType::Deleted, "a".to_owned()), (EventType::Added, "b".to_owned()), (EventType::Modified, "c".to_owned())],
        "the differences, announced"
    );
    assert_eq!(shared.cache().objects.len(), 2);
}

#[test]
fn an_unreachable_etcd_is_a_clear_error() {
    let config = EtcdConfig::parse(&format!("etcd://127.0.0.1:{}", free_port())).unwrap();
    let started = Instant::now();
    let error = EtcdStore::connect(&config).err().expect("nothing listens there");
    assert!(error.to_string().starts_with("etcd: "), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_batch_over_etcds_limits_is_refused_whole_with_what_to_do() {
    let etcd = Etcd::with_defaults();
    let store = EtcdStore::connect(&etcd.config("/registry")).unwrap();
    let mut batch = Batch::new();
    // etcd's default --max-txn-ops is 128.
    for i in 0..200 {
        batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "namespace": "default"}})));
    }
    let error = store.apply(batch).unwrap_err().to_string();
    assert!(error.contains("a batch of 200 writes is over etcd's limits") && error.contains("--max-txn-ops"), "{error}");
    assert!(store.list(Kind::ConfigMap, None).0.is_empty(), "nothing of it written");
}

/// Two instances campaign: one leads; when it dies without resigning (its
/// runtime, and with it the lease's renewals, gone, as a killed process's
/// would), the other is elected once the lease expires, and the old
/// leader's fenced store can no longer write.
#[test]
fn one_leader_at_a_time_and_a_deposed_one_cannot_write() {
    use crate::election::{Election, LEASE_TTL};
    let etcd = Etcd::start();
    let config = etcd.config("/registry");
    let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (a_runtime, b_runtime) = (runtime(), runtime());
    let (first, a_lost) = a_runtime.block_on(async {
        let mut a = Election::new(&config, "a").await.unwrap();
        let elected = a.campaign().await.unwrap();
        assert_eq!(a.leader().await.unwrap().as_deref(), Some("a"));
        elected
    });
    let second = {
        let config = config.clone();
        b_runtime.spawn(async move {
            let mut b = Election::new(&config, "b").await.unwrap();
            let started = Instant::now();
            let (leadership, lost) = b.campaign().await.unwrap();
            (leadership, lost, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    assert!(!second.is_finished(), "b must not lead while a does");

    let old = EtcdStore::connect(&config).unwrap();
    old.fence(Some(first.fence()));
    let pod = |name: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {}});
    old.write(Op::Create(pod("by-a"))).unwrap();

    // a dies: its runtime, and whoever listened for the lease's loss.
    let died = Instant::now();
    a_runtime.shutdown_background();
    drop(a_lost);
    let (second, _b_lost, _) = b_runtime.block_on(second).unwrap();
    let failover = died.elapsed();
    assert!(failover <= LEASE_TTL + Duration::from_secs(3), "b elected {failover:?} after a died");
    assert!(second.revision > first.revision && second.identity == "b");

    let error = old.write(Op::Create(pod("by-a-late"))).unwrap_err();
    assert!(matches!(error, StoreError::NotLeader { .. }), "{error}");
    assert!(old.get(&Key::new(Kind::Pod, "default", "by-a-late")).is_none());
    let new = EtcdStore::connect(&config).unwrap();
    new.fence(Some(second.fence()));
    new.write(Op::Create(pod("by-b"))).unwrap();
    b_runtime.shutdown_background();
}

/// A leader that resigns hands over at once.
#[test]
fn resigning_hands_over_without_waiting_for_the_lease() {
    use crate::election::Election;
    let etcd = Etcd::start();
    let config = etcd.config("/registry");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut a = Election::new(&config, "a").await.unwrap();
        let (leadership, _lost) = a.campaign().await.unwrap();
        let config = config.clone();
        let b = tokio::spawn(async move {
            let mut b = Election::new(&config, "b").await.unwrap();
            b.campaign().await.unwrap().0
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resigned = Instant::now();
        a.resign(&leadership).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), b).await.expect("b elected at once").unwrap();
        assert_eq!(next.identity, "b");
        assert!(resigned.elapsed() < Duration::from_secs(2), "{:?}", resigned.elapsed());
    });
}

/// A restarted instance (same identity: the same data folder) takes its
/// leadership back at once instead of waiting out its old lease; another
/// instance's leadership it leaves alone.
#[test]
fn a_restarted_leader_reclaims_its_own_key_only() {
    use crate::election::Election;
    let etcd = Etcd::start();
    let config = etcd.config("/registry");
    let old = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    old.block_on(async {
        let mut a = Election::new(&config, "a").await.unwrap();
        std::mem::forget(a.campaign().await.unwrap());
    });
    old.shutdown_background();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut b = Election::new(&config, "b").await.unwrap();
        assert!(!b.reclaim().await.unwrap(), "not b's to end");
        let mut again = Election::new(&config, "a").await.unwrap();
        let started = Instant::now();
        assert!(again.reclaim().await.unwrap());
        let (leadership, _lost) = again.campaign().await.unwrap();
        assert_eq!(leadership.identity, "a");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    });
}

/// `etcds://` with client certificates: etcd requiring them
/// (`--client-cert-auth`), certificates made by openssl for the test.
#[test]
fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-x509"][..], &key, &["-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=driftless-test-ca"]].concat());
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        std::fs::write(dir.path().join(format!("{name}.ext")), format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")).unwrap();
        let (k, csr, crt, ext) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        run(&[&["req"][..], &key, &["-keyout", &k, "-out", &csr, "-subj", &format!("/CN={name}")]].concat());
        run(&["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", &crt, "-days", "1", "-extfile", &ext]);
    }
    let file = |name: &str| dir.path().join(name).display().to_string();
    let etcd = Etcd::start_tls(&file("ca.crt"), &file("server.crt"), &file("server.key"));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let mut config = EtcdConfig::parse(&etcd.url.replace("etcd://", "etcds://")).unwrap();
    config.tls = Some(EtcdTls { ca: read("ca.crt"), cert: read("client.crt"), key: read("client.key") });
    let store = EtcdStore::connect(&config).unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {}});
    store.write(Op::Create(pod)).unwrap();
    assert_eq!(store.list(Kind::Pod, None).0.len(), 1);
    // A certificate from another CA is refused (etcd checks it).
    run(&[&["req", "-x509"][..], &key, &["-keyout", "other.key", "-out", "other.crt", "-days", "1", "-subj", "/CN=someone-else"]].concat());
    let mut stranger = config.clone();
    stranger.tls = Some(EtcdTls { ca: read("ca.crt"), cert: read("other.crt"), key: read("other.key") });
    let refused = EtcdStore::connect(&stranger).err().expect("etcd refuses a client certificate it did not sign").to_string();
    assert!(refused.starts_with("etcd: "), "{refused}");
}

/// A 3-member etcd losing one member (SIGKILL) stops nothing: the leader
/// keeps its lease, writes keep succeeding, each exactly once, and
/// another instance's watch keeps seeing them.
#[test]
fn losing_one_etcd_member_stops_nothing() {
    use crate::election::{Election, LEASE_TTL};
    let mut cluster = server::EtcdCluster::start();
    let mut config = EtcdConfig::parse(&cluster.url()).unwrap();
    config.prefix = "/registry".into();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (leadership, lost) = runtime.block_on(async { Election::new(&config, "a").await.unwrap().campaign().await.unwrap() });
    let (writer, reader) = (EtcdStore::connect(&config).unwrap(), EtcdStore::connect(&config).unwrap());
    writer.fence(Some(leadership.fence()));
    let config_map = |i: usize| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "namespace": "default"}, "data": {"i": i.to_string()}});
    writer.write(Op::Create(config_map(0))).unwrap();

    cluster.kill(0);
    let killed = Instant::now();
    // Creates: a create applied twice would be refused as AlreadyExists.
    let mut i = 1;
    while killed.elapsed() < LEASE_TTL + Duration::from_secs(2) || i < 30 {
        assert!(i < 1000);
        let started = Instant::now();
        writer.write(Op::Create(config_map(i))).unwrap_or_else(|error| panic!("write {i}, {:?} after the kill: {error}", killed.elapsed()));
        assert!(started.elapsed() < Duration::from_secs(10), "write {i} took {:?}", started.elapsed());
        assert!(*lost.borrow(), "the leader lost its lease {:?} after one member of three died", killed.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.list(Kind::ConfigMap, None).0.len() < i {
        assert!(Instant::now() < deadline, "the other instance's watch saw {} of {i}", reader.list(Kind::ConfigMap, None).0.len());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(runtime);
}

/// A transaction etcd committed but whose answer was lost (the member
/// died, the attempt timed out) is not applied again when the batch is
/// tried again: the marker says it is done. One that was not committed is
/// applied once.
#[test]
fn an_attempt_whose_answer_was_lost_is_never_applied_twice() {
    let etcd = Etcd::start();
    let store = EtcdStore::connect(&etcd.config("/registry")).unwrap();
    let pod = |name: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {}});
    let batch = |name: &str| {
        let mut batch = Batch::new();
        batch.push(Op::Create(pod(name)));
        batch.set_meta("applied", json!(name));
        batch
    };
    store.write(Op::Create(pod("before"))).unwrap();
    // The first attempt commits; its answer never reaches the store.
    let lost = batch("lost");
    let Staged { txn, written, .. } = {
        let marker = store.writing.lock().unwrap();
        store.stage(&lost, &marker, "mark-1").unwrap()
    };
    let mut client = store.client.clone();
    let committed = block(store.runtime(), async move { client.txn(txn).await }).unwrap();
    assert!(committed.succeeded());
    let at = committed.header().unwrap().revision() as u64;
    // Trying the batch again (a Create: applied twice, it would be refused
    // as already existing) finds it done, at the revision it was done at.
    let again = store.apply_marked(&lost, "mark-1", Some(written)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["metadata"]["resourceVersion"], at.to_string());
    assert_eq!(store.revision(), at, "nothing written after it");
    assert_eq!(store.meta("applied"), Some(json!("lost")));
    // The next batch, and one whose first attempt never reached etcd, are
    // applied once each.
    store.apply_marked(&batch("next"), "mark-2", None).unwrap();
    let written = {
        let marker = store.writing.lock().unwrap();
        store.stage(&batch("unsent"), &marker, "mark-3").unwrap().written
    };
    store.apply_marked(&batch("unsent"), "mark-3", Some(written)).unwrap();
    let names: Vec<String> = store.list(Kind::Pod, None).0.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["before", "lost", "next", "unsent"]);
    // A writer named in the configuration keeps one marker across runs.
    drop(store);
    let mut config = etcd.config("/registry");
    config.writer = Some("/var/lib/driftless@n1".into());
    for name in ["run-1", "run-2"] {
        EtcdStore::connect(&config).unwrap().write(Op::Create(pod(name))).unwrap();
    }
    let store = EtcdStore::connect(&config).unwrap();
    let mut client = store.client.clone();
    let markers = block(store.runtime(), async move { client.get("/registry/driftless/writes/", Some(GetOptions::new().with_prefix())).await }).unwrap();
    assert_eq!(markers.kvs().len(), 2, "the unnamed store's marker and the named writer's one");
}

/// etcd's revision is the whole keyspace's: writes outside the prefix move
/// it without an event for this store's watch. Waiting for such a
/// revision (as after a transaction that lost) asks etcd for the watch's
/// progress instead of waiting for an event that will not come.
#[test]
fn a_revision_moved_outside_the_prefix_is_reached_at_once() {
    let etcd = Etcd::start();
    let store = EtcdStore::connect(&etcd.config("/registry")).unwrap();
    store.write(Op::Create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}))).unwrap();
    let mut client = store.client.clone();
    let elsewhere = block(store.runtime(), async move { client.put("/another-app/key", "value", None).await }).unwrap();
    let revision = elsewhere.header().unwrap().revision() as u64;
    assert!(store.revision() < revision);
    let started = Instant::now();
    store.caught_up(revision).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(store.list(Kind::ConfigMap, None).0.len(), 1);
}
