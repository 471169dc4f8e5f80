//! ConfigMaps and Secrets.

use std::collections::BTreeMap;

use base64::Engine;
use driftless_model::k8s_openapi::api::core::v1 as core;
use serde_json::Value;

use crate::names;
use crate::{Issues, Ptr};

/// The API server's limit on a ConfigMap's or Secret's data.
const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Secret types and the keys each requires.
const SECRET_TYPES: &[(&str, &[&str])] = &[
    ("Opaque", &[]),
    ("kubernetes.io/tls", &["tls.crt", "tls.key"]),
    ("kubernetes.io/basic-auth", &[]),
    ("kubernetes.io/ssh-auth", &["ssh-privatekey"]),
    ("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"]),
    ("kubernetes.io/dockercfg", &[".dockercfg"]),
    ("kubernetes.io/service-account-token", &[]),
    ("bootstrap.kubernetes.io/token", &[]),
];

/// Removes line breaks from Secret `data` values, as Go's base64 decoder
/// skips them: wrapped base64 (`tls.crt: |` and 64-column lines) is valid.
pub(crate) fn unwrap_secret_base64(value: &mut Value) {
    let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) else { return };
    for encoded in data.values_mut() {
        if let Value::String(text) = encoded
            && text.contains(['\r', '\n'])
        {
            text.retain(|c| c != '\r' && c != '\n');
        }
    }
}

/// Secret `data` values must be base64; checked on the raw value so that
/// the message names the key.
pub(crate) fn secret_base64(value: &Value, issues: &mut Issues) {
    let Some(data) = value.get("data").and_then(Value::as_object) else { return };
    for (key, encoded) in data {
        if let Some(text) = encoded.as_str()
            && base64::engine::general_purpose::STANDARD.decode(text).is_err()
        {
            issues.error(&Ptr::root().key("data").key(key), "invalid value: must be base64-encoded (use stringData for plain text)");
        }
    }
}

fn keys<'a>(keys: impl Iterator<Item = &'a String>, at: &Ptr, issues: &mut Issues) {
    for key in keys {
        issues.check(&at.key(key), names::config_key(key));
    }
}

pub(crate) fn config_map(cm: &core::ConfigMap, issues: &mut Issues) {
    let root = Ptr::root();
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    keys(data.into_iter().flat_map(BTreeMap::keys), &root.key("data"), issues);
    keys(binary.into_iter().flat_map(BTreeMap::keys), &root.key("binaryData"), issues);
    for key in binary.into_iter().flat_map(BTreeMap::keys) {
        if data.is_some_and(|d| d.contains_key(key)) {
            issues.error(&root.key("binaryData").key(key), format!("duplicate of key {key:?} present in `data`"));
        }
    }
    // The API server counts values only.
    let size: usize = data.into_iter().flatten().map(|(_, v)| v.len()).sum::<usize>() + binary.into_iter().flatten().map(|(_, v)| v.0.len()).sum::<usize>();
    if size > MAX_DATA_BYTES {
        issues.error(&root, format!("too long: data must have at most {MAX_DATA_BYTES} bytes"));
    }
}

pub(crate) fn secret(secret: &core::Secret, issues: &mut Issues) {
    let root = Ptr::root();
    keys(secret.data.iter().flat_map(BTreeMap::keys), &root.key("data"), issues);
    keys(secret.string_data.iter().flat_map(BTreeMap::keys), &root.key("stringData"), issues);
    let size: usize =
        secret.data.iter().flatten().map(|(_, v)| v.0.len()).sum::<usize>() + secret.string_data.iter().flatten().map(|(_, v)| v.len()).sum::<usize>();
    if size > MAX_DATA_BYTES {
        issues.error(&root, format!("too long: data must have at most {MAX_DATA_BYTES} bytes"));
    }
    let kind = secret.type_.as_deref().unwrap_or("Opaque");
    let has = |key: &str| secret.data.as_ref().is_some_and(|d| d.contains_key(key)) || secret.string_data.as_ref().is_some_and(|d| d.contains_key(key));
    // Point at whichever data map the manifest wrote.
    let data_at = match (&secret.data, &secret.string_data) {
        (None, Some(_)) => root.key("stringData"),
        _ => root.key("data"),
    };
    match SECRET_TYPES.iter().find(|(name, _)| *name == kind) {
        Some((_, required)) => {
            for key in *required {
                if !has(key) {
                    issues.error(&data_at, format!("missing required key {key:?} for a secret of type {kind}"));
                }
            }
        }
        // Custom types are allowed (any qualified name), as in Kubernetes.
        None => issues.check(&root.key("type"), names::qualified_name(kind)),
    }
    // As the API server: registry logins must be JSON, or kubelet could
    // not read them (the message never echoes the secret's contents).
    for (docker_type, key) in [("kubernetes.io/dockerconfigjson", ".dockerconfigjson"), ("kubernetes.io/dockercfg", ".dockercfg")] {
        if kind != docker_type {
            continue;
        }
        let in_data = secret.data.as_ref().and_then(|d| d.get(key)).map(|v| (root.key("data").key(key), v.0.as_slice()));
        let in_string = secret.string_data.as_ref().and_then(|d| d.get(key)).map(|v| (root.key("stringData").key(key), v.as_bytes()));
        for (at, bytes) in in_data.into_iter().chain(in_string) {
            if let Err(error) = serde_json::from_slice::<serde_json::Map<String, Value>>(bytes) {
                issues.error(&at, format!("invalid value: <secret contents redacted>: not a JSON object: {error}"));
            }
        }
    }
    if kind == "kubernetes.io/basic-auth" && !has("username") && !has("password") {
        issues.error(&data_at, "a secret of type kubernetes.io/basic-auth needs \"username\" or \"password\"");
    }
}
