//! Which refs a verified delivery moved, read from each forge's documented
//! payload shape:
//!
//! - GitHub, Gitea, Forgejo: event `push` with `ref` and `after`; `ping`.
//! - GitLab: `object_kind` `push` or `tag_push` with `ref` and `after`.
//! - Bitbucket Cloud: `repo:push`, `push.changes[].new` (`type`, `name`,
//!   `target.hash`), `new` null for a deletion.
//! - Bitbucket Server / Data Center: `repo:refs_changed`,
//!   `changes[].ref` (`id`, `displayId`, `type`) and `toHash`;
//!   `diagnostics:ping` from its "test connection" button.
//! - Generic: a JSON body with `ref` (and optionally `after`) names the ref;
//!   an empty body or one without `ref` counts as a push of the watched branch.
//!
//! Pure and only reads the fields above (serde ignores the rest). Must not
//! decide what to do with the refs: the server compares them to the watched
//! branch.

use http::HeaderMap;
use serde::Deserialize;

use super::Forge;

/// What a verified delivery says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Refs moved; Bitbucket may batch several into one delivery.
    Push(Vec<RefPush>),
    /// A generic delivery that names no ref: treat it as a push of the
    /// watched branch (a CI job saying "sync now").
    Trigger {
        /// The new head, if the body said.
        after: Option<String>,
    },
    /// The forge checking the hook works (GitHub's and Gitea's `ping`,
    /// Bitbucket Server's `diagnostics:ping`).
    Ping,
    /// Any other event (issues, pull requests, ...), by its header name.
    Other(String),
}

/// One ref a push moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPush {
    /// Branch, tag, or something else (`refs/pull/...`, Mercurial bookmarks).
    pub kind: RefKind,
    /// The short name: `main` for `refs/heads/main`, `v1` for `refs/tags/v1`.
    pub name: String,
    /// The new head, or `None` when the push deleted the ref.
    pub after: Option<String>,
}

/// The namespace of a pushed ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/*`.
    Branch,
    /// `refs/tags/*`.
    Tag,
    /// Anything else.
    Other,
}

/// Why a verified body could not be read (answered with 400).
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// The body is not JSON, or a documented field has the wrong type.
    #[error("the {forge} payload is not the documented json")]
    Json {
        /// Which forge's shape was expected.
        forge: Forge,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a verified delivery's event.
pub fn parse(forge: Forge, headers: &HeaderMap, body: &[u8]) -> Result<Event, Malformed> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_owned();
    match forge {
        Forge::GitHub | Forge::Gitea | Forge::Forgejo => {
            let event = match forge {
                Forge::Forgejo => header("x-forgejo-event"),
                Forge::Gitea => header("x-gitea-event"),
                _ => header("x-github-event"),
            };
            match event.as_str() {
                "push" => {
                    let push: RefAfter = json(forge, body)?;
                    Ok(Event::Push(vec![ref_push(&push.git_ref, push.after)]))
                }
                "ping" => Ok(Event::Ping),
                _ => Ok(Event::Other(event)),
            }
        }
        Forge::GitLab => {
            let event = header("x-gitlab-event");
            // System hooks carry push events under "System Hook", so the body's
            // object_kind decides, not the header.
            if !matches!(event.as_str(), "Push Hook" | "Tag Push Hook" | "System Hook") {
                return Ok(Event::Other(event));
            }
            let push: GitLabPush = json(forge, body)?;
            match push.object_kind.as_deref() {
                Some("push" | "tag_push") => match push.git_ref {
                    Some(git_ref) => Ok(Event::Push(vec![ref_push(&git_ref, push.after)])),
                    None => Err(missing(forge, "ref")),
                },
                _ => Ok(Event::Other(event)),
            }
        }
        Forge::Bitbucket | Forge::BitbucketServer => {
            let key = header("x-event-key");
            match key.as_str() {
                "repo:push" => {
                    let push: CloudPush = json(forge, body)?;
                    Ok(Event::Push(push.push.changes.into_iter().filter_map(CloudChange::into_ref_push).collect()))
                }
                "repo:refs_changed" => {
                    let push: ServerPush = json(forge, body)?;
                    Ok(Event::Push(push.changes.into_iter().map(ServerChange::into_ref_push).collect()))
                }
                "diagnostics:ping" => Ok(Event::Ping),
                _ => Ok(Event::Other(key)),
            }
        }
        Forge::Generic => {
            if body.trim_ascii().is_empty() {
                return Ok(Event::Trigger { after: None });
            }
            let generic: GenericPush = json(forge, body)?;
            match generic.git_ref {
                Some(git_ref) => Ok(Event::Push(vec![generic_ref_push(&git_ref, generic.after)])),
                None => Ok(Event::Trigger { after: generic.after.filter(|sha| !is_null_sha(sha)) }),
            }
        }
    }
}

impl Event {
    /// The push of `branch` in this event, if any.
    pub fn branch(&self, branch: &str) -> Option<&RefPush> {
        match self {
            Event::Push(refs) => refs.iter().find(|r| r.kind == RefKind::Branch && r.name == branch),
            _ => None,
        }
    }
}

fn json<'a, T: Deserialize<'a>>(forge: Forge, body: &'a [u8]) -> Result<T, Malformed> {
    serde_json::from_slice(body).map_err(|source| Malformed::Json { forge, source })
}

fn missing(forge: Forge, field: &'static str) -> Malformed {
    use serde::de::Error;
    Malformed::Json { forge, source: serde_json::Error::missing_field(field) }
}

/// Splits a full ref name into its namespace and short name.
fn ref_push(git_ref: &str, after: Option<String>) -> RefPush {
    let (kind, name) = if let Some(name) = git_ref.strip_prefix("refs/heads/") {
        (RefKind::Branch, name)
    } else if let Some(name) = git_ref.strip_prefix("refs/tags/") {
        (RefKind::Tag, name)
    } else {
        (RefKind::Other, git_ref)
    };
    RefPush { kind, name: name.to_owned(), after: after.filter(|sha| !is_null_sha(sha)) }
}

/// A generic sender may write `main` instead of `refs/heads/main`.
fn generic_ref_push(git_ref: &str, after: Option<String>) -> RefPush {
    if git_ref.starts_with("refs/") { ref_push(git_ref, after) } else { ref_push(&format!("refs/heads/{git_ref}"), after) }
}

/// Git's all-zero object name, which forges send as `after` for a deletion.
fn is_null_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

// === documented payload shapes (only the fields read) ===

#[derive(Deserialize)]
struct RefAfter {
    #[serde(rename = "ref")]
    git_ref: String,
    after: Option<String>,
}

#[derive(Deserialize)]
struct GitLabPush {
    object_kind: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct GenericPush {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct CloudPush {
    push: CloudChanges,
}

#[derive(Deserialize)]
struct CloudChanges {
    changes: Vec<CloudChange>,
}

#[derive(Deserialize)]
struct CloudChange {
    new: Option<CloudRef>,
    old: Option<CloudRef>,
}

#[derive(Deserialize)]
struct CloudRef {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    target: Option<CloudTarget>,
}

#[derive(Deserialize)]
struct CloudTarget {
    hash: Option<String>,
}

impl CloudChange {
    /// `new` is the ref after the push; it is null when the push deleted the
    /// ref, and then `old` names it.
    fn into_ref_push(self) -> Option<RefPush> {
        let deleted = self.new.is_none();
        let r = self.new.or(self.old)?;
        let kind = match r.kind.as_str() {
            "branch" => RefKind::Branch,
            "tag" | "annotated_tag" => RefKind::Tag,
            _ => RefKind::Other,
        };
        let after = if deleted { None } else { r.target.and_then(|t| t.hash) };
        Some(RefPush { kind, name: r.name, after })
    }
}

#[derive(Deserialize)]
struct ServerPush {
    changes: Vec<ServerChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerChange {
    #[serde(rename = "ref")]
    git_ref: ServerRef,
    to_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerRef {
    id: String,
    display_id: Option<String>,
}

impl ServerChange {
    fn into_ref_push(self) -> RefPush {
        // `id` is the full ref (refs/heads/main); `displayId` its short name.
        let mut push = ref_push(&self.git_ref.id, self.to_hash);
        if push.kind == RefKind::Other
            && let Some(display) = self.git_ref.display_id
        {
            push.name = display;
        }
        push
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn other_events_are_named() {
        let h = headers("x-github-event", "issues");
        assert_eq!(parse(Forge::GitHub, &h, b"{}").unwrap(), Event::Other("issues".into()));
        let h = headers("x-gitlab-event", "Merge Request Hook");
        assert_eq!(parse(Forge::GitLab, &h, b"{}").unwrap(), Event::Other("Merge Request Hook".into()));
        let h = headers("x-event-key", "pr:opened");
        assert_eq!(parse(Forge::BitbucketServer, &h, b"{}").unwrap(), Event::Other("pr:opened".into()));
    }

    #[test]
    fn generic_shapes() {
        let none = HeaderMap::new();
        assert_eq!(parse(Forge::Generic, &none, b"").unwrap(), Event::Trigger { after: None });
        assert_eq!(parse(Forge::Generic, &none, br#"{"after":"abc"}"#).unwrap(), Event::Trigger { after: Some("abc".into()) });
        let e = parse(Forge::Generic, &none, br#"{"ref":"main","after":"abc"}"#).unwrap();
        assert_eq!(e.branch("main").unwrap().after.as_deref(), Some("abc"));
        let e = parse(Forge::Generic, &none, br#"{"ref":"refs/tags/v1"}"#).unwrap();
        assert_eq!(e, Event::Push(vec![RefPush { kind: RefKind::Tag, name: "v1".into(), after: None }]));
        assert!(parse(Forge::Generic, &none, b"not json").is_err());
    }

    #[test]
    fn push_with_wrong_types_is_malformed() {
        let h = headers("x-github-event", "push");
        assert!(parse(Forge::GitHub, &h, br#"{"ref": 7}"#).is_err());
        assert!(parse(Forge::GitHub, &h, b"{").is_err());
        let h = headers("x-gitlab-event", "Push Hook");
        assert!(parse(Forge::GitLab, &h, br#"{"object_kind":"push"}"#).is_err());
    }

    #[test]
    fn null_sha_is_a_deletion() {
        let p = ref_push("refs/heads/main", Some("0000000000000000000000000000000000000000".into()));
        assert_eq!(p.after, None);
        assert_eq!(p.kind, RefKind::Branch);
    }
}
