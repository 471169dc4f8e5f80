//! The change engine: what turning the live state into a desired set of
//! objects does, and its text, markdown and JSON forms.
//!
//! Owns: the one decision of what a change does ([`plan`]): per object a
//! create, an update in place (with its effect on running pods, [`Effect`]),
//! a replace, a delete or nothing, and the changes Kubernetes refuses
//! (immutable fields, [`Refusal`]); normalizing objects so that equal
//! meaning compares equal ([`normalize`]: API defaults, canonical
//! quantities, sorted maps, no status or server bookkeeping); carrying the
//! fields allocators fill in from the live object; redacting Secret values;
//! and rendering ([`render`]).
//!
//! `driftless plan` calls [`plan`] with the revision the daemon runs as the
//! live side ([`Revision`]); the sync loop calls it with its store and turns
//! the same [`Plan`] into its batch and ledger entry. A property test in
//! the sync crate holds the two to the same verbs on the same objects.
//!
//! Must not touch: the store, files, git or the clock.
//!
//! **Architecture Invariant:** this crate performs no I/O and reads no clock:
//! a plan is a pure function of its two inputs.
//!
//! **Guarantee:** no Secret value, encoded or not, appears in any output;
//! a changed value shows as changed. (The object the daemon writes,
//! [`Action::write`], holds the values and never prints.)

mod autoscaled;
mod carry;
mod compare;
mod immutable;
mod live;
mod normalize;
mod plan;
pub mod render;

pub use autoscaled::Held;
pub use compare::FieldChange;
pub use immutable::Refusal;
pub use live::{Live, LiveObject, Revision, Snapshot, ref_from_json, ref_json};
pub use normalize::{applied, normalize, normalize_stored};
pub use plan::{Action, Change, Effect, Plan, Summary, plan, redacted};
