//! The Ingress routing table, built from Ingresses, Services, Endpoints and
//! Secrets as the API serves them (JSON, any shape serde accepts), then
//! asked to route any host and path.
#![no_main]

use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Secret, Service};
use driftless_model::k8s_openapi::api::networking::v1::Ingress;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Objects {
    ingresses: Vec<Ingress>,
    services: Vec<Service>,
    endpoints: Vec<Endpoints>,
    secrets: Vec<Secret>,
    host: String,
    path: String,
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(objects) = serde_json::from_slice::<Objects>(bytes) else { return };
    let (table, _skipped) = driftless_ingress::IngressTable::build("nginx", &objects.ingresses, &objects.services, &objects.endpoints, &objects.secrets);
    if let Some(route) = table.route(&objects.host, &objects.path) {
        let _ = format!("{route:?}");
    }
    let _ = table.backends().len();
});
