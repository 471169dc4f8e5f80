//! Plans: the actions that turn one set of objects into another, and their
//! text, markdown and JSON forms.
//!
//! Owns: normalizing objects so that equal meaning compares equal
//! ([`normalize`]: API defaults, canonical quantities, sorted maps, no
//! status), the field-level comparison, the classification of each update by
//! its effect on running pods ([`Effect`]), redaction of Secret values, and
//! rendering ([`render`]).
//!
//! **Architecture Invariant:** this crate performs no I/O and reads no clock:
//! a plan is a pure function of its two inputs, so `driftless plan` on a pull
//! request and the daemon's apply agree by construction.
//!
//! **Guarantee:** no Secret value, encoded or not, appears in any output;
//! a changed value shows as changed.

mod compare;
mod normalize;
mod plan;
pub mod render;

pub use compare::FieldChange;
pub use normalize::normalize;
pub use plan::{Action, Change, Effect, Plan, Summary, plan};
