//! The ledger: every sync recorded as a commit on a ref of its own in the
//! watched repository (`refs/driftless/applied`, never a branch of the
//! user's), so `git log refs/driftless/applied` is the audit trail.
//!
//! Each commit's tree holds the objects as applied (`<namespace>/<kind>/
//! <name>.yaml`, cluster-scoped ones under `_cluster/`; defaults filled,
//! Secret values redacted); a refusal keeps the previous tree. Its message
//! names the result and source commit on the first line, then git trailers:
//!
//! ```text
//! applied 1a2b3c4: scale web to 5
//!
//! Source-Commit: 1a2b3c4d...
//! Source-Author: Ada <ada@example.com>
//! Source-Date: 2026-12-01T18:00:00Z
//! Result: applied
//! Action: update Deployment default/web (scales)
//! Driftless-Verb: scale
//! ```
//!
//! (the last lines are the source commit's own `Driftless-*` trailers,
//! when the write path made it).

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository, Signature};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Action, Change, SyncError};

/// The ref the ledger lives on.
pub const LEDGER_REF: &str = "refs/driftless/applied";

/// One sync, as the ledger records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The ledger commit's id (empty before it is written).
    pub id: String,
    /// The source commit synced.
    pub source: String,
    /// Its subject.
    pub subject: String,
    /// Its author, `Name <email>`.
    pub author: String,
    /// Its author time, seconds since the epoch.
    pub time: i64,
    /// When the sync happened, seconds since the epoch.
    pub synced_at: i64,
    /// `applied` or `refused`.
    pub result: String,
    /// What the sync changed.
    pub actions: Vec<Action>,
    /// Why it was refused.
    pub errors: Vec<String>,
    /// The source commit's `Driftless-*` trailers (the verb that made it,
    /// the object, what it reverts or rolls back).
    #[serde(default)]
    pub trailers: Vec<String>,
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

impl LedgerEntry {
    /// Whether this entry (as read from git) records the same sync as
    /// `other` (as held in the store): the same source commit, synced at
    /// the same second, with the same result and notes. (Two syncs of one
    /// commit can share a second: a store rebuilt at once applies the head
    /// again, and its entry says so in a trailer.)
    pub fn records(&self, other: &LedgerEntry) -> bool {
        self.source == other.source && self.synced_at == other.synced_at && self.result == other.result && self.trailers == other.trailers
    }

    /// What it did, shortly: `2 created, 1 updated`, `no changes`, or
    /// `1 error` for a refusal (`history` and the dashboard say the same).
    pub fn changes(&self) -> String {
        if self.result == "refused" {
            return if self.errors.len() == 1 { "1 error".to_owned() } else { format!("{} errors", self.errors.len()) };
        }
        let count = |c: Change| self.actions.iter().filter(|a| a.change == c).count();
        let parts: Vec<String> = [(Change::Create, "created"), (Change::Update, "updated"), (Change::Replace, "replaced"), (Change::Delete, "deleted")]
            .into_iter()
            .filter(|(c, _)| count(*c) > 0)
            .map(|(c, word)| format!("{} {word}", count(c)))
            .collect();
        if parts.is_empty() { "no changes".to_owned() } else { parts.join(", ") }
    }

    fn message(&self) -> String {
        let short = &self.source[..self.source.len().min(7)];
        let mut m = format!("{} {short}: {}\n\n", self.result, self.subject);
        m += &format!("Source-Commit: {}\nSource-Author: {}\nSource-Date: {}\nResult: {}\n", self.source, self.author, rfc3339(self.time), self.result);
        for action in &self.actions {
            m += &format!("Action: {} {}", action.change.as_str(), action.object);
            if !action.effect.is_empty() {
                m += &format!(" ({})", action.effect);
            }
            m.push('\n');
        }
        for error in &self.errors {
            m += &format!("Error: {}\n", error.replace('\n', " "));
        }
        for trailer in &self.trailers {
            m += &format!("{trailer}\n");
        }
        m
    }

    fn parse(id: String, message: &str, synced_at: i64) -> LedgerEntry {
        let mut entry = LedgerEntry { id, synced_at, ..Default::default() };
        entry.subject = message.lines().next().and_then(|l| l.split_once(": ")).map(|(_, s)| s.to_owned()).unwrap_or_default();
        for line in message.lines() {
            let Some((key, value)) = line.split_once(": ") else { continue };
            match key {
                "Source-Commit" => entry.source = value.to_owned(),
                "Source-Author" => entry.author = value.to_owned(),
                "Source-Date" => entry.time = value.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or(0),
                "Result" => entry.result = value.to_owned(),
                "Action" => {
                    // `update Deployment default/web (rolls pods)`: names
                    // hold no spaces or parentheses, effects follow them.
                    let (change, rest) = value.split_once(' ').unwrap_or((value, ""));
                    let (object, effect) = match rest.split_once(" (") {
                        Some((object, effect)) => (object, effect.trim_end_matches(')')),
                        None => (rest, ""),
                    };
                    entry.actions.push(Action { change: Change::parse(change), object: object.to_owned(), effect: effect.to_owned() });
                }
                "Error" => entry.errors.push(value.to_owned()),
                _ if key.starts_with("Driftless-") => entry.trailers.push(line.to_owned()),
                _ => {}
            }
        }
        entry
    }
}

/// Renders applied objects as the ledger's files: path → YAML.
pub fn render(objects: &[Value]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for object in objects {
        let mut object = object.clone();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("Unknown").to_owned();
        let meta = object.get("metadata").cloned().unwrap_or_default();
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("unnamed").to_owned();
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("_cluster").to_owned();
        if kind == "Secret" {
            for field in ["data", "stringData"] {
                if let Some(map) = object.get_mut(field).and_then(Value::as_object_mut) {
                    for value in map.values_mut() {
                        *value = Value::from("(redacted)");
                    }
                }
            }
        }
        let yaml = serde_yaml_ng::to_string(&object).unwrap_or_default();
        files.insert(format!("{namespace}/{}/{name}.yaml", kind.to_ascii_lowercase()), yaml.into_bytes());
    }
    files
}

fn write_tree(repo: &Repository, files: &BTreeMap<String, Vec<u8>>) -> Result<Oid, git2::Error> {
    enum Node {
        File(Oid),
        Dir(BTreeMap<String, Node>),
    }
    fn insert(dir: &mut BTreeMap<String, Node>, parts: &[&str], blob: Oid) {
        match parts {
            [] => {}
            [file] => {
                dir.insert((*file).to_owned(), Node::File(blob));
            }
            [first, rest @ ..] => {
                let entry = dir.entry((*first).to_owned()).or_insert_with(|| Node::Dir(BTreeMap::new()));
                if let Node::Dir(sub) = entry {
                    insert(sub, rest, blob);
                }
            }
        }
    }
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    let odb = repo.odb()?;
    for (path, bytes) in files {
        // Most objects are unchanged since the last sync: their blob is
        // there already, and libgit2 would still write (and then delete) a
        // temporary file for each (20-88 ms per sync at 155 objects).
        let id = Oid::hash_object(git2::ObjectType::Blob, bytes)?;
        let blob = if odb.exists(id) { id } else { repo.blob(bytes)? };
        let parts: Vec<&str> = path.split('/').collect();
        insert(&mut root, &parts, blob);
    }
    fn build(repo: &Repository, dir: &BTreeMap<String, Node>) -> Result<Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, node) in dir {
            match node {
                Node::File(oid) => builder.insert(name, *oid, 0o100644)?,
                Node::Dir(sub) => builder.insert(name, build(repo, sub)?, 0o040000)?,
            };
        }
        builder.write()
    }
    build(repo, &root)
}

/// Appends `entry` to the ledger of the repository at `repo`. `files` is
/// the new tree, or `None` to keep the previous one (a refusal).
pub fn record(repo: &Path, entry: &LedgerEntry, files: Option<&BTreeMap<String, Vec<u8>>>) -> Result<String, SyncError> {
    let repo = Repository::open(repo)?;
    let parent = repo.find_reference(LEDGER_REF).ok().and_then(|r| r.peel_to_commit().ok());
    let tree = match (files, &parent) {
        (Some(files), _) => write_tree(&repo, files)?,
        (None, Some(parent)) => parent.tree_id(),
        (None, None) => write_tree(&repo, &BTreeMap::new())?,
    };
    let tree = repo.find_tree(tree)?;
    let when = git2::Time::new(entry.synced_at, 0);
    let signature = Signature::new("Driftless", "driftless@localhost", &when)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo.commit(Some(LEDGER_REF), &signature, &signature, &entry.message(), &tree, &parents)?;
    Ok(id.to_string())
}

/// The ledger as the store knows it, newest first, at most `limit`
/// entries: what git holds, after the entry the store holds but git does
/// not yet. A sync writes its outcome to the store first and the ledger
/// commit after (see `Syncer::finish_pending`), so a reader between the
/// two, or after a kill between them, still sees every sync `status` has.
pub fn read_with_pending(repo: &Path, limit: usize, pending: Option<LedgerEntry>) -> Result<Vec<LedgerEntry>, SyncError> {
    let mut entries = read(repo, limit)?;
    if let Some(pending) = pending.filter(|p| !entries.first().is_some_and(|e| e.records(p))) {
        entries.insert(0, pending);
        entries.truncate(limit);
    }
    Ok(entries)
}

/// The ledger, newest first, at most `limit` entries.
pub fn read(repo: &Path, limit: usize) -> Result<Vec<LedgerEntry>, SyncError> {
    let repo = Repository::open(repo)?;
    let Ok(tip) = repo.find_reference(LEDGER_REF) else { return Ok(vec![]) };
    let mut walk = repo.revwalk()?;
    walk.push(tip.peel_to_commit()?.id())?;
    let mut entries = Vec::new();
    for oid in walk.take(limit) {
        let commit = repo.find_commit(oid?)?;
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        entries.push(LedgerEntry::parse(commit.id().to_string(), &message, commit.time().seconds()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_commits_and_refusals_keep_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let applied = LedgerEntry {
            source: "a".repeat(40),
            subject: "scale web".into(),
            author: "Ada <ada@example.com>".into(),
            time: 1_800_000_000,
            synced_at: 1_800_000_100,
            result: "applied".into(),
            actions: vec![Action { change: Change::Update, object: "Deployment default/web".into(), effect: "scales".into() }],
            ..Default::default()
        };
        let secret = serde_json::json!({"kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}});
        let files = render(&[secret]);
        let yaml = String::from_utf8(files["default/secret/s.yaml"].clone()).unwrap();
        assert!(yaml.contains("(redacted)") && !yaml.contains("aHVudGVyMg"));
        record(dir.path(), &applied, Some(&files)).unwrap();
        let refused = LedgerEntry {
            source: "b".repeat(40),
            result: "refused".into(),
            errors: vec!["apps/web.yaml:3:4: error: Deployment/web: spec.replicas: must be greater than or equal to 0".into()],
            synced_at: 1_800_000_200,
            ..applied.clone()
        };
        record(dir.path(), &refused, None).unwrap();
        let entries = read(dir.path(), 10).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].result, "refused");
        // The store's pending entry shows first until git has it, once.
        let next = LedgerEntry { source: "c".repeat(40), synced_at: 1_800_000_300, ..refused.clone() };
        let shown = read_with_pending(dir.path(), 10, Some(next.clone())).unwrap();
        assert_eq!(shown.iter().map(|e| e.source.as_str()).collect::<Vec<_>>(), [next.source.as_str(), &refused.source, &applied.source]);
        assert_eq!(read_with_pending(dir.path(), 10, Some(refused.clone())).unwrap().len(), 2, "already in git");
        assert_eq!(read_with_pending(dir.path(), 1, Some(next)).unwrap().len(), 1, "the limit holds");
        assert_eq!(entries[0].errors, refused.errors);
        assert_eq!(entries[1].actions, applied.actions);
        assert_eq!(entries[1].author, applied.author);
        assert_eq!(entries[1].time, applied.time);
        let repo = Repository::open(dir.path()).unwrap();
        let tip = repo.find_reference(LEDGER_REF).unwrap().peel_to_commit().unwrap();
        assert_eq!(tip.tree_id(), tip.parent(0).unwrap().tree_id(), "a refusal changes nothing applied");
        assert!(repo.head().is_err(), "no branch of the user's was touched");
    }
}
