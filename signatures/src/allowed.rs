//! The folder of allowed signers: which files count, in which format, and
//! the set they add up to. Owns reading the folder; parsing a line is
//! `allowed_signers.rs`, parsing a certificate `openpgp.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::allowed_signers::{self, SshSigner};
use crate::error::SignatureError;
use crate::openpgp::{self, Cert};

/// The keys allowed to sign: SSH keys with their principals and options, and
/// OpenPGP certificates.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub(crate) ssh: Vec<SshSigner>,
    pub(crate) openpgp: Vec<Cert>,
}

/// How a file in the folder is read, by its name.
enum Kind {
    AllowedSigners,
    SshPublicKey,
    ArmoredOpenPgp,
    BinaryOpenPgp,
}

fn kind(name: &str) -> Option<Kind> {
    if name == "allowed_signers" || name.ends_with(".allowed_signers") {
        Some(Kind::AllowedSigners)
    } else if name.ends_with(".pub") {
        Some(Kind::SshPublicKey)
    } else if name.ends_with(".asc") {
        Some(Kind::ArmoredOpenPgp)
    } else if name.ends_with(".gpg") || name.ends_with(".pgp") {
        Some(Kind::BinaryOpenPgp)
    } else {
        None
    }
}

impl AllowedSigners {
    /// Reads the files of `dir` (not its subfolders), in name order:
    /// `allowed_signers` and `*.allowed_signers` in git's allowed signers
    /// format, `*.pub` single OpenSSH public keys, `*.asc` armored OpenPGP
    /// public keys (several per file allowed) and `*.gpg`/`*.pgp` binary
    /// ones. Other files and hidden files are ignored, so a README can sit
    /// beside the keys. An empty set is not an error here; it refuses
    /// every commit.
    pub fn load(dir: &Path) -> Result<AllowedSigners, SignatureError> {
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SignatureError::Read { path, source }
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_err(dir))? {
            let entry = entry.map_err(read_err(dir))?;
            paths.push(entry.path());
        }
        paths.sort();
        let mut signers = AllowedSigners::default();
        for path in paths {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(kind) = kind(name).filter(|_| !name.starts_with('.')) else {
                tracing::debug!(path = %path.display(), "not a key file, ignored");
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let bytes = fs::read(&path).map_err(read_err(&path))?;
            signers.add_file(&path, kind, &bytes)?;
        }
        Ok(signers)
    }

    fn add_file(&mut self, path: &Path, kind: Kind, bytes: &[u8]) -> Result<(), SignatureError> {
        let line_err = |line: usize, reason: String| SignatureError::Line { path: path.to_path_buf(), line, reason };
        let pgp_err = |line: usize, reason: String| SignatureError::OpenPgp { path: path.to_path_buf(), line, reason };
        match kind {
            Kind::AllowedSigners => {
                let text = std::str::from_utf8(bytes).map_err(|_| line_err(1, "not UTF-8 text".to_owned()))?;
                for (index, line) in text.lines().enumerate() {
                    if let Some(signer) = allowed_signers::parse_line(line).map_err(|reason| line_err(index + 1, reason))? {
                        self.ssh.push(signer);
                    }
                }
            }
            Kind::SshPublicKey => {
                let text = std::str::from_utf8(bytes).map_err(|_| line_err(1, "not UTF-8 text".to_owned()))?;
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let mut keys = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
                let Some((index, line)) = keys.next() else {
                    return Err(line_err(1, "no public key in the file".to_owned()));
                };
                if let Some((extra, _)) = keys.next() {
                    return Err(line_err(extra + 1, "a .pub file holds one key; use an allowed_signers file for several".to_owned()));
                }
                let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| line_err(index + 1, format!("bad public key: {e}")))?;
                self.ssh.push(SshSigner::from_pub(key, stem));
            }
            Kind::ArmoredOpenPgp => {
                let text = std::str::from_utf8(bytes).map_err(|_| pgp_err(1, "an .asc file must be ASCII-armored text".to_owned()))?;
                self.openpgp.extend(openpgp::parse_armored(text).map_err(|(line, reason)| pgp_err(line, reason))?);
            }
            Kind::BinaryOpenPgp => {
                self.openpgp.extend(openpgp::parse_binary(bytes).map_err(|reason| pgp_err(1, reason))?);
            }
        }
        Ok(())
    }

    /// How many keys: SSH lines and keys, plus OpenPGP certificates.
    pub fn len(&self) -> usize {
        self.ssh.len() + self.openpgp.len()
    }

    /// Whether there is no key at all (every signed commit would be refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
