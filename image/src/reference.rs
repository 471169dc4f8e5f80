//! Image references, normalized the way Docker does.
//!
//! Owns: turning what a user or a manifest writes (`busybox`,
//! `ghcr.io/x/y`, `localhost:5000/app:v1`) into the one spelling the store
//! keys on (`docker.io/library/busybox:latest`). Parsing is `oci-spec`'s
//! port of distribution/reference; this module adds the two rules of
//! Docker's `ParseNormalizedNamed` that the port leaves out.
//!
//! Must not touch: the store. Everything here is a pure function.

use oci_spec::distribution::{ParseError, Reference};

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid image reference {reference:?}: {source}")]
    Invalid {
        /// The string as given.
        reference: String,
        /// What the parser found.
        #[source]
        source: ParseError,
    },
    /// Docker refuses names that look like an image ID.
    #[error("invalid image reference {reference:?}: a repository name cannot be 64 hexadecimal characters")]
    LooksLikeId {
        /// The string as given.
        reference: String,
    },
}

/// Normalizes a reference exactly as Docker does: `busybox` becomes
/// `docker.io/library/busybox:latest`, a missing tag becomes `latest`
/// unless a digest is given, and a registry (`ghcr.io/`, `localhost:5000/`)
/// is kept as written.
pub fn normalize_reference(reference: &str) -> Result<String, ReferenceError> {
    parse(reference).map(|r| r.whole())
}

/// Parses and normalizes a reference.
pub(crate) fn parse(reference: &str) -> Result<Reference, ReferenceError> {
    let invalid = |source| ReferenceError::Invalid { reference: reference.to_owned(), source };
    // Docker's anchored identifier check: a bare 64-hex string is an image
    // ID, never a repository name.
    if reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ReferenceError::LooksLikeId { reference: reference.to_owned() });
    }
    let parsed: Reference = reference.parse().map_err(invalid)?;
    // Docker takes a first component with capitals as a registry host
    // (repository paths are lowercase); the port only looks for `.`, `:`
    // and `localhost`, and would file `Foo/bar` under docker.io.
    if parsed.registry() == "docker.io" && parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        if let Some((host, path)) = parsed.repository().split_once('/')
            && !path.bytes().any(|b| b.is_ascii_uppercase())
            && !reference.starts_with("docker.io/")
        {
            return Ok(rebuild(host, path, &parsed));
        }
        return Err(invalid(ParseError::NameContainsUppercase));
    }
    Ok(parsed)
}

fn rebuild(registry: &str, repository: &str, like: &Reference) -> Reference {
    match (like.tag(), like.digest()) {
        (Some(tag), Some(digest)) => Reference::with_tag_and_digest(registry.into(), repository.into(), tag.into(), digest.into()),
        (None, Some(digest)) => Reference::with_digest(registry.into(), repository.into(), digest.into()),
        (tag, None) => Reference::with_tag(registry.into(), repository.into(), tag.unwrap_or("latest").into()),
    }
}

/// Whether the reference as written names a tag or a digest (the parser
/// fills in `latest`, so this looks at the text: a `:` after the last `/`,
/// or an `@`).
pub(crate) fn names_version(reference: &str) -> bool {
    reference.contains('@') || reference.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

/// Whether a `org.opencontainers.image.ref.name` annotation is a bare tag
/// (`1.35`) rather than a reference: no `/`, `:` or `@`, and the tag grammar.
pub(crate) fn is_bare_tag(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        let digest = format!("sha256:{HEX}");
        let table = [
            ("busybox", "docker.io/library/busybox:latest".to_owned()),
            ("busybox:1.35", "docker.io/library/busybox:1.35".to_owned()),
            ("library/busybox", "docker.io/library/busybox:latest".to_owned()),
            ("docker.io/busybox", "docker.io/library/busybox:latest".to_owned()),
            ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1".to_owned()),
            ("bitnami/nginx:1.25", "docker.io/bitnami/nginx:1.25".to_owned()),
            ("localhost:5000/app:v1", "localhost:5000/app:v1".to_owned()),
            ("localhost/app", "localhost/app:latest".to_owned()),
            ("ghcr.io/x/y", "ghcr.io/x/y:latest".to_owned()),
            ("ghcr.io/x/y:2", "ghcr.io/x/y:2".to_owned()),
            ("Registry/app", "Registry/app:latest".to_owned()),
            (&*format!("busybox@{digest}"), format!("docker.io/library/busybox@{digest}")),
            (&*format!("busybox:1.35@{digest}"), format!("docker.io/library/busybox:1.35@{digest}")),
            (&*format!("ghcr.io/x/y@{digest}"), format!("ghcr.io/x/y@{digest}")),
        ];
        for (input, expected) in table {
            assert_eq!(normalize_reference(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "-x", HEX, "docker.io/Foo/bar"] {
            let err = normalize_reference(bad).unwrap_err();
            assert!(err.to_string().starts_with(&format!("invalid image reference {bad:?}: ")), "{err}");
        }
    }

    #[test]
    fn tells_tags_from_references() {
        assert!(names_version("busybox:1.35"));
        assert!(names_version("localhost:5000/app@sha256:00"));
        assert!(!names_version("localhost:5000/app"));
        assert!(is_bare_tag("1.35") && is_bare_tag("latest") && is_bare_tag("v1_rc-2"));
        assert!(!is_bare_tag("busybox:1.35") && !is_bare_tag("ghcr.io/x") && !is_bare_tag(".x") && !is_bare_tag(""));
    }
}
