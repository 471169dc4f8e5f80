//! Printing objects as kubectl does: tables with its columns for each
//! kind ([`columns`]), ages in its format ([`age`]), JSONPath templates
//! ([`jsonpath`]), YAML, JSON and names.

pub use driftless_printers::{age, columns};
pub mod jsonpath;
pub mod table;
