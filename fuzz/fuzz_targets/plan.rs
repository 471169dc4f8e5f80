//! The change engine (`plan` = apply) on two fuzzed sets: the desired
//! objects (one manifest file through the whole validation pipeline) and
//! the live ones, as `driftless plan --live` receives them from a daemon
//! (the snapshot's wire form). The two halves of the input are split at
//! the first NUL byte.
#![no_main]

use std::sync::Arc;

use driftless_diff::{Snapshot, plan};
use driftless_manifest::RawFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (desired, live) = match bytes.iter().position(|b| *b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &b"{\"declared\": [], \"objects\": []}"[..]),
    };
    let file = RawFile::new(Arc::from("apps/f.yaml"), desired.to_vec()).parse();
    let report = driftless_validate::validate(std::iter::once(file));
    let Ok(live) = serde_json::from_slice::<serde_json::Value>(live) else { return };
    let Some(snapshot) = Snapshot::from_json(&live) else { return };
    let objects: Vec<_> = report.objects.iter().map(|(r, e)| (r, &e.object)).collect();
    let plan = plan(objects.iter().copied(), &snapshot);
    // Whatever it decides reads back as a summary, and an applicable plan
    // changes each object at most once.
    let _ = driftless_diff::render::summary_line(&plan.summary());
    if plan.is_applicable() {
        let mut seen = std::collections::HashSet::new();
        for action in &plan.actions {
            assert!(seen.insert(format!("{:?}", action.object)), "{:?} twice", action.object);
        }
    }
});
