//! [`verify`](super::verify) and [`parse`](super::parse) against every
//! documented payload in `tests/fixtures/` (see its README for sources),
//! each signed here with a test secret the way its forge signs, then
//! tampered with.
//!
//! Test-only; owns no behaviour.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Event, Forge, RefKind, RefPush, Unauthorized, parse, verify};
use crate::sign::hex_hmac_sha256;

const SECRET: &[u8] = b"test-secret-for-fixtures";

const GITHUB_PUSH: &[u8] = include_bytes!("../../tests/fixtures/github-push.json");
const GITHUB_PING: &[u8] = include_bytes!("../../tests/fixtures/github-ping.json");
const GITEA_PUSH: &[u8] = include_bytes!("../../tests/fixtures/gitea-push.json");
const GITLAB_PUSH: &[u8] = include_bytes!("../../tests/fixtures/gitlab-push.json");
const GITLAB_TAG_PUSH: &[u8] = include_bytes!("../../tests/fixtures/gitlab-tag-push.json");
const BITBUCKET_CLOUD_PUSH: &[u8] = include_bytes!("../../tests/fixtures/bitbucket-cloud-push.json");
const BITBUCKET_SERVER_PUSH: &[u8] = include_bytes!("../../tests/fixtures/bitbucket-server-refs-changed.json");

/// How a delivery is authenticated.
#[derive(Clone, Copy)]
enum Auth {
    /// HMAC in this header, with or without the `sha256=` prefix.
    Hmac(&'static str, bool),
    /// GitLab's token header.
    Token,
}

struct Case {
    name: &'static str,
    body: &'static [u8],
    event_headers: &'static [(&'static str, &'static str)],
    auth: Auth,
    forge: Forge,
    expected: Event,
}

fn branch(name: &str, after: &str) -> Event {
    Event::Push(vec![RefPush { kind: RefKind::Branch, name: name.into(), after: Some(after.into()) }])
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "github push (documented: a tag deletion)",
            body: GITHUB_PUSH,
            event_headers: &[("x-github-event", "push")],
            auth: Auth::Hmac("x-hub-signature-256", true),
            forge: Forge::GitHub,
            expected: Event::Push(vec![RefPush { kind: RefKind::Tag, name: "simple-tag".into(), after: None }]),
        },
        Case {
            name: "github ping",
            body: GITHUB_PING,
            event_headers: &[("x-github-event", "ping")],
            auth: Auth::Hmac("x-hub-signature-256", true),
            forge: Forge::GitHub,
            expected: Event::Ping,
        },
        Case {
            name: "gitea push, X-Gitea-Signature",
            body: GITEA_PUSH,
            event_headers: &[("x-github-event", "push"), ("x-gitea-event", "push")],
            auth: Auth::Hmac("x-gitea-signature", false),
            forge: Forge::Gitea,
            expected: branch("develop", "bffeb74224043ba2feb48d137756c8a9331c449a"),
        },
        Case {
            name: "gitea push, X-Hub-Signature-256",
            body: GITEA_PUSH,
            event_headers: &[("x-github-event", "push"), ("x-gitea-event", "push")],
            auth: Auth::Hmac("x-hub-signature-256", true),
            forge: Forge::Gitea,
            expected: branch("develop", "bffeb74224043ba2feb48d137756c8a9331c449a"),
        },
        Case {
            name: "forgejo push (gitea's body), X-Forgejo-Signature",
            body: GITEA_PUSH,
            event_headers: &[("x-github-event", "push"), ("x-gitea-event", "push"), ("x-forgejo-event", "push")],
            auth: Auth::Hmac("x-forgejo-signature", false),
            forge: Forge::Forgejo,
            expected: branch("develop", "bffeb74224043ba2feb48d137756c8a9331c449a"),
        },
        Case {
            name: "gitlab push",
            body: GITLAB_PUSH,
            event_headers: &[("x-gitlab-event", "Push Hook")],
            auth: Auth::Token,
            forge: Forge::GitLab,
            expected: branch("master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
        },
        Case {
            name: "gitlab tag push",
            body: GITLAB_TAG_PUSH,
            event_headers: &[("x-gitlab-event", "Tag Push Hook")],
            auth: Auth::Token,
            forge: Forge::GitLab,
            expected: Event::Push(vec![RefPush { kind: RefKind::Tag, name: "v1.0.0".into(), after: Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7".into()) }]),
        },
        Case {
            name: "bitbucket cloud repo:push",
            body: BITBUCKET_CLOUD_PUSH,
            event_headers: &[("x-event-key", "repo:push"), ("x-hook-uuid", "cb2f8e5a-8a9a-4b0e-9f3a-1c3a3b1f2a10")],
            auth: Auth::Hmac("x-hub-signature-256", true),
            forge: Forge::Bitbucket,
            expected: branch("name-of-branch", "709d658dc5b6d6afcd46049c2f332ee3f515a67d"),
        },
        Case {
            name: "bitbucket server repo:refs_changed, X-Hub-Signature",
            body: BITBUCKET_SERVER_PUSH,
            event_headers: &[("x-event-key", "repo:refs_changed")],
            auth: Auth::Hmac("x-hub-signature", true),
            forge: Forge::BitbucketServer,
            expected: branch("master", "178864a7d521b6f5e720b386b2c2b0ef8563e0dc"),
        },
        Case {
            name: "generic with a ref (gitea's body)",
            body: GITEA_PUSH,
            event_headers: &[],
            auth: Auth::Hmac("x-signature", true),
            forge: Forge::Generic,
            expected: branch("develop", "bffeb74224043ba2feb48d137756c8a9331c449a"),
        },
    ]
}

/// The headers a forge would send for `body` signed with `secret`.
fn signed(case: &Case, body: &[u8], secret: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in case.event_headers {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    match case.auth {
        Auth::Hmac(header, prefixed) => {
            let hex = hex_hmac_sha256(secret, body);
            let value = if prefixed { format!("sha256={hex}") } else { hex };
            headers.insert(HeaderName::from_static(header), HeaderValue::try_from(value).unwrap());
        }
        Auth::Token => {
            headers.insert("x-gitlab-token", HeaderValue::from_bytes(secret).unwrap());
        }
    }
    headers
}

fn signature_header(case: &Case) -> &'static str {
    match case.auth {
        Auth::Hmac(header, _) => header,
        Auth::Token => "x-gitlab-token",
    }
}

#[test]
fn every_fixture_verifies_and_parses() {
    for case in cases() {
        let headers = signed(&case, case.body, SECRET);
        assert_eq!(verify(&headers, case.body, SECRET), Ok(case.forge), "{}", case.name);
        let event = parse(case.forge, &headers, case.body).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(event, case.expected, "{}", case.name);
    }
}

#[test]
fn wrong_secret_is_refused() {
    for case in cases() {
        let headers = signed(&case, case.body, b"another-secret");
        assert_eq!(verify(&headers, case.body, SECRET), Err(Unauthorized::Mismatch(case.forge)), "{}", case.name);
    }
}

#[test]
fn missing_signature_is_refused() {
    for case in cases() {
        let mut headers = signed(&case, case.body, SECRET);
        headers.remove(signature_header(&case));
        assert_eq!(verify(&headers, case.body, SECRET), Err(Unauthorized::Missing(case.forge)), "{}", case.name);
    }
}

#[test]
fn tampered_body_is_refused() {
    for case in cases() {
        if matches!(case.auth, Auth::Token) {
            // GitLab's token does not cover the body: a tampered body with the
            // right token passes, which is why TLS matters for GitLab hooks.
            continue;
        }
        let headers = signed(&case, case.body, SECRET);
        let mut tampered = case.body.to_vec();
        // Flip one byte in the middle, where the refs and hashes are.
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        assert_eq!(verify(&headers, &tampered, SECRET), Err(Unauthorized::Mismatch(case.forge)), "{}", case.name);
        let mut extended = case.body.to_vec();
        extended.push(b' ');
        assert_eq!(verify(&headers, &extended, SECRET), Err(Unauthorized::Mismatch(case.forge)), "{}", case.name);
    }
}

#[test]
fn gitlab_wrong_token_is_refused() {
    for case in cases().iter().filter(|c| c.forge == Forge::GitLab) {
        for token in ["", "test-secret-for-fixture", "test-secret-for-fixtures ", "TEST-SECRET-FOR-FIXTURES"] {
            let mut headers = signed(case, case.body, SECRET);
            headers.insert("x-gitlab-token", HeaderValue::from_str(token).unwrap());
            assert_eq!(verify(&headers, case.body, SECRET), Err(Unauthorized::Mismatch(Forge::GitLab)), "{} {token:?}", case.name);
        }
    }
}

#[test]
fn a_signature_from_another_forge_header_does_not_count() {
    // GitHub signs only X-Hub-Signature-256; a valid HMAC in Gitea's header
    // on a GitHub delivery is not looked at.
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    headers.insert("x-gitea-signature", HeaderValue::try_from(hex_hmac_sha256(SECRET, GITEA_PUSH)).unwrap());
    assert_eq!(verify(&headers, GITEA_PUSH, SECRET), Err(Unauthorized::Missing(Forge::GitHub)));
}
