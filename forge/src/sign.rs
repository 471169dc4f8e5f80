//! HMAC-SHA256 over a raw body, the one signature both directions use:
//! GitHub, Gitea, Forgejo and Bitbucket sign deliveries with it, and
//! notifications out carry it in Flux's `X-Signature` header.
//!
//! Owns only the arithmetic and its hex encoding; which header carries it is
//! decided by [`crate::hooks`] and [`crate::notify`]. Must not log or return
//! the key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The lowercase hex HMAC-SHA256 of `body` under `key`.
pub fn hex_hmac_sha256(key: &[u8], body: &[u8]) -> String {
    hex::encode(mac(key, body).finalize().into_bytes())
}

/// Whether `signature` is the HMAC-SHA256 of `body` under `key`, compared in
/// constant time (`verify_slice` does not stop at the first differing byte).
pub fn verify_hmac_sha256(key: &[u8], body: &[u8], signature: &[u8]) -> bool {
    mac(key, body).verify_slice(signature).is_ok()
}

/// Whether two shared tokens are equal, in time that depends on neither.
///
/// Both sides are hashed first so that a wrong length takes as long as a
/// wrong byte: comparing the raw tokens would tell a prober the secret's
/// length.
pub fn tokens_equal(given: &[u8], expected: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected);
    given.ct_eq(&expected).into()
}

fn mac(key: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (long keys are hashed), so this never fails.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2: key "Jefe".
    #[test]
    fn rfc4231_case_2() {
        let sig = hex_hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(verify_hmac_sha256(b"Jefe", b"what do ya want for nothing?", &hex::decode(&sig).unwrap()));
        assert!(!verify_hmac_sha256(b"jefe", b"what do ya want for nothing?", &hex::decode(&sig).unwrap()));
        assert!(!verify_hmac_sha256(b"Jefe", b"what do ya want for nothing?", &hex::decode(&sig).unwrap()[..31]));
    }

    #[test]
    fn tokens() {
        assert!(tokens_equal(b"s3cret", b"s3cret"));
        assert!(!tokens_equal(b"s3cre", b"s3cret"));
        assert!(!tokens_equal(b"", b"s3cret"));
    }
}
