//! `--verify-commits`: heads signed by real git, with SSH keys
//! (`gpg.format=ssh`) and with gpg, are applied only when an allowed key
//! signed them; anything else is refused whole, like an invalid commit,
//! while the last good revision keeps running.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;

fn settings(version: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: \"{version}\"\n")
}

/// `git` in the cluster's repository with more environment (GNUPGHOME).
fn git(cluster: &Cluster, env: &[(&str, &Path)], args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(&cluster.repo)
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.invalid")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ssh_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("{name}@example.invalid"), "-f"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    key
}

/// Commits `settings(version)`, signed with the SSH key `key` if given.
fn commit_ssh(cluster: &Cluster, version: &str, key: Option<&Path>) -> String {
    cluster.write("apps/settings.yaml", &settings(version));
    cluster.git(&["add", "-A"]);
    let message = format!("settings {version}");
    match key {
        Some(key) => {
            let signing = format!("user.signingkey={}", key.display());
            cluster.git(&["-c", "gpg.format=ssh", "-c", &signing, "commit", "-q", "-S", "-m", &message]);
        }
        None => {
            cluster.git(&["commit", "-q", "-m", &message]);
        }
    }
    cluster.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

fn running_version(cluster: &Cluster) -> String {
    cluster.get("/api/v1/namespaces/default/configmaps/settings")["data"]["version"].as_str().unwrap_or_default().to_owned()
}

fn wait_refused(cluster: &Cluster, commit: &str) -> String {
    cluster.wait_for("the refusal", Duration::from_secs(10), || {
        let status = cluster.cli_ok(&["status"]);
        (status.contains("Refused:") && status.contains(&commit[..7])).then_some(status)
    })
}

#[test]
fn only_heads_signed_by_an_allowed_ssh_key_are_applied() {
    let mut cluster = Cluster::new(&[("apps/settings.yaml", &settings("1"))]);
    let keys = cluster.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let alice = ssh_key(cluster.dir.path(), "alice");
    let mallory = ssh_key(cluster.dir.path(), "mallory");
    let public = std::fs::read_to_string(alice.with_extension("pub")).unwrap();
    std::fs::write(keys.join("allowed_signers"), format!("alice@example.invalid namespaces=\"git\" {public}")).unwrap();
    let signing = format!("user.signingkey={}", alice.display());
    cluster.git(&["-c", "gpg.format=ssh", "-c", &signing, "commit", "-q", "--amend", "--no-edit", "-S"]);

    cluster.start_with(&["--verify-commits", keys.to_str().unwrap()]);
    cluster.wait_for("the signed first commit", Duration::from_secs(20), || cluster.try_get("/api/v1/namespaces/default/configmaps/settings").ok());
    assert_eq!(running_version(&cluster), "1");

    // Unsigned: refused whole, recorded where users look.
    let unsigned = commit_ssh(&cluster, "2", None);
    let status = wait_refused(&cluster, &unsigned);
    assert!(status.contains(&format!("commit {} is not signed", &unsigned[..7])), "{status}");
    assert!(status.contains("Running:") && status.contains("initial"), "{status}");
    assert_eq!(running_version(&cluster), "1", "the last good revision keeps running");
    let history = cluster.cli_ok(&["history", "-v"]);
    assert!(history.contains("refused") && history.contains("is not signed"), "{history}");
    let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
    assert!(ledger.starts_with("refused") && ledger.contains("is not signed"), "{ledger}");
    let events = cluster.cli_ok(&["get", "events"]);
    assert!(events.contains("SyncRefused"), "{events}");

    // Signed, but by a key nobody allowed.
    let forged = commit_ssh(&cluster, "3", Some(&mallory));
    let status = wait_refused(&cluster, &forged);
    assert!(status.contains("which is not an allowed signer") || status.contains("not an allowed signer"), "{status}");
    assert_eq!(running_version(&cluster), "1");

    // Signed by alice: applied (head mode checks the head only).
    let good = commit_ssh(&cluster, "4", Some(&alice));
    cluster.wait_for("the signed head", Duration::from_secs(10), || (running_version(&cluster) == "4").then_some(()));
    let status = cluster.cli_ok(&["status"]);
    assert!(!status.contains("Refused:") && status.contains(&good[..7]), "{status}");
}

/// Stops the test's gpg-agent, even when the test fails.
struct GnupgHome(std::path::PathBuf);

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").args(["--kill", "all"]).env("GNUPGHOME", &self.0).status();
    }
}

#[test]
fn every_commit_since_the_applied_one_must_be_signed_in_all_mode() {
    let mut cluster = Cluster::new(&[("apps/settings.yaml", &settings("1"))]);
    let home = cluster.dir.path().join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let home = GnupgHome(home);
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg").args(["--batch", "--quiet"]).args(args).env("GNUPGHOME", &home.0).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    gpg(&["--passphrase", "", "--quick-gen-key", "Bob <bob@example.invalid>", "ed25519", "sign", "never"]);
    let fingerprint = gpg(&["--with-colons", "--list-keys", "bob@example.invalid"])
        .lines()
        .find_map(|l| l.strip_prefix("fpr:").map(|rest| rest.trim_matches(':').to_owned()))
        .unwrap();
    let keys = cluster.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("bob.asc"), gpg(&["--armor", "--export", &fingerprint])).unwrap();
    let env = [("GNUPGHOME", home.0.as_path())];
    let signing = format!("user.signingkey={fingerprint}");
    git(&cluster, &env, &["-c", "gpg.program=gpg", "-c", &signing, "commit", "-q", "--amend", "--no-edit", "-S"]);

    cluster.start_with(&["--verify-commits", keys.to_str().unwrap(), "--verify-commits-mode", "all"]);
    cluster.wait_for("the signed first commit", Duration::from_secs(20), || cluster.try_get("/api/v1/namespaces/default/configmaps/settings").ok());

    // An unsigned commit under a signed head: the head alone would pass.
    cluster.write("apps/settings.yaml", &settings("2"));
    cluster.git(&["add", "-A"]);
    let unsigned = {
        cluster.git(&["commit", "-q", "-m", "unsigned in the middle"]);
        cluster.git(&["rev-parse", "HEAD"]).trim().to_owned()
    };
    cluster.write("apps/settings.yaml", &settings("3"));
    cluster.git(&["add", "-A"]);
    git(&cluster, &env, &["-c", "gpg.program=gpg", "-c", &signing, "commit", "-q", "-S", "-m", "signed head"]);
    let head = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let status = wait_refused(&cluster, &head);
    assert!(status.contains(&format!("commit {} is not signed", &unsigned[..7])), "the refusal names the unsigned commit: {status}");
    assert_eq!(running_version(&cluster), "1");
    let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
    assert!(ledger.starts_with("refused") && ledger.contains(&unsigned[..7]), "{ledger}");
}
