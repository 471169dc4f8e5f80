//! The whole validation pipeline (loading, conversion of older versions,
//! schemas, rules, typed objects, cross-object references) on one file of
//! any bytes. Every finding names a line of that file.
#![no_main]

use std::sync::Arc;

use driftless_manifest::RawFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let lines = driftless_fuzz::yaml_lines(bytes);
    let file = RawFile::new(Arc::from("apps/f.yaml"), bytes.to_vec()).parse();
    let report = driftless_validate::validate(std::iter::once(file));
    for diagnostic in &report.diagnostics {
        assert!(diagnostic.line >= 1 && diagnostic.line <= lines + 1, "{diagnostic:?} in {lines} lines");
    }
});
