//! Tests of the sync loop against real git repositories: apply, nothing
//! twice, refusal of an invalid commit whole, refusal of an empty path,
//! and a ledger entry finished after a kill between the two writes.

use driftless_model::Kind;
use std::path::Path;
use std::process::Command;

use driftless_events::{Recorder, SystemClock};
use driftless_store::{Key, SqliteStore};

use super::*;
use crate::{LEDGER_REF, LedgerEntry, SourceConfig, ledger};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&status.stderr));
}

fn commit(dir: &Path, file: &str, text: &str, message: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {greeting: hello}\n";

fn syncer(repo: &Path, store: Arc<dyn Store>) -> Syncer {
    let source = Source::open(SourceConfig { repo: repo.display().to_string(), branch: None, path: "apps".into(), mirror_dir: repo.join("unused") }).unwrap();
    let events = Arc::new(Recorder::new(store.clone(), Arc::new(SystemClock), "sync", "test"));
    Syncer::new(source, store, events, false, Duration::from_secs(1))
}

#[test]
fn applies_once_refuses_invalid_commits_whole_and_keeps_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    commit(dir.path(), "apps/web.yaml", CONFIG, "add web");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let syncer = syncer(dir.path(), store.clone());

    let outcome = syncer.sync_once().unwrap();
    assert!(matches!(&outcome, Outcome::Applied { actions, .. } if actions.len() == 1), "{outcome:?}");
    assert_eq!(store.get(&Key::new(Kind::ConfigMap, "default", "web")).unwrap()["data"]["greeting"], "hello");
    assert!(matches!(syncer.sync_once().unwrap(), Outcome::Unchanged { .. }));

    // A commit with one bad object and one good change is refused whole.
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec: {replicas: -1}\n";
    std::fs::write(dir.path().join("apps/bad.yaml"), bad).unwrap();
    commit(dir.path(), "apps/web.yaml", &CONFIG.replace("hello", "changed"), "break things");
    let outcome = syncer.sync_once().unwrap();
    let Outcome::Refused { errors, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(errors.iter().any(|e| e.starts_with("apps/bad.yaml:")), "errors name the file: {errors:?}");
    assert_eq!(store.get(&Key::new(Kind::ConfigMap, "default", "web")).unwrap()["data"]["greeting"], "hello", "nothing of it applied");
    assert!(store.get(&Key::new(Kind::Deployment, "default", "broken")).is_none());
    let status = Syncer::status(&*store);
    assert_eq!(status.applied.as_ref().unwrap().subject, "add web");
    assert_eq!(status.refused.as_ref().unwrap().0.subject, "break things");

    let entries = ledger::read(dir.path(), 10).unwrap();
    let results: Vec<_> = entries.iter().map(|e| (e.result.as_str(), e.subject.as_str())).collect();
    assert_eq!(results, [("refused", "break things"), ("applied", "add web")]);
    assert_eq!(entries[1].author, "Ada <ada@example.com>");
    let refusals = crate::syncer::Syncer::status(&*store);
    assert!(refusals.pending.is_none());
    let events = driftless_events::about(&*store, "Repository", "default", "main", None);
    assert!(events.iter().any(|e| e["reason"] == "SyncRefused"));

    // The fix applies, and the ledger tree has the applied object.
    std::fs::remove_file(dir.path().join("apps/bad.yaml")).unwrap();
    commit(dir.path(), "apps/web.yaml", &CONFIG.replace("hello", "changed"), "fix");
    assert!(matches!(syncer.sync_once().unwrap(), Outcome::Applied { .. }));
    assert_eq!(store.get(&Key::new(Kind::ConfigMap, "default", "web")).unwrap()["data"]["greeting"], "changed");
    let repo = git2::Repository::open(dir.path()).unwrap();
    let tree = repo.find_reference(LEDGER_REF).unwrap().peel_to_tree().unwrap();
    assert!(tree.get_path(Path::new("default/configmap/web.yaml")).is_ok());
}

#[test]
fn an_empty_path_is_refused_not_pruned() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    commit(dir.path(), "apps/web.yaml", CONFIG, "add web");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let syncer = syncer(dir.path(), store.clone());
    syncer.sync_once().unwrap();
    git(dir.path(), &["rm", "-q", "apps/web.yaml"]);
    git(dir.path(), &["commit", "-q", "-m", "remove everything"]);
    let outcome = syncer.sync_once().unwrap();
    let Outcome::Refused { errors, .. } = outcome else { panic!() };
    assert!(errors[0].contains("refusing to delete"), "{errors:?}");
    assert!(store.get(&Key::new(Kind::ConfigMap, "default", "web")).is_some());
}

#[test]
fn a_ledger_entry_interrupted_by_a_kill_is_written_on_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    commit(dir.path(), "apps/web.yaml", CONFIG, "add web");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let syncer = syncer(dir.path(), store.clone());
    syncer.sync_once().unwrap();
    // As if killed after the store batch: the entry is pending, git has none.
    let mut status = Syncer::status(&*store);
    let head = status.seen.clone().unwrap();
    status.pending = Some(LedgerEntry { source: head.clone(), result: "applied".into(), synced_at: 42, subject: "add web".into(), ..Default::default() });
    let mut batch = Batch::new();
    batch.set_meta(STATUS_META, serde_json::to_value(&status).unwrap());
    store.apply(batch).unwrap();
    assert!(matches!(syncer.sync_once().unwrap(), Outcome::Unchanged { .. }));
    let entries = ledger::read(dir.path(), 10).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].synced_at, 42);
    assert!(Syncer::status(&*store).pending.is_none());
}

#[test]
fn a_remote_repository_is_fetched_into_a_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let remote = dir.path().join("remote.git");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    commit(&work, "apps/web.yaml", CONFIG, "add web");
    git(dir.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), remote.to_str().unwrap()]);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let url = format!("file://{}", remote.display());
    let source = Source::open(SourceConfig { repo: url, branch: Some("main".into()), path: "apps".into(), mirror_dir: dir.path().join("mirror") }).unwrap();
    assert!(source.is_remote());
    let events = Arc::new(Recorder::new(store.clone(), Arc::new(SystemClock), "sync", "test"));
    let syncer = Syncer::new(source, store.clone(), events, false, Duration::from_secs(1));
    assert!(matches!(syncer.sync_once().unwrap(), Outcome::Applied { .. }));
    // A push to the remote reaches the store on the next fetch.
    commit(&work, "apps/web.yaml", &CONFIG.replace("hello", "pushed"), "change");
    git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
    assert!(matches!(syncer.sync_once().unwrap(), Outcome::Applied { .. }));
    assert_eq!(store.get(&Key::new(Kind::ConfigMap, "default", "web")).unwrap()["data"]["greeting"], "pushed");
    // The ledger lives in the mirror; the remote is not written.
    assert_eq!(ledger::read(&dir.path().join("mirror"), 10).unwrap().len(), 2);
    assert!(ledger::read(&remote, 10).unwrap().is_empty());
    // An unreachable remote is an error, not a refusal.
    let gone =
        Source::open(SourceConfig { repo: "file:///nonexistent/repo.git".into(), branch: None, path: "".into(), mirror_dir: dir.path().join("m2") }).unwrap();
    assert!(matches!(gone.fetch(), Err(SyncError::Fetch { .. })));
}

#[test]
fn every_caller_asking_for_a_sync_at_once_hears_back() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    commit(dir.path(), "apps/web.yaml", CONFIG, "add web");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let syncer = syncer(dir.path(), store);
    // A ref moved, and two callers ask while the loop lets the burst
    // pass: both wait on the one step that follows.
    let (triggers, received) = std::sync::mpsc::channel();
    let (first, first_outcome) = std::sync::mpsc::channel();
    let (second, second_outcome) = std::sync::mpsc::channel();
    triggers.send(Trigger::Changed).unwrap();
    triggers.send(Trigger::Now(Reply::new(move |outcome| drop(first.send(outcome))))).unwrap();
    triggers.send(Trigger::Now(Reply::new(move |outcome| drop(second.send(outcome))))).unwrap();
    let wake = triggers.clone();
    let running = std::thread::spawn(move || syncer.run(received, wake));
    for outcome in [first_outcome, second_outcome] {
        let outcome = outcome.recv_timeout(Duration::from_secs(30)).expect("every caller hears back").unwrap();
        assert!(matches!(outcome, Outcome::Unchanged { .. }), "{outcome:?}");
    }
    triggers.send(Trigger::Stop).unwrap();
    running.join().unwrap();
}
