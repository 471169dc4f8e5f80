//! ControllerRevisions: the pod template history that StatefulSets and
//! DaemonSets keep, one revision per distinct template, named
//! `<owner>-<hash>` and numbered in order, as Kubernetes keeps them (what
//! `rollout history` lists and pods' `controller-revision-hash` names).
//! Going back to an earlier template makes its revision the newest again,
//! and each revision records the commit that declared its template
//! ([`REVISION_COMMIT`]) for `rollout undo`.

use std::collections::{BTreeMap, HashMap};

use driftless_model::Kind;
use driftless_model::annotations::{CHANGE_CAUSE, REVISION_COMMIT, SOURCE_COMMIT};
use driftless_model::k8s_openapi::api::apps::v1::ControllerRevision;
use driftless_model::k8s_openapi::api::core::v1::PodTemplateSpec;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use driftless_model::k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use driftless_store::{Batch, Op, Store, StoreExt, to_value};
use serde_json::json;

use crate::deployment::pod_template_hash;
use crate::{ReconcileError, owner};

/// The templates of an owner's revisions, and the revision of its current
/// template.
pub(crate) struct History {
    /// The current template's revision (`<owner>-<hash>`).
    pub(crate) update: String,
    /// Every revision's template, by revision name.
    pub(crate) templates: HashMap<String, PodTemplateSpec>,
}

/// The history of the `kind` object `owner` in `namespace`, with a
/// revision for `template` created if it has none (labelled `labels`).
pub(crate) fn history(
    store: &dyn Store,
    kind: Kind,
    owner: &ObjectMeta,
    namespace: &str,
    template: &PodTemplateSpec,
    collision_count: Option<i32>,
    labels: Option<BTreeMap<String, String>>,
) -> Result<History, ReconcileError> {
    let name = owner.name.clone().unwrap_or_default();
    let uid = owner.uid.clone().unwrap_or_default();
    let update = format!("{name}-{}", pod_template_hash(template, collision_count));
    let mut templates = HashMap::new();
    let mut highest = 0;
    let mut current: Option<ControllerRevision> = None;
    for revision in store.api::<ControllerRevision>().list(Some(namespace)) {
        if owner::controller_of_meta(&revision.metadata).is_none_or(|o| o.uid != uid) {
            continue;
        }
        highest = highest.max(revision.revision);
        let template = revision.data.as_ref().and_then(|d| serde_json::from_value::<PodTemplateSpec>(d.0["spec"]["template"].clone()).ok());
        if revision.metadata.name.as_deref() == Some(update.as_str()) {
            current = Some(revision.clone());
        }
        if let (Some(name), Some(template)) = (revision.metadata.name.clone(), template) {
            templates.insert(name, template);
        }
    }
    // The commit that declared the template now current: the owner's; and
    // the change cause `rollout history` shows (the owner's own, else that
    // commit and its subject), as a Deployment's ReplicaSets carry them.
    let owner_annotation = |name: &str| owner.annotations.as_ref().and_then(|a| a.get(name)).cloned();
    let commit = owner_annotation(SOURCE_COMMIT).and_then(|c| c.split_whitespace().next().map(str::to_owned));
    let cause = owner_annotation(CHANGE_CAUSE).or_else(|| owner_annotation(SOURCE_COMMIT));
    let mut noted = BTreeMap::new();
    if let Some(commit) = commit {
        noted.insert(REVISION_COMMIT.to_owned(), commit);
    }
    if let Some(cause) = cause {
        noted.insert(CHANGE_CAUSE.to_owned(), cause);
    }
    match current {
        Some(mut revision) if revision.revision < highest => {
            // Back to an earlier template: its revision becomes the newest,
            // as Kubernetes renumbers it, and records the commit that
            // brought it back.
            revision.revision = highest + 1;
            revision.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(noted);
            store.apply(Batch::one(Op::Update(to_value(&revision))))?;
        }
        Some(_) => {}
        None => {
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(update.clone()),
                    namespace: Some(namespace.to_owned()),
                    labels,
                    annotations: (!noted.is_empty()).then_some(noted),
                    owner_references: Some(vec![owner::reference(kind, owner)]),
                    ..Default::default()
                },
                data: Some(RawExtension(json!({"spec": {"template": template}}))),
                revision: highest + 1,
            };
            store.apply(Batch::one(Op::Create(to_value(&revision))))?;
            templates.insert(update.clone(), template.clone());
        }
    }
    Ok(History { update, templates })
}
