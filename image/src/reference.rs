//! Image references, normalized the way Docker does.
//!
//! Owns: turning what a user or a manifest writes (`busybox`,
//! `ghcr.io/x/y`, `localhost:5000/app:v1`) into the one spelling the store
//! keys on (`docker.io/library/busybox:latest`): Docker's
//! `ParseNormalizedNamed` over distribution/reference's grammar.
//!
//! The grammar is checked here by hand, not with `oci-spec`'s port of it:
//! that port compiles one large Unicode regex per process, and heaptrack
//! showed it holding 7 MiB of a node agent's heap (plus a lazy-DFA cache
//! for every thread that parses), more than everything else an agent of
//! 100 pods keeps. The grammar, from distribution/reference:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6 ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex   (sha256, sha384, sha512)
//! ```
//!
//! Must not touch: the store. Everything here is a pure function.

/// Docker's limit on a name (domain and path).
const NAME_MAX: usize = 255;
/// Where a name without a registry lives, and its other spelling.
const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid image reference {reference:?}: {reason}")]
    Invalid {
        /// The string as given.
        reference: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Docker refuses names that look like an image ID.
    #[error("invalid image reference {reference:?}: a repository name cannot be 64 hexadecimal characters")]
    LooksLikeId {
        /// The string as given.
        reference: String,
    },
}

/// A parsed, normalized reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// The path in the registry: `library/busybox`.
    pub(crate) fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when neither a tag nor a digest was written.
    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, `sha256:...`, if written.
    pub(crate) fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The whole normalized spelling.
    pub(crate) fn whole(&self) -> String {
        let mut whole = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            whole.push(':');
            whole.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            whole.push('@');
            whole.push_str(digest);
        }
        whole
    }
}

/// Normalizes a reference exactly as Docker does: `busybox` becomes
/// `docker.io/library/busybox:latest`, a missing tag becomes `latest`
/// unless a digest is given, and a registry (`ghcr.io/`, `localhost:5000/`)
/// is kept as written.
pub fn normalize_reference(reference: &str) -> Result<String, ReferenceError> {
    parse(reference).map(|r| r.whole())
}

/// Parses and normalizes a reference, as Docker's `ParseNormalizedNamed`
/// and then `TagNameOnly`.
pub(crate) fn parse(reference: &str) -> Result<Reference, ReferenceError> {
    let invalid = |reason| ReferenceError::Invalid { reference: reference.to_owned(), reason };
    // Docker's anchored identifier check: a bare 64-hex string is an image
    // ID, never a repository name.
    if reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ReferenceError::LooksLikeId { reference: reference.to_owned() });
    }
    if reference.is_empty() {
        return Err(invalid("it is empty"));
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    // The tag follows the last ':' after the last '/' (a ':' before it is
    // a registry's port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    // Docker's splitDockerDomain: the first component is a registry if it
    // has a '.' or a ':', is `localhost`, or has capitals (paths are
    // lowercase).
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) => (first, path.to_owned()),
        _ => (DOCKER_HUB, name.to_owned()),
    };
    let registry = if registry == LEGACY_DOCKER_HUB { DOCKER_HUB } else { registry };
    let path = if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid("repository name must be lowercase"));
    }
    if !is_domain(registry) {
        return Err(invalid("the registry is not a host name, an address or host:port"));
    }
    if !path.split('/').all(is_path_component) {
        return Err(invalid("each path component must be lowercase letters and digits, joined by '.', '_', '__' or dashes"));
    }
    if registry.len() + 1 + path.len() > NAME_MAX {
        return Err(invalid("the repository name is longer than 255 characters"));
    }
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(invalid("a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"));
    }
    if let Some(digest) = digest
        && !is_digest(digest)
    {
        return Err(invalid("a digest is sha256:, sha384: or sha512: and that many lowercase hexadecimal digits"));
    }
    let tag = match (tag, digest) {
        (None, None) => Some("latest".to_owned()),
        (tag, _) => tag.map(str::to_owned),
    };
    Ok(Reference { registry: registry.to_owned(), repository: path, tag, digest: digest.map(str::to_owned) })
}

/// `host[:port]`: dot-separated components of letters, digits and inner
/// dashes, or a bracketed IPv6 address.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(bracketed) => {
            let Some((v6, after)) = bracketed.split_once(']') else { return false };
            if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return false;
            }
            match (after, after.strip_prefix(':')) {
                ("", _) => (None, None),
                (_, Some(port)) => (None, Some(port)),
                _ => return false,
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    let component = |c: &str| {
        let bytes = c.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    host.is_none_or(|host| host.split('.').all(component)) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by one separator each: `.`, `_`, `__`, or any
/// number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= 128 && tag.bytes().next().is_some_and(word) && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// A digest of an algorithm registries serve, with its length of
/// lowercase hex (go-digest's validation).
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else { return false };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
    fn follows_the_grammar_at_its_edges() {
        let digest = format!("sha256:{HEX}");
        let table = [
            ("[::1]:5000/app:v1", "[::1]:5000/app:v1".to_owned()),
            ("[fe80::1]/app", "[fe80::1]/app:latest".to_owned()),
            ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest".to_owned()),
            ("my-registry.example.com/team/app", "my-registry.example.com/team/app:latest".to_owned()),
            ("a_b__c-d---e/f.g", "docker.io/a_b__c-d---e/f.g:latest".to_owned()),
            ("app:V1.0_rc-2", "docker.io/library/app:V1.0_rc-2".to_owned()),
            (&*format!("app:{}", "t".repeat(128)), format!("docker.io/library/app:{}", "t".repeat(128))),
            (&*format!("app@sha512:{HEX}{HEX}"), format!("docker.io/library/app@sha512:{HEX}{HEX}")),
            (&*format!("localhost:5000/app:v1@{digest}"), format!("localhost:5000/app:v1@{digest}")),
        ];
        for (input, expected) in table {
            assert_eq!(normalize_reference(input).unwrap(), expected, "{input}");
        }
        let long = format!("{}/x", "a".repeat(250));
        let bad = [
            // A first component with a dot is a registry, and `_` is no host.
            "a_b.c/d",
            "a___b",
            "a-",
            "a.-b",
            "app:.x",
            "app:-x",
            &*format!("app:{}", "t".repeat(129)),
            &*format!("app@sha256:{}", HEX.to_uppercase()),
            &*format!("app@md5:{HEX}"),
            &*format!("app@sha256:{HEX}0"),
            "-host.com/app",
            "host-.com/app",
            "host.com:/app",
            "host.com:50x/app",
            "[::1/app",
            "[]/app",
            "[::1]x/app",
            "app@",
            &long,
        ];
        for input in bad {
            assert!(matches!(normalize_reference(input), Err(ReferenceError::Invalid { .. })), "{input} was taken");
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
