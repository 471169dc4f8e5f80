//! JSON Schemas for every supported kind, and the validator that applies them.
//!
//! Owns: the committed schema files in `schemas/json/` (one per kind, named
//! as kubeconform and editors' YAML language servers expect, e.g.
//! `deployment-apps-v1.json`), the generator that derives them from the
//! object model ([`generate`]), and strict validation of one manifest value
//! against its kind's schema ([`SchemaSet`]).
//!
//! The schemas are strict: every object schema forbids properties it does not
//! list, so a misspelt field is an error, never silently dropped.
//!
//! Must not touch: files at run time (the schemas are embedded in the
//! binary), git, or anything beyond one value at a time; cross-object and
//! semantic rules belong to `driftless-validate`.
//!
//! Regenerate the files after changing the model with
//! `cargo run -p driftless-schemas --features generate --example regenerate`; a test fails while
//! they are stale.

#[cfg(feature = "generate")]
pub mod generate;
mod validator;

pub use validator::{SchemaError, SchemaSet, Violation};

use driftless_model::Kind;

/// The file name of a kind's schema: `<kind>[-<group>]-<version>.json`, all
/// lower case, with only the first label of the group, as kubeconform names
/// them.
pub fn file_name(kind: Kind) -> String {
    let group = kind.group().split('.').next().unwrap_or_default();
    let kind_name = kind.name().to_ascii_lowercase();
    if group.is_empty() { format!("{kind_name}-{}.json", kind.version()) } else { format!("{kind_name}-{group}-{}.json", kind.version()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_kubeconform() {
        assert_eq!(file_name(Kind::Deployment), "deployment-apps-v1.json");
        assert_eq!(file_name(Kind::Pod), "pod-v1.json");
        assert_eq!(file_name(Kind::Ingress), "ingress-networking-v1.json");
        assert_eq!(file_name(Kind::HorizontalPodAutoscaler), "horizontalpodautoscaler-autoscaling-v2.json");
    }
}
