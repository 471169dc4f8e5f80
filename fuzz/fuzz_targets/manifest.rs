//! The manifest loader on any text: YAML streams (anchors, aliases, merge
//! keys, YAML 1.1 scalars, go-yaml's escapes) and JSON. It may refuse, at
//! a position inside the text; it may not panic, loop or blow up.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    for path in ["f.yaml", "f.json"] {
        match driftless_manifest::parse_file(Arc::from(path), text) {
            Ok(documents) => {
                for document in documents {
                    // Every object's position can be asked for.
                    let _ = document.origin.position("");
                    let _ = document.origin.position("/metadata/name");
                }
            }
            Err(error) => {
                let lines = driftless_fuzz::yaml_lines(bytes);
                assert!(error.pos.line >= 1 && error.pos.line <= lines + 1, "{error:?} in {lines} lines");
            }
        }
    }
});
