//! What kubectl shows for an object in a table: its columns for each kind
//! ([`columns`], the column sets of kubectl's `printers.go`, `-o wide`
//! included) and ages in its format ([`age`]). The CLI renders them as
//! text; the API serves them as `meta.k8s.io/v1` Tables, so `kubectl get`
//! and `driftless get` print the same thing from one implementation; and
//! the cells of `top` ([`top`]).
//!
//! Must not touch: I/O. Everything here is a function of an object's JSON
//! and the time.

pub mod age;
pub mod columns;
pub mod top;
