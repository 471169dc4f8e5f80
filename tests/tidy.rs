//! Tidy checks that keep the docs honest: every crate is in the code map of
//! docs/ARCHITECTURE.md, every Rust file opens with a `//!` comment saying
//! what it is for, each crate depends only on what its design allows
//! (only the node runtime links libcontainer), and objects of a kind are
//! read from JSON in one place.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_committed_schemas_are_what_the_model_generates() {
    for &kind in driftless_model::Kind::DECLARABLE {
        let committed = std::fs::read_to_string(root().join("schemas/json").join(driftless_schemas::file_name(kind))).unwrap_or_default();
        assert!(
            committed == driftless_schemas::generate::render(kind),
            "schemas/json/{} is stale: run `cargo run -p driftless-schemas --features generate --example regenerate` and commit",
            driftless_schemas::file_name(kind)
        );
    }
}

#[test]
fn every_crate_is_in_the_architecture_code_map() {
    let architecture = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest.split("members = [").nth(1).unwrap().split(']').next().unwrap();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        assert!(architecture.contains(&format!("`{member}/`")), "docs/ARCHITECTURE.md does not describe `{member}/`");
    }
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest.split("members = [").nth(1).unwrap().split(']').next().unwrap().to_owned();
    let mut files = Vec::new();
    for dir in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()).chain(["tests"]) {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("//!"), "{} must start with a //! comment", file.display());
    }
}

/// The workspace crates each crate may depend on (normal dependencies; the
/// binary, `daemon`, wires everything). The graph is part of the design:
/// contracts live in light crates, so that a crate needing a trait does not
/// link what implements it (the sync loop and the API link neither the
/// controllers nor libcontainer).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("manifest", &[]),
    ("schemas", &["model"]),
    ("validate", &["model", "manifest", "schemas"]),
    ("diff", &["model"]),
    ("nodeapi", &["model"]),
    ("events", &["model", "store"]),
    ("routes", &[]),
    ("store", &["model"]),
    ("image", &[]),
    ("reaper", &[]),
    ("runtime", &["model", "nodeapi", "routes", "image", "reaper", "telemetry"]),
    ("controllers", &["model", "store", "nodeapi", "events", "telemetry"]),
    ("sync", &["model", "manifest", "validate", "diff", "store", "events", "telemetry", "signatures", "secrets"]),
    ("printers", &["model"]),
    ("api", &["model", "store", "nodeapi", "sync", "diff", "printers", "schemas", "telemetry"]),
    ("dns", &["model", "telemetry"]),
    ("proxy", &["routes", "telemetry"]),
    ("ingress", &["model"]),
    ("write", &["model", "manifest", "validate", "diff", "secrets"]),
    ("forge", &["telemetry"]),
    ("signatures", &[]),
    ("secrets", &["manifest"]),
    ("telemetry", &[]),
    ("ui", &["model", "store", "sync", "diff", "api", "printers", "manifest", "validate"]),
];

/// External crates that touch namespaces, cgroups, mounts or container
/// processes, and the only crates that may depend on them.
const NODE_ONLY: &[(&str, &[&str])] = &[("libcontainer", &["runtime"]), ("libcgroups", &["runtime"])];

fn members() -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    manifest["workspace"]["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect()
}

/// A member's normal dependencies, by package name.
fn dependencies(member: &str) -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(root().join(member).join("Cargo.toml")).unwrap().parse().unwrap();
    let mut names: Vec<String> = manifest.get("dependencies").and_then(|d| d.as_table()).map(|d| d.keys().cloned().collect()).unwrap_or_default();
    // Target-specific dependencies count too.
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for target in targets.values() {
            names.extend(target.get("dependencies").and_then(|d| d.as_table()).into_iter().flat_map(|d| d.keys().cloned()));
        }
    }
    names
}

#[test]
fn each_crate_depends_only_on_what_its_design_allows() {
    let members = members();
    for member in members.iter().filter(|m| *m != "daemon") {
        let allowed = ALLOWED.iter().find(|(name, _)| name == member).unwrap_or_else(|| panic!("tests/tidy.rs: add `{member}` to ALLOWED")).1;
        for dependency in dependencies(member) {
            if let Some(workspace) = dependency.strip_prefix("driftless-") {
                assert!(allowed.contains(&workspace), "`{member}` depends on `{workspace}`, which its design does not allow (tests/tidy.rs ALLOWED)");
            }
            if let Some((_, only)) = NODE_ONLY.iter().find(|(name, _)| *name == dependency) {
                assert!(only.contains(&member.as_str()), "`{member}` depends on `{dependency}`: only the node runtime touches containers");
            }
        }
    }
    for (name, _) in ALLOWED {
        assert!(members.iter().any(|m| m == name), "tests/tidy.rs ALLOWED names `{name}`, which is not a member");
    }
}

/// The crates that may link libcontainer, directly or through others.
#[test]
fn only_the_runtime_and_the_binary_link_libcontainer() {
    let members = members();
    // Workspace crates whose dependency closure reaches `runtime`.
    let mut links: Vec<&str> = vec!["runtime"];
    loop {
        let before = links.len();
        for member in &members {
            if !links.contains(&member.as_str()) && dependencies(member).iter().any(|d| d.strip_prefix("driftless-").is_some_and(|w| links.contains(&w))) {
                links.push(member);
            }
        }
        if links.len() == before {
            break;
        }
    }
    links.sort_unstable();
    assert_eq!(links, ["daemon", "runtime"]);
}

/// Every crate reads a kind's object from JSON through `KindOf::from_json`
/// (driftless-model), never with serde itself: serde's code for a kind is
/// generic, so each crate calling it got its own copy of it, six resident
/// copies of a pod's in the daemon (docs/benchmarks.md, issue 21). Tests
/// may build objects however they like.
#[test]
fn kinds_are_read_from_json_in_one_place() {
    let table = std::fs::read_to_string(root().join("model/src/kind.rs")).unwrap();
    let types: Vec<&str> =
        table.lines().filter_map(|line| line.split(" => k8s_openapi::").nth(1)).filter_map(|path| path.split(',').next()?.rsplit("::").next()).collect();
    assert!(types.contains(&"Pod") && types.contains(&"Deployment"), "the kind table moved: {types:?}");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest.split("members = [").nth(1).unwrap().split(']').next().unwrap().to_owned();
    let mut files = Vec::new();
    for dir in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        rust_files(&root().join(dir).join("src"), &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || file.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for ty in &types {
            for form in [format!("{ty}::deserialize("), format!("from_value::<{ty}>("), format!(": {ty} = serde_json::from_value(")] {
                if code.contains(&form) {
                    found.push(format!("{}: `{form}`", file.strip_prefix(root()).unwrap_or(&file).display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "read kinds with `KindOf::from_json` instead:\n{}", found.join("\n"));
}
