//! SOPS's MAC: SHA-512 over the bytes of the tree's values in walk order
//! (comments excluded; with `mac_only_encrypted`, only encrypted values,
//! after a fixed prefix), written as uppercase hex and stored encrypted
//! under the data key with `lastmodified` as additional data.
//!
//! Only hashes; the walk order and the encryption of the result are the
//! callers'.

use sha2::{Digest, Sha512};

/// SHA-256 of "sops": what SOPS hashes first when only encrypted values
/// are MACed, so such a MAC never equals a full one.
const MAC_ONLY_ENCRYPTED_PREFIX: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad,
    0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A MAC being computed.
pub(crate) struct Mac {
    hash: Sha512,
    only_encrypted: bool,
}

impl Mac {
    pub(crate) fn new(only_encrypted: bool) -> Mac {
        let mut hash = Sha512::new();
        if only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_PREFIX);
        }
        Mac { hash, only_encrypted }
    }

    /// Adds a value's bytes, unless it is unencrypted and only encrypted
    /// values count.
    pub(crate) fn add(&mut self, bytes: &[u8], encrypted: bool) {
        if encrypted || !self.only_encrypted {
            self.hash.update(bytes);
        }
    }

    /// The MAC as SOPS writes it (`%X`).
    pub(crate) fn finish(self) -> String {
        hex::encode_upper(self.hash.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_sha256_of_sops() {
        assert_eq!(hex::encode(MAC_ONLY_ENCRYPTED_PREFIX), "8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69");
    }

    #[test]
    fn empty_is_sha512_of_nothing() {
        assert!(Mac::new(false).finish().starts_with("CF83E1357EEFB8BD"));
    }
}
