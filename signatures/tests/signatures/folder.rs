//! Reading the folder of allowed signers: which files count, and errors
//! that name the file and line.

use std::fs;

use driftless_signatures::{AllowedSigners, SignatureError};

use crate::support::{GnupgHome, Repo, Sign, SshKey};

#[test]
fn every_kind_of_file_is_read_and_others_ignored() {
    let repo = Repo::new();
    let keys = repo.keys();
    let scratch = repo.scratch();
    let a = SshKey::generate(&scratch, "a", &["-t", "ed25519"]);
    let b = SshKey::generate(&scratch, "b", &["-t", "ed25519"]);
    let c = SshKey::generate(&scratch, "c", &["-t", "ecdsa"]);
    fs::write(keys.join("allowed_signers"), format!("# the team\n\na@example.com {}\n", a.public)).expect("write");
    fs::write(keys.join("ops.allowed_signers"), format!("b@example.com namespaces=\"git\" {}\n", b.public)).expect("write");
    fs::copy(c.pub_path(), keys.join("c.pub")).expect("copy");
    let gpg = GnupgHome::new();
    let fpr = gpg.generate("Test <t@example.com>", "ed25519", "never", &[]);
    fs::write(keys.join("t.asc"), gpg.export(&fpr)).expect("write");
    let binary = std::process::Command::new("gpg").env("GNUPGHOME", gpg.path()).args(["--batch", "--export", &fpr]).output().expect("export");
    fs::write(keys.join("t.gpg"), binary.stdout).expect("write");
    fs::write(keys.join("README.md"), "not a key").expect("write");
    fs::write(keys.join(".hidden.pub"), "not a key").expect("write");
    let signers = AllowedSigners::load(&keys).expect("load");
    assert_eq!(signers.len(), 5);
    assert!(!signers.is_empty());
}

#[test]
fn pub_file_principal_is_the_key_comment() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "dev", &["-t", "ed25519"]);
    fs::copy(key.pub_path(), repo.keys().join("dev.pub")).expect("copy");
    let oid = repo.commit(Sign::Ssh(&key));
    let signers = AllowedSigners::load(&repo.keys()).expect("load");
    let git = git2::Repository::open(repo.path()).expect("open");
    let signer = driftless_signatures::verify_commit(&git, oid, &signers).expect("allowed by the .pub file");
    assert_eq!(signer.principal, "dev@example.com");
}

#[test]
fn empty_folder_allows_nothing() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    let oid = repo.commit(Sign::Ssh(&key));
    let signers = AllowedSigners::load(&repo.keys()).expect("load");
    assert!(signers.is_empty());
    assert!(repo.verify(oid).is_err());
}

#[test]
fn bad_line_is_named_by_file_and_line() {
    let repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "a", &["-t", "ed25519"]);
    fs::write(repo.keys().join("team.allowed_signers"), format!("a@example.com {}\n# ok so far\nb@example.com frobnicate=1 {}\n", key.public, key.public))
        .expect("write");
    let error = AllowedSigners::load(&repo.keys()).unwrap_err();
    assert!(matches!(&error, SignatureError::Line { line: 3, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("team.allowed_signers:3: unknown option"), "{message}");
}

#[test]
fn private_key_in_asc_is_an_error() {
    let repo = Repo::new();
    let gpg = GnupgHome::new();
    let fpr = gpg.generate("Test <t@example.com>", "ed25519", "never", &[]);
    let secret = crate::support::run(gpg.gpg().args(["--armor", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", &fpr]));
    fs::write(repo.keys().join("oops.asc"), format!("# exported by mistake\n{secret}")).expect("write");
    let message = AllowedSigners::load(&repo.keys()).unwrap_err().to_string();
    assert!(message.contains("oops.asc:2: this is a private key"), "{message}");
}

#[test]
fn garbage_pub_file_is_an_error() {
    let repo = Repo::new();
    fs::write(repo.keys().join("x.pub"), "ssh-ed25519 not-base64\n").expect("write");
    let message = AllowedSigners::load(&repo.keys()).unwrap_err().to_string();
    assert!(message.contains("x.pub:1: bad public key"), "{message}");
}

#[test]
fn missing_folder_is_an_error() {
    let repo = Repo::new();
    let error = AllowedSigners::load(&repo.keys().join("absent")).unwrap_err();
    assert!(matches!(error, SignatureError::Read { .. }), "{error:?}");
}
