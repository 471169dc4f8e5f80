//! The dashboard's pages, one module each.

pub(crate) mod history;
pub(crate) mod login;
pub(crate) mod overview;
pub(crate) mod workloads;
