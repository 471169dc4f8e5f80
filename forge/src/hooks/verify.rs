//! Who sent a delivery and whether it was signed with our secret, exactly as
//! each forge signs:
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
//! - Gitea: `X-Gitea-Signature: <hex>` (no prefix) or `X-Hub-Signature-256`.
//! - Forgejo: `X-Forgejo-Signature: <hex>`, or Gitea's headers.
//! - Bitbucket Cloud and Server / Data Center: `X-Hub-Signature-256`, or
//!   `X-Hub-Signature` when it carries `sha256=` (Bitbucket Server's header).
//! - GitLab: `X-Gitlab-Token` is the secret itself, compared in constant time.
//! - Generic (no known event header): `X-Signature: sha256=<hex>`, the header
//!   Flux's generic-hmac provider sends.
//!
//! Pure: headers and bytes in, a verdict out. Must not log the secret or the
//! signature, and must not read the body beyond hashing it.

use http::HeaderMap;

use super::Forge;
use crate::sign;

/// Why a delivery was refused with 401. The messages name headers, never
/// their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    /// None of the headers the forge signs with was present.
    #[error("no signature header for a {0} delivery")]
    Missing(Forge),
    /// The header was there but is not `sha256=<hex>` (or plain hex for Gitea).
    #[error("the {0} signature header is malformed")]
    Malformed(Forge),
    /// The signature or token does not match our secret.
    #[error("the {0} signature does not match")]
    Mismatch(Forge),
}

/// Which forge sent the delivery, from its event headers.
///
/// Gitea also sends `X-GitHub-Event`, and Forgejo sends Gitea's and GitHub's
/// headers too, so the most specific header wins.
pub fn detect(headers: &HeaderMap) -> Forge {
    if headers.contains_key("x-forgejo-event") {
        Forge::Forgejo
    } else if headers.contains_key("x-gitea-event") {
        Forge::Gitea
    } else if headers.contains_key("x-gitlab-event") {
        Forge::GitLab
    } else if let Some(key) = headers.get("x-event-key") {
        // Both Bitbucket products use X-Event-Key. Cloud sends X-Hook-UUID on
        // every delivery and names a push `repo:push`; Server names it
        // `repo:refs_changed` and has no hook UUID.
        if headers.contains_key("x-hook-uuid") || key.as_bytes() == b"repo:push" { Forge::Bitbucket } else { Forge::BitbucketServer }
    } else if headers.contains_key("x-github-event") {
        Forge::GitHub
    } else {
        Forge::Generic
    }
}

/// Checks a delivery's signature against `secret` and says which forge sent
/// it. Pure and constant-time in the comparison.
pub fn verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<Forge, Unauthorized> {
    let forge = detect(headers);
    if forge == Forge::GitLab {
        let token = headers.get("x-gitlab-token").ok_or(Unauthorized::Missing(forge))?;
        return if sign::tokens_equal(token.as_bytes(), secret) { Ok(forge) } else { Err(Unauthorized::Mismatch(forge)) };
    }
    let (value, prefixed) = signature_header(forge, headers).ok_or(Unauthorized::Missing(forge))?;
    let hex_part = if prefixed {
        value.strip_prefix(b"sha256=").ok_or(Unauthorized::Malformed(forge))?
    } else {
        // Gitea's and Forgejo's own headers are bare hex; tolerate a prefix
        // anyway, as a proxy rewriting headers might add one.
        value.strip_prefix(b"sha256=").unwrap_or(value)
    };
    let signature = hex::decode(hex_part.trim_ascii()).map_err(|_| Unauthorized::Malformed(forge))?;
    if sign::verify_hmac_sha256(secret, body, &signature) { Ok(forge) } else { Err(Unauthorized::Mismatch(forge)) }
}

/// The first signature header present for `forge`, in order of preference,
/// and whether its value carries the `sha256=` prefix.
fn signature_header(forge: Forge, headers: &HeaderMap) -> Option<(&[u8], bool)> {
    let candidates: &[(&str, bool)] = match forge {
        Forge::GitHub => &[("x-hub-signature-256", true)],
        Forge::Gitea => &[("x-gitea-signature", false), ("x-hub-signature-256", true)],
        Forge::Forgejo => &[("x-forgejo-signature", false), ("x-gitea-signature", false), ("x-hub-signature-256", true)],
        // X-Hub-Signature is also GitHub's legacy SHA-1 header; only a sha256=
        // value is accepted there (the prefix check in verify refuses sha1=).
        Forge::Bitbucket | Forge::BitbucketServer => &[("x-hub-signature-256", true), ("x-hub-signature", true)],
        Forge::Generic => &[("x-signature", true)],
        Forge::GitLab => &[],
    };
    candidates.iter().find_map(|(name, prefixed)| headers.get(*name).map(|v| (v.as_bytes(), *prefixed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    // GitHub's documented test vector ("Validating webhook deliveries").
    #[test]
    fn github_documented_vector() {
        let h = headers(&[("x-github-event", "push"), ("x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]);
        assert_eq!(verify(&h, b"Hello, World!", SECRET), Ok(Forge::GitHub));
        assert_eq!(verify(&h, b"Hello, World?", SECRET), Err(Unauthorized::Mismatch(Forge::GitHub)));
    }

    #[test]
    fn detection_prefers_the_most_specific_header() {
        assert_eq!(detect(&headers(&[("x-github-event", "push"), ("x-gitea-event", "push")])), Forge::Gitea);
        assert_eq!(detect(&headers(&[("x-github-event", "push"), ("x-gitea-event", "push"), ("x-forgejo-event", "push")])), Forge::Forgejo);
        assert_eq!(detect(&headers(&[("x-event-key", "repo:push")])), Forge::Bitbucket);
        assert_eq!(detect(&headers(&[("x-event-key", "repo:refs_changed")])), Forge::BitbucketServer);
        assert_eq!(detect(&headers(&[("x-event-key", "pullrequest:created"), ("x-hook-uuid", "x")])), Forge::Bitbucket);
        assert_eq!(detect(&headers(&[("x-gitlab-event", "Push Hook")])), Forge::GitLab);
        assert_eq!(detect(&HeaderMap::new()), Forge::Generic);
    }

    #[test]
    fn sha1_in_x_hub_signature_is_refused() {
        let h = headers(&[("x-event-key", "repo:refs_changed"), ("x-hub-signature", "sha1=0123")]);
        assert_eq!(verify(&h, b"{}", SECRET), Err(Unauthorized::Malformed(Forge::BitbucketServer)));
    }

    #[test]
    fn bad_hex_is_malformed() {
        let h = headers(&[("x-signature", "sha256=zz")]);
        assert_eq!(verify(&h, b"{}", SECRET), Err(Unauthorized::Malformed(Forge::Generic)));
        let h = headers(&[("x-signature", "757107ea")]);
        assert_eq!(verify(&h, b"{}", SECRET), Err(Unauthorized::Malformed(Forge::Generic)));
    }

    #[test]
    fn gitlab_token() {
        let good = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "It's a Secret to Everybody")]);
        assert_eq!(verify(&good, b"{}", SECRET), Ok(Forge::GitLab));
        let bad = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "It's a Secret to Everybod")]);
        assert_eq!(verify(&bad, b"{}", SECRET), Err(Unauthorized::Mismatch(Forge::GitLab)));
        let none = headers(&[("x-gitlab-event", "Push Hook")]);
        assert_eq!(verify(&none, b"{}", SECRET), Err(Unauthorized::Missing(Forge::GitLab)));
    }

    #[test]
    fn errors_do_not_echo_values() {
        let h = headers(&[("x-signature", "sha256=deadbeef")]);
        let err = verify(&h, b"{}", SECRET).unwrap_err().to_string();
        assert!(!err.contains("deadbeef"), "{err}");
    }
}
