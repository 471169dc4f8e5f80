//! `imagePullSecrets`: registry credentials from `kubernetes.io/dockerconfigjson`
//! (`.dockerconfigjson`, `{"auths": {...}}`) and legacy `kubernetes.io/dockercfg`
//! (`.dockercfg`, the same entries without `auths`) Secrets, matched to an
//! image as kubelet's keyring matches them.
//!
//! Kubelet's rules, kept here: a key is a registry host, optionally with a
//! scheme, a port and a path; the host may use `*.` globs per label; a key
//! with a path matches only repositories under it; the most specific key
//! (longest) wins; `index.docker.io`, `registry-1.docker.io` and
//! `docker.io` name one registry. An entry gives `username` and
//! `password`, or `auth` (base64 of `user:password`).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

pub use driftless_nodeapi::Credentials;

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

impl Entry {
    fn credentials(&self) -> Option<Credentials> {
        if let Some(user) = &self.username {
            return Some((user.clone(), self.password.clone().unwrap_or_default()));
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(self.auth.as_ref()?.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }
}

/// The registry entries of one Secret's data; unreadable data gives none.
fn entries(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Entry> {
    if let Some(json) = data.get(".dockerconfigjson") {
        return serde_json::from_slice::<DockerConfig>(json).map(|c| c.auths).unwrap_or_default();
    }
    if let Some(json) = data.get(".dockercfg") {
        return serde_json::from_slice(json).unwrap_or_default();
    }
    BTreeMap::new()
}

fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

/// Whether `pattern` (a host, with `*` labels allowed) matches `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (canonical_host(pattern), canonical_host(host));
    let split = |h: &str| -> (String, Option<String>) {
        match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name.to_ascii_lowercase(), Some(port.to_owned())),
            _ => (h.to_ascii_lowercase(), None),
        }
    };
    let ((p_name, p_port), (h_name, h_port)) = (split(pattern), split(host));
    if p_port != h_port {
        return false;
    }
    let (p_labels, h_labels): (Vec<&str>, Vec<&str>) = (p_name.split('.').collect(), h_name.split('.').collect());
    p_labels.len() == h_labels.len() && p_labels.iter().zip(&h_labels).all(|(p, h)| *p == "*" || p == h)
}

/// How well `key` matches an image in `host` at `repository`: the key's
/// length when it matches (longer is more specific), else `None`.
fn score(key: &str, host: &str, repository: &str) -> Option<usize> {
    let bare = key.split_once("://").map_or(key, |(_, rest)| rest).trim_end_matches('/');
    let (key_host, key_path) = bare.split_once('/').unwrap_or((bare, ""));
    if !host_matches(key_host, host) {
        return None;
    }
    // Docker Hub's legacy key `https://index.docker.io/v1/` names the
    // whole registry, not a `v1` repository.
    let key_path = if canonical_host(key_host) == "docker.io" && key_path == "v1" { "" } else { key_path };
    let under = key_path.is_empty() || repository == key_path || repository.starts_with(&format!("{key_path}/"));
    under.then_some(bare.len())
}

/// The credentials the pod's pull Secrets hold for `image` (normalized,
/// `host/repository[:tag][@digest]`), the most specific key winning.
pub fn credentials_for(image: &str, secrets: &[BTreeMap<String, Vec<u8>>]) -> Option<Credentials> {
    let name = image.split('@').next().unwrap_or(image);
    let (host, rest) = name.split_once('/')?;
    // The tag follows the last `:` after the last `/`.
    let repository = match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => rest,
    };
    let mut best: Option<(usize, Credentials)> = None;
    for secret in secrets {
        for (key, entry) in entries(secret) {
            let (Some(score), Some(credentials)) = (score(&key, host, repository), entry.credentials()) else { continue };
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, credentials));
            }
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(".dockerconfigjson".to_owned(), json.as_bytes().to_vec())])
    }

    fn login(user: &str, password: &str) -> Option<Credentials> {
        Some((user.to_owned(), password.to_owned()))
    }

    #[test]
    fn a_registry_key_with_a_port_gives_its_login() {
        let s = secret(r#"{"auths": {"127.0.0.1:5000": {"username": "ada", "password": "pw"}}}"#);
        assert_eq!(credentials_for("127.0.0.1:5000/library/busybox:1.35", std::slice::from_ref(&s)), login("ada", "pw"));
        assert_eq!(credentials_for("127.0.0.1:5001/library/busybox:1.35", std::slice::from_ref(&s)), None);
        assert_eq!(credentials_for("docker.io/library/busybox:1.35", &[s]), None);
    }

    #[test]
    fn auth_is_base64_of_user_and_password() {
        // base64("ada:p:w")
        let s = secret(r#"{"auths": {"https://ghcr.io": {"auth": "YWRhOnA6dw=="}}}"#);
        assert_eq!(credentials_for("ghcr.io/x/y:1", &[s]), login("ada", "p:w"));
    }

    #[test]
    fn the_most_specific_key_wins_and_paths_scope_keys() {
        let s = secret(
            r#"{"auths": {
                "registry.example": {"username": "any", "password": "1"},
                "registry.example/team": {"username": "team", "password": "2"},
                "*.example": {"username": "glob", "password": "3"}}}"#,
        );
        assert_eq!(credentials_for("registry.example/team/app:v1", std::slice::from_ref(&s)), login("team", "2"));
        assert_eq!(credentials_for("registry.example/teammate/app:v1", std::slice::from_ref(&s)), login("any", "1"));
        assert_eq!(credentials_for("other.example/app@sha256:00", std::slice::from_ref(&s)), login("glob", "3"));
        assert_eq!(credentials_for("a.b.example/app:v1", &[s]), None);
    }

    #[test]
    fn docker_hub_keys_name_one_registry() {
        let s = secret(r#"{"auths": {"https://index.docker.io/v1/": {"username": "hub", "password": "x"}}}"#);
        assert_eq!(credentials_for("docker.io/library/busybox:latest", &[s]), login("hub", "x"));
    }

    #[test]
    fn legacy_dockercfg_and_unreadable_secrets() {
        let legacy = BTreeMap::from([(".dockercfg".to_owned(), br#"{"quay.io": {"username": "q", "password": "y"}}"#.to_vec())]);
        let broken = secret("not json");
        assert_eq!(credentials_for("quay.io/a/b:1", &[broken, legacy]), login("q", "y"));
    }
}
