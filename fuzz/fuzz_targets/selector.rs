//! Label selectors as `-l` and `?labelSelector=` take them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = driftless_model::selector::Selector::parse(text);
});
