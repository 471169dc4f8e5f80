//! Names of the metadata records more than one crate reads or writes.

/// The prefix of the records of Jobs removed after their
/// `ttlSecondsAfterFinished`.
pub const JOB_RUN_PREFIX: &str = "job-run/";

/// The record of a Job its TTL removed: the Job as it was at its removal.
/// The Job controller writes it in the batch that removes the Job; the sync
/// loop reads it so the same spec is not run again, and drops it when git
/// stops declaring the Job.
pub fn job_run(namespace: &str, name: &str) -> String {
    format!("{JOB_RUN_PREFIX}{namespace}/{name}")
}
