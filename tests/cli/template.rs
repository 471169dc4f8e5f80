//! Every fixture is a test: the repository template validates, and stops
//! validating the moment an unknown field is slipped into any object.

use std::path::Path;

use crate::support::{Repo, driftless_in};

fn template_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../repo-template");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn template_manifests_are_valid_and_strict() {
    let files = template_files();
    assert!(files.len() >= 3, "{files:?}");
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../repo-template");
    let run = driftless_in(&template, &["validate", "apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{n} resources in {n} files: {n} valid, 0 invalid\n", n = files.len()), "no warnings either");

    let work = Repo::folder();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();

        // An unknown key at the top, in metadata and in spec (or data) must each be caught.
        for (anchor, bogus) in [("metadata:\n", "metadata:\n  bogusField: 1\n"), ("kind:", "bogusTopLevel: 1\nkind:")] {
            work.write("bad.yaml", &text.replacen(anchor, bogus, 1));
            let run = driftless_in(work.path(), &["validate", "bad.yaml"]);
            assert_eq!(run.code, 1, "{} with {bogus:?}: {run:?}", file.display());
            assert!(run.stdout.contains("unknown field \"bogus"), "{run:?}");
        }
    }
}
