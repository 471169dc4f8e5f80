//! End-to-end tests of the `driftless` binary: real files, real `git`
//! repositories and commits in temporary folders, the real built binary.
//! One test binary (as ripgrep and hickory do) with a module per command.

mod help;
mod hostile_images;
#[path = "../support/hostile_registry.rs"]
mod hostile_registry;
mod image;
#[path = "../support/images.rs"]
mod images;
mod init;
mod plan;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../support/registry.rs"]
mod registry;
mod support;
mod template;
mod validate;
