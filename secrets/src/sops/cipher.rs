//! SOPS's value cipher: AES-256-GCM with a 32-byte IV under the file's data
//! key, the value's path as additional data, written as
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` (standard base64).
//!
//! Owns only the `ENC[...]` text and the AEAD; which values are encrypted
//! and under which path is `walk`'s and `metadata`'s business.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use zeroize::Zeroizing;

/// SOPS's GCM: AES-256 with 32-byte nonces (`NewGCMWithNonceSize(32)`).
type SopsGcm = AesGcm<Aes256, U32>;

/// The length of a SOPS data key and of its IVs.
pub(crate) const KEY_LEN: usize = 32;

const PREFIX: &str = "ENC[AES256_GCM,";

/// A file's data key, wiped from memory when dropped.
pub(crate) struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh random key.
    pub(crate) fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        DataKey(key)
    }

    /// The key SOPS stored (in each age stanza); `None` when not 32 bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(array)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    fn gcm(&self) -> SopsGcm {
        SopsGcm::new(aes_gcm::Key::<SopsGcm>::from_slice(self.0.as_ref()))
    }
}

/// Whether a scalar is in SOPS's encrypted form (and so must decrypt).
pub(crate) fn is_encrypted(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// Why a value did not decrypt. Never carries plaintext.
#[derive(Debug, PartialEq)]
pub(crate) enum CipherError {
    /// Not `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
    Malformed(&'static str),
    /// The tag does not verify: the value, its path or the key differ.
    Authentication,
}

/// Decrypts one `ENC[...]` value: its `type:` and its plaintext bytes.
pub(crate) fn decrypt(key: &DataKey, value: &str, additional_data: &str) -> Result<(String, Zeroizing<Vec<u8>>), CipherError> {
    let body = value.strip_prefix(PREFIX).and_then(|v| v.strip_suffix(']')).ok_or(CipherError::Malformed("not in SOPS's ENC[AES256_GCM,...] form"))?;
    let field = |name: &'static str, rest: &str| -> Result<(String, usize), CipherError> {
        let start = rest.find(&format!("{name}:")).ok_or(CipherError::Malformed("a field of ENC[...] is missing"))? + name.len() + 1;
        let end = rest[start..].find(',').map_or(rest.len(), |i| start + i);
        Ok((rest[start..end].to_owned(), end))
    };
    let (data, after_data) = field("data", body)?;
    let (iv, after_iv) = field("iv", &body[after_data..]).map(|(v, e)| (v, after_data + e))?;
    let (tag, after_tag) = field("tag", &body[after_iv..]).map(|(v, e)| (v, after_iv + e))?;
    let (kind, _) = field("type", &body[after_tag..])?;
    let decode = |text: &str| STANDARD.decode(text).map_err(|_| CipherError::Malformed("a field of ENC[...] is not base64"));
    let (mut data, iv, tag) = (decode(&data)?, decode(&iv)?, decode(&tag)?);
    if iv.len() != KEY_LEN {
        return Err(CipherError::Malformed("the IV is not 32 bytes (SOPS's size)"));
    }
    if tag.len() != 16 {
        return Err(CipherError::Malformed("the tag is not 16 bytes"));
    }
    data.extend_from_slice(&tag);
    let plaintext =
        key.gcm().decrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: &data, aad: additional_data.as_bytes() }).map_err(|_| CipherError::Authentication)?;
    Ok((kind, Zeroizing::new(plaintext)))
}

/// Encrypts `plaintext` as SOPS does, with a fresh random IV.
pub(crate) fn encrypt(key: &DataKey, plaintext: &[u8], kind: &str, additional_data: &str) -> String {
    let mut iv = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut iv);
    // Encryption into a Vec cannot fail for inputs below GCM's 64 GiB limit.
    let sealed = key.gcm().encrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: plaintext, aad: additional_data.as_bytes() }).unwrap_or_default();
    let (data, tag) = sealed.split_at(sealed.len().saturating_sub(16));
    format!("{PREFIX}data:{},iv:{},tag:{},type:{kind}]", STANDARD.encode(data), STANDARD.encode(iv), STANDARD.encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_path() {
        let key = DataKey::generate();
        let enc = encrypt(&key, b"hunter2", "str", "stringData:password:");
        assert!(is_encrypted(&enc));
        let (kind, plain) = decrypt(&key, &enc, "stringData:password:").unwrap();
        assert_eq!((kind.as_str(), plain.as_slice()), ("str", &b"hunter2"[..]));
        assert_eq!(decrypt(&key, &enc, "data:password:").unwrap_err(), CipherError::Authentication);
        assert!(matches!(decrypt(&key, "ENC[AES256_GCM,data:x]", ""), Err(CipherError::Malformed(_))));
    }
}
