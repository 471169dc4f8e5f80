//! OpenPGP-signed commits: ed25519 and rsa3072 keys, a signing subkey,
//! unknown key, tampered commit, expired and revoked keys.

use std::fs;

use driftless_signatures::{Format, Refusal};

use crate::support::{GnupgHome, Repo, Sign};

const UID: &str = "Test <t@example.com>";

fn good(algo: &str) {
    let mut repo = Repo::new();
    let signer = GnupgHome::new();
    let fpr = signer.generate(UID, algo, "never", &[]);
    repo.allow_openpgp("test", &signer.export(&fpr));
    let oid = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: None });
    let verdict = repo.verify(oid).expect("allowed signature");
    assert_eq!(verdict.format, Format::OpenPgp);
    assert_eq!(verdict.fingerprint, fpr);
    assert_eq!(verdict.principal, UID);
}

#[test]
fn ed25519_signature_is_accepted() {
    good("ed25519");
}

#[test]
fn rsa3072_signature_is_accepted() {
    good("rsa3072");
}

#[test]
fn signing_subkey_is_accepted() {
    let mut repo = Repo::new();
    let signer = GnupgHome::new();
    let fpr = signer.generate(UID, "ed25519", "never", &[]);
    signer.add_signing_subkey(&fpr, "ed25519");
    repo.allow_openpgp("test", &signer.export(&fpr));
    // gpg signs with the newest signing subkey, not the primary key.
    let oid = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: None });
    let raw = repo.raw(oid);
    assert!(raw.contains("-----BEGIN PGP SIGNATURE-----"));
    assert_eq!(repo.verify(oid).expect("subkey signature").fingerprint, fpr);
}

#[test]
fn key_not_in_the_folder_is_refused() {
    let mut repo = Repo::new();
    let allowed = GnupgHome::new();
    let allowed_fpr = allowed.generate(UID, "ed25519", "never", &[]);
    let stranger = GnupgHome::new();
    let stranger_fpr = stranger.generate("Stranger <s@example.com>", "ed25519", "never", &[]);
    repo.allow_openpgp("test", &allowed.export(&allowed_fpr));
    let oid = repo.commit(Sign::Gpg { home: &stranger, key: &stranger_fpr, program: None });
    let refused = repo.verify(oid).unwrap_err();
    assert_eq!(refused.refusal, Refusal::UnknownKey { fingerprint: stranger_fpr });
}

#[test]
fn several_keys_in_one_armored_file() {
    let mut repo = Repo::new();
    let first = GnupgHome::new();
    let first_fpr = first.generate("First <f@example.com>", "ed25519", "never", &[]);
    let second = GnupgHome::new();
    let second_fpr = second.generate("Second <s@example.com>", "ed25519", "never", &[]);
    // Two armored blocks, one after the other, as `cat a.asc b.asc` makes.
    repo.allow_openpgp("team", &format!("{}{}", first.export(&first_fpr), second.export(&second_fpr)));
    let oid = repo.commit(Sign::Gpg { home: &second, key: &second_fpr, program: None });
    assert_eq!(repo.verify(oid).expect("second key of the file").principal, "Second <s@example.com>");
}

#[test]
fn tampered_commit_is_refused() {
    let mut repo = Repo::new();
    let signer = GnupgHome::new();
    let fpr = signer.generate(UID, "ed25519", "never", &[]);
    repo.allow_openpgp("test", &signer.export(&fpr));
    let signed = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: None });
    let tampered = repo.write_raw(&repo.raw(signed).replace("change 1", "change 1, and a backdoor"));
    let refused = repo.verify(tampered).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::BadSignature { fingerprint: Some(f), .. } if *f == fpr), "{refused:?}");
}

#[test]
fn expired_key_is_refused() {
    let mut repo = Repo::new();
    let signer = GnupgHome::new();
    // A key made in 2020 that expired a day later, and a commit signed
    // while it was valid: gpg (EXPKEYSIG) and git refuse it now.
    let faked = ["--faked-system-time", "20200101T000000!"];
    let fpr = signer.generate(UID, "ed25519", "1d", &faked);
    let wrapper = repo.scratch().join("gpg-in-2020");
    fs::write(&wrapper, "#!/bin/sh\nexec gpg --faked-system-time 20200101T010000! \"$@\"\n").expect("wrapper");
    let mut perms = fs::metadata(&wrapper).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&wrapper, perms).expect("chmod");
    repo.allow_openpgp("test", &signer.export(&fpr));
    let oid = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: Some(&wrapper) });
    let refused = repo.verify(oid).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::KeyNotValid { reason, .. } if reason.contains("expired")), "{refused:?}");
}

#[test]
fn revoked_key_is_refused() {
    let mut repo = Repo::new();
    let signer = GnupgHome::new();
    let fpr = signer.generate(UID, "ed25519", "never", &[]);
    let oid = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: None });
    signer.revoke(&fpr);
    repo.allow_openpgp("test", &signer.export(&fpr));
    let refused = repo.verify(oid).unwrap_err();
    assert!(matches!(&refused.refusal, Refusal::KeyNotValid { reason, .. } if reason.contains("revoked")), "{refused:?}");
}

#[test]
fn ssh_key_does_not_allow_openpgp_signature() {
    // A folder with only SSH keys refuses a gpg signature as unknown.
    let mut repo = Repo::new();
    let key = crate::support::SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let signer = GnupgHome::new();
    let fpr = signer.generate(UID, "ed25519", "never", &[]);
    let oid = repo.commit(Sign::Gpg { home: &signer, key: &fpr, program: None });
    assert!(matches!(repo.verify(oid).unwrap_err().refusal, Refusal::UnknownKey { .. }));
}
