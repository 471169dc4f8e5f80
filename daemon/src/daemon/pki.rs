//! The API listener's certificates and tokens, kept in the data folder:
//! a CA made on first start (`pki/ca.crt`, `pki/ca.key`), a serving
//! certificate it signs for the node's names and addresses
//! (`pki/apiserver.crt`, `.key`; made again when the names change, still
//! signed by the same CA, so kubeconfigs stay valid), and a tokens file
//! with one admin token made on first start (`tokens.csv`, kube-apiserver's
//! static token format). Keys and tokens are written mode 0600.
//!
//! Must not touch: the network; it writes only under the data folder.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::CommandError;

/// The CA's common name; the serving certificate's issuer is rebuilt from
/// it when the certificate is made again.
const CA_NAME: &str = "driftless-ca";

/// The PEM texts the listener serves with.
pub(crate) struct Serving {
    /// The certificate, then the CA's.
    pub chain: Vec<u8>,
    /// The certificate's key.
    pub key: Vec<u8>,
}

/// Where the files are.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

/// The CA certificate a client should trust.
pub(crate) fn ca_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("ca.crt")
}

/// The tokens file made on first start.
pub(crate) fn default_tokens(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.csv")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CommandError + '_ {
    move |source| CommandError::Io { path: path.to_owned(), source }
}

fn tls(error: rcgen::Error) -> CommandError {
    CommandError::Usage(format!("making the API's certificate: {error}"))
}

/// Writes `text` to `path`, readable by its owner only when `secret`.
fn write(path: &Path, text: &[u8], secret: bool) -> Result<(), CommandError> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).map_err(io(&partial))?;
    if secret {
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600)).map_err(io(&partial))?;
    }
    // Renamed into place so a crash never leaves half a key.
    std::fs::rename(&partial, path).map_err(io(path))
}

fn ca_params() -> Result<CertificateParams, CommandError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// The serving certificate for `names` (DNS names and IP addresses), made
/// (with the CA, on first start) or read from the data folder.
pub(crate) fn serving(data_dir: &Path, names: &[String]) -> Result<Serving, CommandError> {
    let dir = dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if !ca_crt.exists() || !ca_key.exists() {
        let key = KeyPair::generate().map_err(tls)?;
        let cert = ca_params()?.self_signed(&key).map_err(tls)?;
        write(&ca_key, key.serialize_pem().as_bytes(), true)?;
        write(&ca_crt, cert.pem().as_bytes(), false)?;
        tracing::info!(path = %ca_crt.display(), "made the API's certificate authority");
    }
    let (crt, key, noted) = (dir.join("apiserver.crt"), dir.join("apiserver.key"), dir.join("apiserver.names"));
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&noted).unwrap_or_default();
    if !crt.exists() || !key.exists() || current != wanted {
        let ca_key_pem = std::fs::read_to_string(&ca_key).map_err(io(&ca_key))?;
        let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(&ca_key_pem).map_err(tls)?);
        let leaf_key = KeyPair::generate().map_err(tls)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(tls)?;
        params.distinguished_name.push(DnType::CommonName, "driftless-apiserver");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&leaf_key, &issuer).map_err(tls)?;
        write(&key, leaf_key.serialize_pem().as_bytes(), true)?;
        write(&crt, cert.pem().as_bytes(), false)?;
        write(&noted, wanted.as_bytes(), false)?;
        tracing::info!(names = ?names, "made the API's serving certificate");
    }
    let mut chain = std::fs::read(&crt).map_err(io(&crt))?;
    chain.extend(std::fs::read(&ca_crt).map_err(io(&ca_crt))?);
    Ok(Serving { chain, key: std::fs::read(&key).map_err(io(&key))? })
}

/// The tokens file at `path`, made with one random admin token when it
/// does not exist.
pub(crate) fn tokens(path: &Path) -> Result<driftless_api::auth::Tokens, CommandError> {
    if !path.exists() {
        let mut random = [0u8; 24];
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random)).map_err(io(Path::new("/dev/urandom")))?;
        let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let text = format!("# token,user,uid,\"groups\" (kube-apiserver's --token-auth-file format)\n{token},admin,admin@driftless.local,\"system:masters\"\n");
        write(path, text.as_bytes(), true)?;
        tracing::info!(path = %path.display(), "made a tokens file with an admin token");
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    driftless_api::auth::Tokens::parse(&text).map_err(|e| CommandError::Usage(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_is_made_once_and_again_for_new_names_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = serving(dir.path(), &names).unwrap();
        let ca = std::fs::read(ca_path(dir.path())).unwrap();
        assert!(first.chain.ends_with(&ca), "the chain ends with the CA");
        assert_eq!(serving(dir.path(), &names).unwrap().chain, first.chain, "kept while the names are the same");
        let more = [names.clone(), vec!["node-1".to_owned()]].concat();
        let second = serving(dir.path(), &more).unwrap();
        assert_ne!(second.chain, first.chain);
        assert_eq!(std::fs::read(ca_path(dir.path())).unwrap(), ca, "the CA stays");
        let mode = std::fs::metadata(dir.path().join("pki/apiserver.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // rustls accepts the pair, and a client trusting the CA alone.
        driftless_api::tls::server_config(&second.chain, &second.key).unwrap();
        driftless_api::tls::client_config(&ca).unwrap();
    }

    #[test]
    fn a_tokens_file_is_made_with_an_admin_token_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_tokens(dir.path());
        let made = tokens(&path).unwrap();
        let token = made.token_of("admin").unwrap().to_owned();
        assert_eq!(token.len(), 48);
        assert_eq!(tokens(&path).unwrap().token_of("admin"), Some(token.as_str()), "kept on the next start");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
