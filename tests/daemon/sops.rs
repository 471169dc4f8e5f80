//! Encrypted Secrets in git: a Secret encrypted by `driftless secrets
//! encrypt` and one encrypted by the real `sops` are decrypted at sync with
//! the data folder's age identity and reach the container; the plaintext
//! reaches no ledger, plan, history or log; a tampered file or one for
//! another key is refused whole at its line while the last good revision
//! keeps running.

use std::process::Command;
use std::time::Duration;

use crate::cluster::{Cluster, name};

const PASSWORD: &str = "correct-horse-battery-staple";
const TOKEN: &str = "tok-8c1f2e9d";

const DB_SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: correct-horse-battery-staple
";

/// `data` is base64 of TOKEN.
const API_SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: api
data:
  token: dG9rLThjMWYyZTlk
";

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sleep, '3600']
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: db, key: password}}
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: api, key: token}}
";

fn sops(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new("sops")
        .args(args)
        .current_dir(&cluster.repo)
        .env("SOPS_AGE_KEY_FILE", cluster.data.join("age/keys.txt"))
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("sops (scripts/setup.sh installs it)")
}

#[test]
fn sops_secrets_are_decrypted_at_sync_and_never_shown() {
    let mut cluster = Cluster::new(&[("apps/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n")]);
    let recipient = cluster.cli_ok(&["secrets", "keygen"]).trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");

    // One Secret encrypted by us, one by the real sops.
    cluster.write("apps/db-secret.yaml", DB_SECRET);
    cluster.cli_ok(&["secrets", "encrypt", cluster.repo.join("apps/db-secret.yaml").to_str().unwrap()]);
    let ours = std::fs::read_to_string(cluster.repo.join("apps/db-secret.yaml")).unwrap();
    assert!(!ours.contains(PASSWORD) && ours.contains("ENC[AES256_GCM,") && ours.contains("name: db"), "{ours}");
    let decrypted = sops(&cluster, &["--decrypt", "apps/db-secret.yaml"]);
    assert!(String::from_utf8_lossy(&decrypted.stdout).contains(PASSWORD), "sops reads what we wrote: {}", String::from_utf8_lossy(&decrypted.stderr));
    cluster.write("apps/api-secret.yaml", API_SECRET);
    let encrypted = sops(&cluster, &["--encrypt", "--age", &recipient, "--encrypted-regex", "^(data|stringData)$", "--in-place", "apps/api-secret.yaml"]);
    assert!(encrypted.status.success(), "{}", String::from_utf8_lossy(&encrypted.stderr));
    cluster.commit(&[("apps/app.yaml", POD)], "the app and its encrypted secrets");
    let valid = cluster.cli_ok(&["validate", cluster.repo.join("apps").to_str().unwrap()]);
    assert!(valid.contains("4 valid, 0 invalid"), "{valid}");

    cluster.start();
    cluster.wait_for("the app running", Duration::from_secs(30), || {
        let pods = cluster.pods();
        pods.iter().any(|p| name(p) == "app" && p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running")).then_some(())
    });
    let env = cluster.cli_ok(&["exec", "app", "--", "env"]);
    assert!(env.contains(&format!("PASSWORD={PASSWORD}")) && env.contains(&format!("TOKEN={TOKEN}")), "{env}");
    let stored = cluster.get("/api/v1/namespaces/default/secrets/db");
    assert!(stored.get("sops").is_none(), "SOPS's metadata is not an object field: {stored}");

    // Where plaintext must never be.
    let grep =
        |pattern: &str| Command::new("git").args(["grep", "-q", "-e", pattern, "refs/driftless/applied"]).current_dir(&cluster.repo).status().unwrap().code();
    assert_eq!(grep("name: db"), Some(0), "the ledger's tree holds the Secret");
    assert_eq!(grep(PASSWORD), Some(1), "but not its value");
    assert_eq!(grep("dG9rLThjMWYyZTlk"), Some(1), "encoded or not");
    let history = cluster.cli_ok(&["history", "-v"]);
    let plan = cluster.cli_ok(&["plan", "--repo", cluster.repo.to_str().unwrap(), "--from", "HEAD~1", "--to", "HEAD", "--path", "apps", "-o", "markdown"]);
    assert!(plan.contains("Secret default/db"), "the plan shows the Secret: {plan}");
    for (place, text) in [("history", &history), ("plan", &plan), ("daemon log", &cluster.daemon_log())] {
        assert!(!text.contains(PASSWORD) && !text.contains(TOKEN), "plaintext in the {place}: {text}");
    }

    // The write path validates with the secrets decrypted, and refuses to
    // edit an encrypted file (that would break its MAC, or commit plaintext).
    cluster.cli_ok(&["annotate", "configmap", "settings", "team=db"]);
    let refused = cluster.cli(&["label", "secret", "db", "tier=backend"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("SOPS-encrypted"), "{said}");
    assert_eq!(std::fs::read_to_string(cluster.repo.join("apps/db-secret.yaml")).unwrap(), ours, "the encrypted file is untouched");
    let first = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();

    // A tampered value: refused whole at its line, the app keeps running.
    let tampered = ours.replacen("ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:AA", 1);
    let line = tampered.lines().position(|l| l.contains("data:AA")).unwrap() + 1;
    let bad = cluster.commit(&[("apps/db-secret.yaml", &tampered)], "tamper with the password");
    let status = cluster.wait_for("the refusal", Duration::from_secs(10), || {
        let status = cluster.cli_ok(&["status"]);
        (status.contains("Refused:") && status.contains(&bad[..7])).then_some(status)
    });
    assert!(status.contains(&format!("apps/db-secret.yaml:{line}:")) && status.contains("cannot decrypt"), "{status}");
    assert!(status.contains(&first[..7]), "the last good revision runs on: {status}");

    // Encrypted for someone else's key: refused, naming the recipients.
    let other = cluster.dir.path().join("other.key");
    let made = Command::new("age-keygen").arg("-o").arg(&other).output().unwrap();
    assert!(made.status.success());
    let other_recipient = String::from_utf8(Command::new("age-keygen").arg("-y").arg(&other).output().unwrap().stdout).unwrap().trim().to_owned();
    cluster.write("apps/db-secret.yaml", DB_SECRET);
    cluster.cli_ok(&["secrets", "encrypt", "--age", &other_recipient, cluster.repo.join("apps/db-secret.yaml").to_str().unwrap()]);
    let foreign = cluster.commit(&[], "a secret for another cluster");
    let status = cluster.wait_for("the refusal", Duration::from_secs(10), || {
        let status = cluster.cli_ok(&["status"]);
        (status.contains("Refused:") && status.contains(&foreign[..7])).then_some(status)
    });
    assert!(status.contains("apps/db-secret.yaml:") && status.contains(&other_recipient), "{status}");
    let env = cluster.cli_ok(&["exec", "app", "--", "env"]);
    assert!(env.contains(&format!("PASSWORD={PASSWORD}")), "{env}");
}
