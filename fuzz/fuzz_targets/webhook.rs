//! A forge's delivery: headers (a `name: value` line each, up to a blank
//! line) and a body, verified against a secret and read as each forge's
//! payload.
#![no_main]

use driftless_forge::Forge;
use driftless_forge::hooks::{parse, verify};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FORGES: [Forge; 7] = [Forge::GitHub, Forge::Gitea, Forge::Forgejo, Forge::GitLab, Forge::Bitbucket, Forge::BitbucketServer, Forge::Generic];

fuzz_target!(|bytes: &[u8]| {
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap_or(bytes.len());
    let (head, body) = (&bytes[..split], bytes.get(split + 2..).unwrap_or_default());
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(line[colon + 1..].trim_ascii())) {
            headers.append(name, value);
        }
    }
    let _ = verify(&headers, body, b"a shared secret");
    for forge in FORGES {
        let _ = parse(forge, &headers, body);
    }
});
