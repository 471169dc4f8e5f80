//! The patches kubectl sends (`kubectl patch`, `apply`, `edit`, `scale`
//! through the API): any Content-Type, any document and any patch body. A
//! JSON merge patch applied twice gives what it gave once (RFC 7396).
//! The input is the Content-Type, the document and the patch, split at
//! the first two NUL bytes.
#![no_main]

use driftless_write::merge::{PatchType, apply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut parts = bytes.splitn(3, |b| *b == 0);
    let (Some(content_type), Some(document), Some(patch)) = (parts.next(), parts.next(), parts.next()) else { return };
    let Some(kind) = std::str::from_utf8(content_type).ok().and_then(PatchType::from_content_type) else { return };
    let (Ok(document), Ok(patch)) = (serde_json::from_slice::<serde_json::Value>(document), serde_json::from_slice::<serde_json::Value>(patch)) else { return };
    let Ok(once) = apply(kind, &document, &patch) else { return };
    if kind == PatchType::Merge {
        let twice = apply(kind, &once, &patch).expect("a merge patch that applied once applies again");
        assert_eq!(once, twice, "a merge patch is idempotent");
    }
});
