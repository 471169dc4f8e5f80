//! SOPS's file format, as far as YAML and JSON files with age recipients
//! go: the positioned tree (`tree`), SOPS's walk over it (`walk`), the
//! `sops:` block (`metadata`), the value cipher (`cipher`), the MAC
//! (`mac`) and Go's typing of values (`value`).
//!
//! Nothing here reads files or keys; `decrypt` and `encrypt` put it
//! together.

pub(crate) mod cipher;
pub(crate) mod mac;
pub(crate) mod metadata;
pub(crate) mod tree;
pub(crate) mod value;
pub(crate) mod walk;
