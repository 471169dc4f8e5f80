//! The dashboard's pages, one module each.

pub(crate) mod file;
pub(crate) mod history;
pub(crate) mod login;
pub(crate) mod object;
pub(crate) mod overview;
pub(crate) mod plan;
pub(crate) mod workloads;
