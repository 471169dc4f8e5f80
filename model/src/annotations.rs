//! Annotation names more than one crate reads or writes.

/// On every object the sync applied: the commit that last changed it,
/// `<short id> <subject>`. Its presence marks an object as declared by
/// git, and so as prunable when git no longer declares it.
pub const SOURCE_COMMIT: &str = "driftless.dev/commit";

/// kubectl's `--record` annotation, which `rollout history` shows.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// kubectl's last-applied annotation; it holds the whole object, Secret
/// values and all.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// On a ReplicaSet a Deployment made, and on a StatefulSet's or
/// DaemonSet's ControllerRevision: the commit (the short id of
/// [`SOURCE_COMMIT`]) that declared the template it runs, at the revision
/// it was made or made current again. `rollout undo` reverts or reads it.
pub const REVISION_COMMIT: &str = "driftless.dev/revision-commit";
