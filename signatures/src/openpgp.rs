//! OpenPGP: reads public keys (certificates) with rPGP and checks a detached
//! signature, as git stores it in a commit, against them. Owns the rules for
//! which key of a certificate may sign (the primary key, or a subkey bound
//! for signing) and when a certificate no longer counts (revoked, expired).
//! It does not know about git or folders.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Timestamp};

use crate::verify::Refusal;

/// One allowed certificate.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub(crate) key: SignedPublicKey,
    /// The primary user id, or the first one.
    pub(crate) principal: String,
}

impl Cert {
    fn new(key: SignedPublicKey) -> Self {
        let user = key.details.users.iter().find(|u| u.is_primary()).or_else(|| key.details.users.first());
        let principal = user.map(|u| String::from_utf8_lossy(u.id.id()).into_owned()).unwrap_or_default();
        Cert { key, principal }
    }

    pub(crate) fn fingerprint(&self) -> String {
        hex(&self.key.fingerprint())
    }
}

/// Uppercase hex without spaces, as `gpg --with-colons` prints it.
fn hex(fingerprint: &Fingerprint) -> String {
    format!("{fingerprint:X}")
}

/// Parses armored text that may hold several `PUBLIC KEY BLOCK`s; errors
/// carry the line the failing block starts on.
pub(crate) fn parse_armored(text: &str) -> Result<Vec<Cert>, (usize, String)> {
    const BEGIN: &str = "-----BEGIN PGP ";
    let mut certs = Vec::new();
    let mut starts = text.match_indices(BEGIN).map(|(i, _)| i).peekable();
    if starts.peek().is_none() {
        return Err((1, "no \"-----BEGIN PGP PUBLIC KEY BLOCK-----\" in the file".to_owned()));
    }
    while let Some(start) = starts.next() {
        let end = starts.peek().copied().unwrap_or(text.len());
        let block = &text[start..end];
        let line = text[..start].matches('\n').count() + 1;
        if block.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return Err((line, "this is a private key; export the public key with `gpg --armor --export`".to_owned()));
        }
        if !block.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            return Err((line, "not a public key block".to_owned()));
        }
        let (keys, _headers) = SignedPublicKey::from_armor_many(block.as_bytes()).map_err(|e| (line, e.to_string()))?;
        let before = certs.len();
        for key in keys {
            certs.push(Cert::new(key.map_err(|e| (line, e.to_string()))?));
        }
        if certs.len() == before {
            return Err((line, "the block holds no public key".to_owned()));
        }
    }
    Ok(certs)
}

/// Parses binary (`gpg --export`) keys.
pub(crate) fn parse_binary(bytes: &[u8]) -> Result<Vec<Cert>, String> {
    let keys = SignedPublicKey::from_bytes_many(bytes).map_err(|e| e.to_string())?;
    let certs = keys.map(|k| k.map(Cert::new).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err("no public key in the file".to_owned());
    }
    Ok(certs)
}

/// Checks `armored` over `data` against `certs`; on success, the cert that signed.
pub(crate) fn verify<'c>(armored: &[u8], data: &[u8], certs: &'c [Cert]) -> Result<&'c Cert, Refusal> {
    let (detached, _) = DetachedSignature::from_armor_single(armored)
        .map_err(|e| Refusal::BadSignature { fingerprint: None, reason: format!("unreadable OpenPGP signature: {e}") })?;
    let sig = &detached.signature;
    let issuer = issuer_name(sig);
    let Some((cert, signing_key)) = find_key(sig, certs) else {
        return Err(Refusal::UnknownKey { fingerprint: issuer });
    };
    let fingerprint = cert.fingerprint();
    let bad = |reason: String| Refusal::BadSignature { fingerprint: Some(fingerprint.clone()), reason };
    // A certification or key signature over these bytes would verify too,
    // but says nothing about the commit.
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return Err(bad(format!("not a document signature (type {:?})", sig.typ())));
    }
    let checked = match signing_key {
        SigningKey::Primary => detached.verify(&cert.key, data),
        SigningKey::Subkey(subkey) => detached.verify(subkey, data),
    };
    checked.map_err(|e| bad(e.to_string()))?;
    if let Some(reason) = not_valid(cert, signing_key, sig) {
        return Err(Refusal::KeyNotValid { fingerprint, reason });
    }
    Ok(cert)
}

#[derive(Clone, Copy)]
enum SigningKey<'c> {
    Primary,
    Subkey(&'c SignedPublicSubKey),
}

/// The issuer as the signature names it, for a refusal: its fingerprint
/// when it carries one (v4 signatures by gpg do), else its key id.
fn issuer_name(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return hex(fp);
    }
    match sig.issuer_key_id().first() {
        Some(id) => format!("key id {}", key_id_hex(id)),
        None => "an unnamed key".to_owned(),
    }
}

fn key_id_hex(id: &KeyId) -> String {
    id.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// The allowed key the signature names as its issuer: a primary key, or a
/// subkey whose binding to its primary key verifies and allows signing.
fn find_key<'c>(sig: &Signature, certs: &'c [Cert]) -> Option<(&'c Cert, SigningKey<'c>)> {
    let names = |fp: Fingerprint, id: KeyId| sig.issuer_fingerprint().iter().any(|f| **f == fp) || sig.issuer_key_id().iter().any(|i| **i == id);
    for cert in certs {
        if names(cert.key.fingerprint(), cert.key.legacy_key_id()) {
            return Some((cert, SigningKey::Primary));
        }
        for subkey in &cert.key.public_subkeys {
            if names(subkey.key.fingerprint(), subkey.key.legacy_key_id()) && signing_binding(cert, subkey).is_some() {
                return Some((cert, SigningKey::Subkey(subkey)));
            }
        }
    }
    None
}

/// The newest binding signature of `subkey` that verifies, carries a valid
/// back-signature, and allows signing.
fn signing_binding<'c>(cert: &Cert, subkey: &'c SignedPublicSubKey) -> Option<&'c Signature> {
    subkey
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding) && s.key_flags().sign())
        .filter(|s| s.verify_subkey_binding(&cert.key.primary_key, &subkey.key).is_ok())
        // Without the subkey's own back-signature, anyone could bind our
        // subkey to their certificate; rPGP leaves this check to us here.
        .filter(|s| s.embedded_signature().is_some_and(|back| back.verify_primary_key_binding(&subkey.key, &cert.key.primary_key).is_ok()))
        .max_by_key(|s| s.created())
}

/// Why the key no longer counts, as gpg sees it now: a verified revocation
/// of the certificate or subkey, an expired certificate or subkey, or an
/// expired signature. `None` when it still counts.
fn not_valid(cert: &Cert, signing_key: SigningKey<'_>, sig: &Signature) -> Option<String> {
    let now = Timestamp::now().as_secs();
    let primary = &cert.key.primary_key;
    if cert.key.details.revocation_signatures.iter().any(|r| r.typ() == Some(SignatureType::KeyRevocation) && r.verify_key(primary).is_ok()) {
        return Some("the key is revoked".to_owned());
    }
    // The newest verified self-signature says when the certificate expires.
    let self_sig = cert
        .key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter().filter(move |s| s.verify_certification(primary, pgp::types::Tag::UserId, &u.id).is_ok()))
        .chain(cert.key.details.direct_signatures.iter().filter(|s| s.verify_key(primary).is_ok()))
        .max_by_key(|s| s.created());
    if let Some(reason) = self_sig.and_then(|s| expired(primary.created_at(), s, now)) {
        return Some(reason);
    }
    if let SigningKey::Subkey(subkey) = signing_key {
        let revoked =
            subkey.signatures.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation) && s.verify_subkey_binding(primary, &subkey.key).is_ok());
        if revoked {
            return Some("the signing subkey is revoked".to_owned());
        }
        if let Some(reason) = signing_binding(cert, subkey).and_then(|b| expired(subkey.key.created_at(), b, now)) {
            return Some(format!("the signing subkey: {reason}"));
        }
    }
    if let (Some(created), Some(lifetime)) = (sig.created(), sig.signature_expiration_time()) {
        let end = u64::from(created.as_secs()) + u64::from(lifetime.as_secs());
        if lifetime.as_secs() != 0 && end <= u64::from(now) {
            return Some("the signature has expired".to_owned());
        }
    }
    None
}

fn expired(created: Timestamp, self_sig: &Signature, now: u32) -> Option<String> {
    let lifetime = self_sig.key_expiration_time()?.as_secs();
    let end = u64::from(created.as_secs()) + u64::from(lifetime);
    // A lifetime of 0 means the key never expires.
    (lifetime != 0 && end <= u64::from(now)).then(|| {
        let when = jiff::Timestamp::from_second(end as i64).map(|t| t.to_string()).unwrap_or_default();
        format!("the key expired at {when}")
    })
}
