//! Quantities (`500m`, `1.5Gi`, `1e3`): a parsed quantity prints in a form
//! that parses to the same quantity.
#![no_main]

use driftless_model::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(quantity) = text.parse::<Quantity>() {
        let printed = quantity.to_string();
        let again: Quantity = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(again.to_string(), printed, "{text:?}");
    }
});
