//! SSH signatures (`-----BEGIN SSH SIGNATURE-----`, OpenSSH's sshsig): checks
//! one against the allowed SSH keys with the `ssh-key` crate, the way
//! `git verify-commit` does with `ssh-keygen -Y verify -n git`. Owns only
//! that check; the allowed_signers format is `allowed_signers.rs`.

use ssh_key::{HashAlg, SshSig};

use crate::allowed_signers::SshSigner;
use crate::verify::Refusal;

/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// Checks `armored` over `data`, a commit dated `time` (seconds since the
/// epoch: git hands the committer date to `ssh-keygen` as the verify time,
/// so a key retired with `valid-before` still verifies older commits).
pub(crate) fn verify<'s>(armored: &[u8], data: &[u8], time: i64, signers: &'s [SshSigner]) -> Result<&'s SshSigner, Refusal> {
    let sig = match SshSig::from_pem(armored) {
        Ok(sig) => sig,
        Err(e) if mentions_certificate(armored) => {
            return Err(Refusal::Unsupported(format!("signatures made with an SSH certificate are not supported ({e})")));
        }
        Err(e) => return Err(Refusal::BadSignature { fingerprint: None, reason: format!("unreadable SSH signature: {e}") }),
    };
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    // cert-authority lines allow certificates the key signed, not the key
    // itself, so they never match a plain signature.
    let matching: Vec<&SshSigner> = signers.iter().filter(|s| !s.cert_authority && s.key.key_data() == sig.public_key()).collect();
    let Some(first) = matching.first() else {
        return Err(Refusal::UnknownKey { fingerprint });
    };
    if sig.namespace() != NAMESPACE {
        return Err(Refusal::BadSignature {
            fingerprint: Some(fingerprint),
            reason: format!("the signature is for namespace \"{}\", not \"{NAMESPACE}\"", sig.namespace()),
        });
    }
    first.key.verify(NAMESPACE, data, &sig).map_err(|e| Refusal::BadSignature { fingerprint: Some(fingerprint.clone()), reason: e.to_string() })?;
    // Several lines may hold the key; like ssh-keygen, any one that allows
    // this namespace and time will do.
    let mut first_reason = None;
    for signer in &matching {
        match signer.restriction(NAMESPACE, time) {
            None => return Ok(signer),
            Some(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    Err(Refusal::KeyNotValid { fingerprint, reason: first_reason.unwrap_or_default() })
}

/// Whether an unreadable sshsig carries a certificate instead of a key: the
/// key type is near the start of the blob, inside the base64 body.
fn mentions_certificate(armored: &[u8]) -> bool {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(armored);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .is_ok_and(|blob| blob.windows(b"-cert-v01@openssh.com".len()).any(|w| w == b"-cert-v01@openssh.com"))
}
