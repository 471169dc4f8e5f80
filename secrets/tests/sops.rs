//! Decrypting files made by the real `sops` (committed fixtures, so these
//! run without it), encrypting files the real `sops` reads back (skipped
//! with a notice when `sops` is absent), and the errors, with their lines.
//!
//! Touches only temporary directories and the fixtures, read-only.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_secrets::{DecryptError, Keyring, SecretsError, decrypt, encrypt_secret, is_encrypted, keygen};

const RECIPIENT: &str = "age1936e3fd238nzs3klxj2vjtp5jld3sjzq9sh7cuy3u0l48craxqjqf7unz8";
const OTHER_RECIPIENT: &str = "age1w3uux4azlykrz0aqdef77rz0w8q8zxqk6s4ym7mju4rv9g77ce5qnkzpr3";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn keyring() -> Keyring {
    Keyring::load(&fixtures().join("test-key.txt")).unwrap()
}

/// Every document of a YAML (or JSON) text, as values (tags kept).
fn documents(text: &str) -> Vec<serde_yaml_ng::Value> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(text).map(|d| serde_yaml_ng::Value::deserialize(d).unwrap()).filter(|v| !v.is_null()).collect()
}

/// What `sops --decrypt` gives for a plaintext fixture: the same, except
/// that go-yaml rewrites timestamps and drops custom tags
/// (`types.dec.yaml` was made by `sops --decrypt types.enc.yaml`).
fn sops_view(plain: &str) -> &str {
    if plain == "types.plain.yaml" { "types.dec.yaml" } else { plain }
}

fn decrypt_text(text: &str) -> Result<String, DecryptError> {
    decrypt(text.as_bytes(), &keyring()).map(|b| String::from_utf8(b).unwrap())
}

/// The line (1-based) of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?}")) + 1
}

/// Checks that `out` has `enc`'s lines: same count, the `sops:` blocks
/// empty, every other line's key (up to its `:`) where it was.
fn assert_same_lines(enc: &str, out: &str) {
    let (enc_lines, out_lines): (Vec<&str>, Vec<&str>) = (enc.split('\n').collect(), out.split('\n').collect());
    assert_eq!(enc_lines.len(), out_lines.len(), "line count changed:\n{out}");
    let mut in_sops = false;
    for (number, (e, o)) in enc_lines.iter().zip(&out_lines).enumerate() {
        let trimmed = e.trim_start();
        if *e == "sops:" || trimmed.starts_with("\"sops\":") {
            in_sops = true;
        } else if in_sops && !e.starts_with([' ', '\t']) {
            in_sops = false;
        }
        if in_sops {
            assert!(o.trim().is_empty(), "line {} of the sops block is not empty: {o:?}", number + 1);
            continue;
        }
        if let Some(colon) = e.find(": ").or_else(|| e.strip_suffix(':').map(str::len)) {
            assert_eq!(&o[..colon.min(o.len())], &e[..colon], "line {} moved", number + 1);
        }
    }
}

#[test]
fn sops_fixtures_decrypt_to_their_plaintext_on_the_same_lines() {
    for (encrypted, plain) in [
        ("secret.enc.yaml", "secret.plain.yaml"),
        ("multi.enc.yaml", "multi.plain.yaml"),
        ("secret.enc.json", "secret.plain.json"),
        ("default-rules.enc.yaml", "rules.plain.yaml"),
        ("comment-regex.enc.yaml", "rules.plain.yaml"),
        ("mac-only.enc.yaml", "rules.plain.yaml"),
        ("types.enc.yaml", "types.dec.yaml"),
    ] {
        let enc = fixture(encrypted);
        assert!(is_encrypted(enc.as_bytes()), "{encrypted}");
        let out = decrypt_text(&enc).unwrap_or_else(|e| panic!("{encrypted}: {e}"));
        assert_eq!(documents(&out), documents(&fixture(plain)), "{encrypted} decrypted to:\n{out}");
        assert_same_lines(&enc, &out);
        assert!(!is_encrypted(out.as_bytes()), "{encrypted}");
    }
}

#[test]
fn values_are_single_line_yaml_and_comments_are_decrypted() {
    let enc = fixture("secret.enc.yaml");
    let out = decrypt_text(&enc).unwrap();
    let line = |n: usize| out.lines().nth(n - 1).unwrap().to_owned();
    assert_eq!(
        line(line_of(&enc, "tls.crt:")),
        format!(
            "    tls.crt: \"-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIUQ2xhdWRlIHRlc3QgY2VydGlmaWNhdGUwCgYIKoZIzj0E\\nAwIwDzENMAsGA1UEAwwEdGVzdDAeFw0yNTAxMDEwMDAwMDBaFw0zNTAxMDEwMDAw\\n-----END CERTIFICATE-----\\n\""
        )
    );
    assert_eq!(line(line_of(&enc, "port:")), "    port: 5432");
    assert_eq!(line(line_of(&enc, "debug:")), "    debug: true");
    assert_eq!(line(line_of(&enc, "ratio:")), "    ratio: 0.25");
    assert_eq!(line(line_of(&enc, "type:comment")), "    # The certificate chain, PEM.");
    assert_eq!(line(1), "# A Secret for the web app; this comment stays plaintext.");
}

#[test]
fn a_file_for_another_recipient_names_the_recipients() {
    let enc = fixture("other-recipient.enc.yaml");
    let err = decrypt_text(&enc).unwrap_err();
    assert_eq!((err.line, err.col), (line_of(&enc, "sops:"), 1));
    assert!(err.message.contains(OTHER_RECIPIENT), "{err}");
    assert!(!err.message.contains(RECIPIENT), "{err}");
    let empty = decrypt(enc.as_bytes(), &Keyring::default()).unwrap_err();
    assert!(empty.message.contains("0 identities"), "{empty}");
}

#[test]
fn a_tampered_value_fails_at_its_line() {
    let enc = fixture("tampered-value.enc.yaml");
    let err = decrypt_text(&enc).unwrap_err();
    assert_eq!((err.line, err.col), (line_of(&enc, "tls.key:"), 14), "{err}");
    assert!(err.message.contains("altered"), "{err}");
}

#[test]
fn a_value_moved_to_another_key_fails() {
    let enc = fixture("multi.enc.yaml");
    // `password`'s ciphertext under a new key: its path no longer verifies.
    let moved = enc.replacen("    password: ENC", "    pass: ENC", 1);
    let err = decrypt_text(&moved).unwrap_err();
    assert_eq!(err.line, line_of(&moved, "pass: ENC"), "{err}");
}

#[test]
fn tampered_plaintext_or_mac_fails_at_the_sops_key() {
    let enc = fixture("secret.enc.yaml");
    let sops_line = line_of(&enc, "sops:");
    let renamed = enc.replacen("name: web-tls", "name: web-tlz", 1);
    let err = decrypt_text(&renamed).unwrap_err();
    assert_eq!((err.line, err.col), (sops_line, 1), "{err}");
    assert!(err.message.contains("MAC mismatch"), "{err}");

    let mac_start = enc.find("mac: ENC[AES256_GCM,data:").unwrap() + "mac: ENC[AES256_GCM,data:".len();
    let mut bad_mac = enc.clone();
    let flipped = if &enc[mac_start..=mac_start] == "A" { "B" } else { "A" };
    bad_mac.replace_range(mac_start..=mac_start, flipped);
    let err = decrypt_text(&bad_mac).unwrap_err();
    assert_eq!((err.line, err.col), (sops_line, 1), "{err}");
    assert!(err.message.contains("sops.mac"), "{err}");

    let no_mac: String = enc.lines().filter(|l| !l.starts_with("    mac:")).map(|l| format!("{l}\n")).collect();
    let err = decrypt_text(&no_mac).unwrap_err();
    assert_eq!((err.line, err.col), (sops_line, 1), "{err}");
    assert!(err.message.contains("`sops.mac` is missing"), "{err}");

    let moved_time = enc.replacen("lastmodified: \"2026", "lastmodified: \"2027", 1);
    assert!(decrypt_text(&moved_time).is_err());
}

#[test]
fn plaintext_where_a_value_should_be_encrypted_fails_at_it() {
    let enc = fixture("multi.enc.yaml");
    let line = line_of(&enc, "token: ENC");
    let start = enc.find("token: ENC").unwrap();
    let end = start + enc[start..].find('\n').unwrap();
    let mut plain = enc.clone();
    plain.replace_range(start..end, "token: c2VjcmV0LXRva2Vu");
    let err = decrypt_text(&plain).unwrap_err();
    assert_eq!((err.line, err.col), (line, 12), "{err}");
}

#[test]
fn files_without_sops_metadata_are_refused() {
    let err = decrypt_text(&fixture("secret.plain.yaml")).unwrap_err();
    assert_eq!((err.line, err.col), (1, 1));
    assert!(!is_encrypted(fixture("secret.plain.yaml").as_bytes()));
    let err = decrypt_text("a: [unclosed\n").unwrap_err();
    assert!(err.message.starts_with("not valid YAML"), "{err}");
}

#[test]
fn encrypted_secrets_decrypt_back_here() {
    for plain in ["secret.plain.yaml", "multi.plain.yaml", "rules.plain.yaml", "types.plain.yaml"] {
        let text = fixture(plain);
        let enc = String::from_utf8(encrypt_secret(text.as_bytes(), &[RECIPIENT.to_owned(), OTHER_RECIPIENT.to_owned()]).unwrap()).unwrap();
        assert!(is_encrypted(enc.as_bytes()));
        assert!(!enc.contains("hunter2") && !enc.contains("BEGIN CERTIFICATE") && !enc.contains("The certificate chain"), "{enc}");
        assert!(enc.contains("name: web-tls") || !plain.starts_with("secret"));
        assert_eq!(enc.matches("recipient: ").count(), 2 * documents(&text).len());
        let out = decrypt_text(&enc).unwrap();
        assert_eq!(documents(&out), documents(&text), "{plain}");
        assert_same_lines(&enc, &out);
    }
}

#[test]
fn encrypt_refuses_what_is_not_a_plaintext_secret() {
    let recipients = [RECIPIENT.to_owned()];
    assert!(matches!(encrypt_secret(fixture("secret.enc.yaml").as_bytes(), &recipients), Err(SecretsError::AlreadyEncrypted)));
    let config_map = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n";
    assert!(matches!(encrypt_secret(config_map.as_bytes(), &recipients), Err(SecretsError::Manifest { line: 2, col: 7, .. })));
    assert!(matches!(encrypt_secret(fixture("secret.plain.json").as_bytes(), &recipients), Err(SecretsError::Manifest { .. })));
    assert!(matches!(encrypt_secret(fixture("secret.plain.yaml").as_bytes(), &[]), Err(SecretsError::NoRecipients)));
    assert!(matches!(encrypt_secret(fixture("secret.plain.yaml").as_bytes(), &["age1nope".to_owned()]), Err(SecretsError::BadRecipient(_))));
}

#[test]
fn keygen_writes_an_identity_age_keygen_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("age.key");
    let recipient = keygen(&path).unwrap();
    assert!(recipient.starts_with("age1"));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# created: "), "{text}");
    assert!(text.contains(&format!("# public key: {recipient}\n")));
    assert_eq!(Keyring::load(&path).unwrap().recipients(), [recipient.as_str()]);
    assert!(matches!(keygen(&path), Err(SecretsError::Exists { .. })));
    assert!(!format!("{:?}", Keyring::load(&path).unwrap()).contains("AGE-SECRET-KEY"));
    match Command::new("age-keygen").arg("-y").arg(&path).output() {
        Ok(out) => assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), recipient),
        Err(_) => eprintln!("NOTICE: age-keygen is not installed; skipped checking keygen's file with it"),
    }
}

/// The armored data key of the first age stanza in a SOPS YAML text.
fn first_stanza(enc: &str) -> String {
    let start = enc.find("-----BEGIN AGE ENCRYPTED FILE-----").unwrap();
    let end = enc.find("-----END AGE ENCRYPTED FILE-----").unwrap() + "-----END AGE ENCRYPTED FILE-----".len();
    enc[start..end].lines().map(|l| format!("{}\n", l.trim())).collect()
}

#[test]
fn the_age_stanza_is_a_real_age_file() {
    // age cannot open a SOPS file, but each stanza is an age file holding
    // the 32-byte data key.
    let enc = String::from_utf8(encrypt_secret(fixture("secret.plain.yaml").as_bytes(), &[RECIPIENT.to_owned()]).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stanza.age"), first_stanza(&enc)).unwrap();
    std::fs::write(dir.path().join("file.yaml"), &enc).unwrap();
    let age = |input: &str| Command::new("age").arg("--decrypt").arg("-i").arg(fixtures().join("test-key.txt")).arg(dir.path().join(input)).output();
    match (age("stanza.age"), age("file.yaml")) {
        (Ok(stanza), Ok(file)) => {
            assert!(stanza.status.success(), "{}", String::from_utf8_lossy(&stanza.stderr));
            assert_eq!(stanza.stdout.len(), 32);
            assert!(!file.status.success());
        }
        _ => eprintln!("NOTICE: age is not installed; skipped checking the stanza with it"),
    }
}

fn sops_available() -> bool {
    let found = Command::new("sops").arg("--version").arg("--disable-version-check").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("NOTICE: sops is not installed; skipped the round trip with the real tool");
    }
    found
}

fn sops(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("sops")
        .args(args)
        .env("SOPS_AGE_KEY_FILE", fixtures().join("test-key.txt"))
        .env_remove("SOPS_AGE_KEY")
        .env("HOME", dir)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn real_sops_decrypts_what_we_encrypt() {
    if !sops_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for plain in ["secret.plain.yaml", "multi.plain.yaml", "rules.plain.yaml", "types.plain.yaml"] {
        let text = fixture(plain);
        let enc = encrypt_secret(text.as_bytes(), &[RECIPIENT.to_owned()]).unwrap();
        let path = dir.path().join("secret.enc.yaml");
        std::fs::write(&path, &enc).unwrap();
        let out = sops(&["--decrypt", path.to_str().unwrap()], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{plain}: {stderr}");
        assert!(!stderr.contains("unencrypted comment"), "{plain}: {stderr}");
        assert_eq!(documents(&String::from_utf8(out.stdout).unwrap()), documents(&fixture(sops_view(plain))), "{plain}");
    }
}

#[test]
fn we_decrypt_what_real_sops_encrypts_now() {
    if !sops_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture("secret.plain.yaml");
    std::fs::write(dir.path().join("secret.yaml"), &plain).unwrap();
    for extra in [
        &["--encrypted-regex", "^(data|stringData)$"][..],
        &["--unencrypted-regex", "^(apiVersion|kind|name|namespace|type)$"][..],
        &["--encrypted-suffix", "Data"][..],
        &[][..],
    ] {
        let mut args = vec!["--encrypt", "--age", RECIPIENT];
        args.extend_from_slice(extra);
        args.push("secret.yaml");
        let out = sops(&args, dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let enc = String::from_utf8(out.stdout).unwrap();
        let decrypted = decrypt_text(&enc).unwrap_or_else(|e| panic!("{extra:?}: {e}\n{enc}"));
        assert_eq!(documents(&decrypted), documents(&plain), "{extra:?}");
        assert_same_lines(&enc, &decrypted);
    }
}
