//! The cluster DNS zone, built from Services, Endpoints and Pods as the API
//! serves them (JSON, any shape serde accepts): it never fails but for the
//! domain, and what it serves prints as a zone file.
#![no_main]

use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Objects {
    domain: String,
    services: Vec<Service>,
    endpoints: Vec<Endpoints>,
    pods: Vec<Pod>,
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(objects) = serde_json::from_slice::<Objects>(bytes) else { return };
    let domain = if objects.domain.is_empty() { "cluster.local" } else { objects.domain.as_str() };
    if let Ok(zone) = driftless_dns::Zone::build(domain, &objects.services, &objects.endpoints, &objects.pods) {
        let _ = zone.zone_file();
    }
});
