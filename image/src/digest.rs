//! SHA-256 digests: hashing streams as they pass, and checking that a
//! digest is one this store can use as a file name.
//!
//! Owns: the `sha256:<64 lowercase hex>` form. Must not touch: files; the
//! callers decide what a digest names.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::BlobError;

/// The hex part of a `sha256:<hex>` digest, checked to be exactly 64
/// lowercase hex characters so that it is safe as a file name.
pub(crate) fn sha256_hex(digest: &str) -> Result<&str, BlobError> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Ok(hex),
        _ => Err(BlobError::UnsupportedDigest { digest: digest.to_owned() }),
    }
}

/// The `sha256:<hex>` digest of some bytes.
pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A reader that hashes and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Reads what is left (tar archives end in padding that the tar reader
    /// does not consume) and returns the digest and length of the whole.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format!("sha256:{:x}", self.hasher.finalize()), self.len))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }

    /// The inner writer, the digest and the length of what was written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{:x}", self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_passes() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_of(b""), empty);
        let mut reader = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish().unwrap(), (sha256_of(b"abc"), 3));
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"abc").unwrap();
        assert_eq!(writer.finish(), (b"abc".to_vec(), sha256_of(b"abc"), 3));
    }

    #[test]
    fn only_sha256_hex_is_a_file_name() {
        let hex = "a".repeat(64);
        assert_eq!(sha256_hex(&format!("sha256:{hex}")).unwrap(), hex);
        for bad in [format!("sha512:{hex}"), format!("sha256:{}", "A".repeat(64)), "sha256:../../etc".to_owned(), hex] {
            assert!(sha256_hex(&bad).is_err(), "{bad}");
        }
    }
}
