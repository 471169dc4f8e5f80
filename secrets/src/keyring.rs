//! age x25519 identities: loading them as `age-keygen` writes them (and as
//! SOPS finds them through `SOPS_AGE_KEY` and `SOPS_AGE_KEY_FILE`), making
//! one, and wrapping and unwrapping SOPS data keys with them.
//!
//! The only module that touches private keys. It never prints or logs one:
//! `Debug` shows recipients, errors show line numbers.

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret as _;
use age::x25519;

use crate::error::SecretsError;
use crate::sops::cipher::DataKey;

/// The age identities a file can be decrypted with.
#[derive(Default)]
pub struct Keyring {
    identities: Vec<x25519::Identity>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("recipients", &self.recipients()).finish()
    }
}

impl Keyring {
    /// Reads an age identity file: `AGE-SECRET-KEY-1...` lines, with `#`
    /// comments and blank lines, as `age-keygen` writes it.
    pub fn load(path: &Path) -> Result<Keyring, SecretsError> {
        let text = fs::read_to_string(path).map_err(|source| SecretsError::Read { path: path.to_owned(), source })?;
        let mut keyring = Keyring::default();
        keyring.add(&text, &path.display().to_string())?;
        Ok(keyring)
    }

    /// The identities SOPS would use: those in `SOPS_AGE_KEY` and in the
    /// file `SOPS_AGE_KEY_FILE` names, when either is set; otherwise those
    /// in `default`, where a missing file is an empty keyring.
    pub fn from_env_or(default: &Path) -> Result<Keyring, SecretsError> {
        let key = std::env::var("SOPS_AGE_KEY").ok();
        let key_file = std::env::var_os("SOPS_AGE_KEY_FILE").map(PathBuf::from);
        Keyring::from_sources(key.as_deref(), key_file.as_deref(), default)
    }

    /// `from_env_or` with the environment passed in.
    pub(crate) fn from_sources(key: Option<&str>, key_file: Option<&Path>, default: &Path) -> Result<Keyring, SecretsError> {
        let mut keyring = Keyring::default();
        if let Some(text) = key {
            keyring.add(text, "SOPS_AGE_KEY")?;
        }
        if let Some(path) = key_file {
            keyring.identities.extend(Keyring::load(path)?.identities);
        }
        if key.is_none() && key_file.is_none() {
            match fs::read_to_string(default) {
                Ok(text) => keyring.add(&text, &default.display().to_string())?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(SecretsError::Read { path: default.to_owned(), source }),
            }
        }
        Ok(keyring)
    }

    /// Parses identity lines from `text`; `origin` names it in errors.
    fn add(&mut self, text: &str, origin: &str) -> Result<(), SecretsError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = line.parse::<x25519::Identity>().map_err(|_| SecretsError::BadIdentity { origin: origin.to_owned(), line: index + 1 })?;
            self.identities.push(identity);
        }
        Ok(())
    }

    /// The recipients (`age1...`) of the identities, in file order.
    pub fn recipients(&self) -> Vec<String> {
        self.identities.iter().map(|i| i.to_public().to_string()).collect()
    }

    /// Whether the keyring holds no identity.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Unwraps a data key from one armored age stanza of a `sops:` block.
    pub(crate) fn unwrap_data_key(&self, armored: &str) -> Result<DataKey, Unwrap> {
        if self.identities.is_empty() {
            return Err(Unwrap::NoMatch);
        }
        let decryptor = age::Decryptor::new(ArmoredReader::new(armored.as_bytes())).map_err(|_| Unwrap::Malformed)?;
        let mut reader = match decryptor.decrypt(self.identities.iter().map(|i| i as &dyn age::Identity)) {
            Ok(reader) => reader,
            Err(age::DecryptError::NoMatchingKeys) => return Err(Unwrap::NoMatch),
            Err(_) => return Err(Unwrap::Malformed),
        };
        let mut key = zeroize::Zeroizing::new(Vec::new());
        reader.read_to_end(&mut key).map_err(|_| Unwrap::Malformed)?;
        DataKey::from_bytes(&key).ok_or(Unwrap::Malformed)
    }
}

/// Why a stanza gave no data key.
#[derive(Debug, PartialEq)]
pub(crate) enum Unwrap {
    /// None of our identities is its recipient.
    NoMatch,
    /// It is not an age file holding a 32-byte key.
    Malformed,
}

/// Parses an `age1...` recipient.
pub(crate) fn parse_recipient(text: &str) -> Result<x25519::Recipient, SecretsError> {
    text.trim().parse().map_err(|_| SecretsError::BadRecipient(text.to_owned()))
}

/// Wraps a data key for one recipient, armored, as SOPS's age key source
/// does (one age file per recipient).
pub(crate) fn wrap_data_key(recipient: &x25519::Recipient, key: &DataKey) -> Result<String, SecretsError> {
    let age_error = |e: io::Error| SecretsError::Age(e.to_string());
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).map_err(|e| SecretsError::Age(e.to_string()))?;
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(age_error)?;
    let mut writer = encryptor.wrap_output(armor).map_err(age_error)?;
    writer.write_all(key.bytes()).map_err(age_error)?;
    writer.finish().and_then(ArmoredWriter::finish).map_err(age_error)?;
    String::from_utf8(out).map_err(|e| SecretsError::Age(e.to_string()))
}

/// Makes a new identity in `path` (mode 0600, never replacing a file),
/// with `age-keygen`'s comment lines, and returns its recipient.
pub fn keygen(path: &Path) -> Result<String, SecretsError> {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    let secret = identity.to_string();
    let text = zeroize::Zeroizing::new(format!("# created: {created}\n# public key: {recipient}\n{}\n", secret.expose_secret()));
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => SecretsError::Exists { path: path.to_owned() },
        _ => SecretsError::Write { path: path.to_owned(), source },
    })?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|source| SecretsError::Write { path: path.to_owned(), source })?;
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "# created: 2026-12-04T11:30:11Z\n# public key: age1936e3fd238nzs3klxj2vjtp5jld3sjzq9sh7cuy3u0l48craxqjqf7unz8\nAGE-SECRET-KEY-1TVUCTP2FM2DNPL3SJG9H9QF2XG2KSQ2FRGNG0G2ZG40FM9TRWJSQLVM3A9\n";

    #[test]
    fn environment_first_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("keys.txt");
        assert!(Keyring::from_sources(None, None, &default).unwrap().is_empty());
        fs::write(&default, KEY).unwrap();
        assert_eq!(Keyring::from_sources(None, None, &default).unwrap().recipients().len(), 1);
        let other = x25519::Identity::generate();
        let env = Keyring::from_sources(Some(other.to_string().expose_secret()), None, &default).unwrap();
        assert_eq!(env.recipients(), [other.to_public().to_string()]);
        assert!(matches!(Keyring::from_sources(None, Some(&dir.path().join("missing")), &default), Err(SecretsError::Read { .. })));
    }

    #[test]
    fn bad_lines_are_named_without_their_content() {
        let err = Keyring::default().add("# ok\nAGE-SECRET-KEY-1NOTAKEY\n", "keys.txt").unwrap_err().to_string();
        assert_eq!(err, "keys.txt, line 2: not an age x25519 identity (AGE-SECRET-KEY-1...)");
    }

    #[test]
    fn data_keys_round_trip() {
        let mut keyring = Keyring::default();
        keyring.add(KEY, "test").unwrap();
        let key = DataKey::generate();
        let armored = wrap_data_key(&parse_recipient(&keyring.recipients()[0]).unwrap(), &key).unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert_eq!(keyring.unwrap_data_key(&armored).unwrap().bytes(), key.bytes());
        let stranger = wrap_data_key(&x25519::Identity::generate().to_public(), &key).unwrap();
        assert_eq!(keyring.unwrap_data_key(&stranger).err(), Some(Unwrap::NoMatch));
    }
}
