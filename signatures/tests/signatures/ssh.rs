//! SSH-signed commits: each key type, unsigned, unknown key, tampered
//! commit, wrong sshsig namespace, and the allowed_signers options.

use std::process::Command;

use driftless_signatures::{Format, Refusal};

use crate::support::{Repo, Sign, SshKey, run_with_input, short};

fn good(args: &[&str]) {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", args);
    repo.allow_ssh(&key);
    let oid = repo.commit(Sign::Ssh(&key));
    let signer = repo.verify(oid).expect("allowed signature");
    assert_eq!(signer.commit, oid);
    assert_eq!(signer.format, Format::Ssh);
    assert_eq!(signer.fingerprint, key.fingerprint());
    assert_eq!(signer.principal, "test@example.com");
}

#[test]
fn ed25519_signature_is_accepted() {
    good(&["-t", "ed25519"]);
}

#[test]
fn ecdsa_signature_is_accepted() {
    good(&["-t", "ecdsa"]);
}

#[test]
fn ecdsa_p384_signature_is_accepted() {
    good(&["-t", "ecdsa", "-b", "384"]);
}

#[test]
fn rsa_signature_is_accepted() {
    good(&["-t", "rsa", "-b", "3072"]);
}

#[test]
fn unsigned_commit_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let oid = repo.commit(Sign::No);
    let refused = repo.verify(oid).unwrap_err();
    assert_eq!(refused.refusal, Refusal::Unsigned);
    assert_eq!(refused.to_string(), format!("commit {} is not signed", short(oid)));
}

#[test]
fn key_not_in_the_folder_is_refused() {
    let mut repo = Repo::new();
    let allowed = SshKey::generate(&repo.scratch(), "allowed", &["-t", "ed25519"]);
    let stranger = SshKey::generate(&repo.scratch(), "stranger", &["-t", "ed25519"]);
    repo.allow_ssh(&allowed);
    let oid = repo.commit(Sign::Ssh(&stranger));
    let refused = repo.verify(oid).unwrap_err();
    assert_eq!(refused.refusal, Refusal::UnknownKey { fingerprint: stranger.fingerprint() });
    assert_eq!(refused.to_string(), format!("commit {} is signed by {}, which is not an allowed signer", short(oid), stranger.fingerprint()));
}

#[test]
fn tampered_commit_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let signed = repo.commit(Sign::Ssh(&key));
    let tampered = repo.write_raw(&repo.raw(signed).replace("change 1", "change 1, and a backdoor"));
    assert_ne!(tampered, signed);
    let refused = repo.verify(tampered).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::BadSignature { fingerprint: Some(f), .. } if *f == key.fingerprint()), "{refused:?}");
}

#[test]
fn signature_for_another_namespace_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let unsigned = repo.commit(Sign::No);
    // The same key, over the same bytes, but as `ssh-keygen` signs a file.
    let payload = repo.raw(unsigned);
    let signature = run_with_input(Command::new("ssh-keygen").args(["-q", "-Y", "sign", "-n", "file", "-f"]).arg(&key.path), payload.as_bytes());
    let grafted = repo.graft_signature(unsigned, &signature);
    let refused = repo.verify(grafted).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::BadSignature { reason, .. } if reason.contains("namespace \"file\"")), "{refused:?}");
}

#[test]
fn grafted_git_signature_is_accepted() {
    // The control for the test above: the graft itself is sound.
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let unsigned = repo.commit(Sign::No);
    let payload = repo.raw(unsigned);
    let signature = run_with_input(Command::new("ssh-keygen").args(["-q", "-Y", "sign", "-n", "git", "-f"]).arg(&key.path), payload.as_bytes());
    let grafted = repo.graft_signature(unsigned, &signature);
    repo.verify(grafted).expect("a git-namespace signature over the commit");
}

#[test]
fn key_allowed_only_for_other_namespaces_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_line(&format!("test@example.com namespaces=\"file,mail\" {}", key.public));
    let oid = repo.commit(Sign::Ssh(&key));
    let refused = repo.verify(oid).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::KeyNotValid { .. }), "{refused:?}");
}

#[test]
fn key_past_valid_before_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_line(&format!("test@example.com namespaces=\"git\",valid-before=\"20200101Z\" {}", key.public));
    let oid = repo.commit(Sign::Ssh(&key));
    let refused = repo.verify(oid).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::KeyNotValid { reason, .. } if reason.contains("valid only before")), "{refused:?}");
}

#[test]
fn key_before_valid_after_is_refused() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_line(&format!("test@example.com valid-after=\"29990101\" {}", key.public));
    let oid = repo.commit(Sign::Ssh(&key));
    let refused = repo.verify(oid).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::KeyNotValid { reason, .. } if reason.contains("valid only after")), "{refused:?}");
}

#[test]
fn key_within_its_validity_window_is_accepted() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_line(&format!("test@example.com valid-after=\"20200101Z\",valid-before=\"29990101Z\" {}", key.public));
    let oid = repo.commit(Sign::Ssh(&key));
    repo.verify(oid).expect("valid now");
}

#[test]
fn a_second_line_for_the_key_can_allow_it() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_line(&format!("old@example.com valid-before=\"20200101Z\" {}", key.public));
    repo.allow_line(&format!("new@example.com {}", key.public));
    let oid = repo.commit(Sign::Ssh(&key));
    assert_eq!(repo.verify(oid).expect("second line allows it").principal, "new@example.com");
}

#[test]
fn x509_signature_is_unsupported() {
    let mut repo = Repo::new();
    let unsigned = repo.commit(Sign::No);
    // Only the armor matters: the crate refuses it before reading the body.
    let grafted = repo.graft_signature(unsigned, "-----BEGIN SIGNED MESSAGE-----\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\n-----END SIGNED MESSAGE-----\n");
    let refused = repo.verify(grafted).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::Unsupported(what) if what.contains("x509")), "{refused:?}");
}
