//! Helpers for the integration tests: throwaway repositories, keys made by
//! the real `ssh-keygen` and `gpg`, commits signed by the real `git`, and
//! `git verify-commit` as the reference verdict. Owns no assertions about
//! the crate; each test module makes its own.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use driftless_signatures::{AllowedSigners, Refused, Signer};
use git2::Oid;
use tempfile::TempDir;

/// Runs `command`, panicking with its stderr when it fails; returns stdout.
pub(crate) fn run(command: &mut Command) -> String {
    run_with_input(command, b"")
}

/// Like `run`, feeding `input` on stdin.
pub(crate) fn run_with_input(command: &mut Command, input: &[u8]) -> String {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// An SSH key pair made by `ssh-keygen`.
pub(crate) struct SshKey {
    /// The private key file.
    pub(crate) path: PathBuf,
    /// The `.pub` line.
    pub(crate) public: String,
}

impl SshKey {
    /// `ssh-keygen -t <args> -N '' -f dir/name`.
    pub(crate) fn generate(dir: &Path, name: &str, args: &[&str]) -> SshKey {
        let path = dir.join(name);
        run(Command::new("ssh-keygen").arg("-q").args(args).args(["-N", "", "-C", &format!("{name}@example.com"), "-f"]).arg(&path));
        let public = fs::read_to_string(path.with_extension("pub")).expect("read .pub").trim().to_owned();
        SshKey { path, public }
    }

    /// The public key file.
    pub(crate) fn pub_path(&self) -> PathBuf {
        self.path.with_extension("pub")
    }

    /// `SHA256:...` as `ssh-keygen -l` prints it.
    pub(crate) fn fingerprint(&self) -> String {
        let out = run(Command::new("ssh-keygen").arg("-lf").arg(self.pub_path()));
        out.split_whitespace().nth(1).expect("fingerprint field").to_owned()
    }
}

/// A temporary `GNUPGHOME`. Dropping it kills its gpg-agent, also when the
/// test failed, so no process outlives the test.
pub(crate) struct GnupgHome {
    dir: TempDir,
}

impl GnupgHome {
    /// An empty keyring.
    pub(crate) fn new() -> GnupgHome {
        // Under /tmp, short, because the agent's socket path has a length limit.
        let dir = tempfile::Builder::new().prefix("gnupg").tempdir_in("/tmp").expect("gnupg home");
        let mut perms = fs::metadata(dir.path()).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        fs::set_permissions(dir.path(), perms).expect("chmod");
        GnupgHome { dir }
    }

    /// The folder, for `GNUPGHOME`.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `gpg` with this home, in batch mode.
    pub(crate) fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", self.path()).args(["--batch", "--no-tty"]);
        command
    }

    /// `--quick-gen-key uid algo sign expiry` without a passphrase; the
    /// fingerprint of the new key. `extra` goes before the command (e.g.
    /// `--faked-system-time`).
    pub(crate) fn generate(&self, uid: &str, algo: &str, expiry: &str, extra: &[&str]) -> String {
        run(self.gpg().args(extra).args(["--passphrase", "", "--quick-gen-key", uid, algo, "sign", expiry]));
        self.fingerprint(uid)
    }

    /// The primary fingerprint of the key with `uid`.
    pub(crate) fn fingerprint(&self, uid: &str) -> String {
        let out = run(self.gpg().args(["--with-colons", "--list-keys", uid]));
        let line = out.lines().find(|l| l.starts_with("fpr:")).expect("fpr line");
        line.split(':').nth(9).expect("fingerprint field").to_owned()
    }

    /// `--quick-add-key fpr algo sign never`: a signing subkey.
    pub(crate) fn add_signing_subkey(&self, fpr: &str, algo: &str) {
        run(self.gpg().args(["--passphrase", "", "--quick-add-key", fpr, algo, "sign", "never"]));
    }

    /// Imports the revocation certificate gpg made at generation.
    pub(crate) fn revoke(&self, fpr: &str) {
        let rev = fs::read_to_string(self.path().join("openpgp-revocs.d").join(format!("{fpr}.rev"))).expect("revocation certificate");
        // gpg writes the armor line as ":-----BEGIN..." so that importing
        // it is a deliberate act.
        let rev = rev.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----");
        run_with_input(self.gpg().args(["--import"]), rev.as_bytes());
    }

    /// `--armor --export fpr`.
    pub(crate) fn export(&self, fpr: &str) -> String {
        run(self.gpg().args(["--armor", "--export", fpr]))
    }

    /// `--import` of armored keys.
    pub(crate) fn import(&self, armored: &str) {
        run_with_input(self.gpg().arg("--import"), armored.as_bytes());
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.path()).args(["--kill", "all"]).status();
    }
}

/// How `Repo::commit` signs.
pub(crate) enum Sign<'a> {
    /// Not at all.
    No,
    /// `gpg.format=ssh` with this key.
    Ssh(&'a SshKey),
    /// `gpg.format=openpgp` with this home and key; `program` overrides `gpg`.
    Gpg { home: &'a GnupgHome, key: &'a str, program: Option<&'a Path> },
}

/// A repository with a folder of allowed signers beside it, and a keyring
/// holding the same OpenPGP keys for `git verify-commit`.
pub(crate) struct Repo {
    dir: TempDir,
    verify_keyring: GnupgHome,
    count: usize,
}

impl Repo {
    /// `git init`, and an empty `keys/` folder.
    pub(crate) fn new() -> Repo {
        let dir = TempDir::new().expect("tempdir");
        let repo = Repo { dir, verify_keyring: GnupgHome::new(), count: 0 };
        fs::create_dir(repo.keys()).expect("keys dir");
        fs::write(repo.allowed_signers_file(), "").expect("allowed_signers");
        run(repo.git().args(["init", "-q"]));
        repo
    }

    /// The repository's work tree.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// The folder of allowed signers.
    pub(crate) fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// A scratch folder for key pairs (not allowed unless added).
    pub(crate) fn scratch(&self) -> PathBuf {
        let path = self.dir.path().join("scratch");
        fs::create_dir_all(&path).expect("scratch");
        path
    }

    fn allowed_signers_file(&self) -> PathBuf {
        self.keys().join("allowed_signers")
    }

    /// `git` in the repository, isolated from the machine's configuration.
    pub(crate) fn git(&self) -> Command {
        fs::create_dir_all(self.path()).expect("repo dir");
        let mut command = Command::new("git");
        command.current_dir(self.path()).env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_NOSYSTEM", "1").args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
        ]);
        command
    }

    /// Appends a line to `keys/allowed_signers`.
    pub(crate) fn allow_line(&self, line: &str) {
        let mut file = fs::OpenOptions::new().append(true).open(self.allowed_signers_file()).expect("open allowed_signers");
        writeln!(file, "{line}").expect("write allowed_signers");
    }

    /// Allows an SSH key for the git namespace.
    pub(crate) fn allow_ssh(&self, key: &SshKey) {
        self.allow_line(&format!("test@example.com namespaces=\"git\" {}", key.public));
    }

    /// Writes an armored OpenPGP key to `keys/name.asc` and imports it into
    /// the keyring `git verify-commit` uses.
    pub(crate) fn allow_openpgp(&self, name: &str, armored: &str) {
        fs::write(self.keys().join(format!("{name}.asc")), armored).expect("write .asc");
        self.verify_keyring.import(armored);
    }

    /// Commits a change to a file, signed as asked.
    pub(crate) fn commit(&mut self, sign: Sign<'_>) -> Oid {
        self.count += 1;
        fs::write(self.path().join("file"), format!("change {}\n", self.count)).expect("write file");
        run(self.git().args(["add", "file"]));
        let message = format!("change {}", self.count);
        let mut git = self.git();
        match sign {
            Sign::No => git.args(["commit", "-q", "-m", &message]),
            Sign::Ssh(key) => git
                .args(["-c", "gpg.format=ssh", "-c"])
                .arg(format!("user.signingkey={}", key.pub_path().display()))
                .args(["commit", "-q", "-S", "-m", &message]),
            Sign::Gpg { home, key, program } => git
                .env("GNUPGHOME", home.path())
                .args(["-c", "gpg.format=openpgp", "-c"])
                .arg(format!("gpg.program={}", program.map_or("gpg".into(), |p| p.display().to_string())))
                .args(["-c", &format!("user.signingkey={key}"), "commit", "-q", "-S", "-m", &message]),
        };
        run(&mut git);
        self.head()
    }

    /// The head commit.
    pub(crate) fn head(&self) -> Oid {
        Oid::from_str(run(self.git().args(["rev-parse", "HEAD"])).trim()).expect("oid")
    }

    /// The raw commit object.
    pub(crate) fn raw(&self, oid: Oid) -> String {
        run(self.git().args(["cat-file", "commit", &oid.to_string()]))
    }

    /// Writes a raw commit object; its id.
    pub(crate) fn write_raw(&self, raw: &str) -> Oid {
        let out = run_with_input(self.git().args(["hash-object", "-t", "commit", "-w", "--stdin"]), raw.as_bytes());
        Oid::from_str(out.trim()).expect("oid")
    }

    /// A copy of unsigned commit `oid` with `signature` as its `gpgsig`
    /// header, the way git stores one: after the committer line, every
    /// further line indented by a space.
    pub(crate) fn graft_signature(&self, oid: Oid, signature: &str) -> Oid {
        let raw = self.raw(oid);
        let (headers, message) = raw.split_once("\n\n").expect("headers and message");
        let header = format!("gpgsig {}", signature.trim_end().replace('\n', "\n "));
        self.write_raw(&format!("{headers}\n{header}\n\n{message}"))
    }

    /// The verdict of `git verify-commit` with the same allowed signers.
    pub(crate) fn git_verifies(&self, oid: Oid) -> bool {
        let status = self
            .git()
            .env("GNUPGHOME", self.verify_keyring.path())
            .arg("-c")
            .arg(format!("gpg.ssh.allowedSignersFile={}", self.allowed_signers_file().display()))
            .args(["-c", "gpg.program=gpg", "verify-commit", &oid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git verify-commit");
        status.success()
    }

    /// Loads the folder and verifies `oid` in head mode, asserting that the
    /// verdict agrees with `git verify-commit`.
    pub(crate) fn verify(&self, oid: Oid) -> Result<Signer, Refused> {
        let signers = AllowedSigners::load(&self.keys()).expect("load allowed signers");
        let repo = git2::Repository::open(self.path()).expect("open repo");
        let ours = driftless_signatures::verify_commit(&repo, oid, &signers);
        assert_eq!(ours.is_ok(), self.git_verifies(oid), "git verify-commit disagrees with {ours:?}");
        ours
    }
}

/// The seven-character id used in messages.
pub(crate) fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_owned()
}
