//! The verdict on commits: extracts a commit's signature with git2, sends it
//! to the SSH or OpenPGP check by its armor, and walks the commits a mode
//! asks for. Owns `Mode`, `Signer` and `Refusal`; it decides only whether
//! signatures are good, never what the caller does about a refusal.

use std::fmt;

use git2::{Oid, Repository};

use crate::allowed::AllowedSigners;
use crate::{openpgp, ssh};

/// The most commits `Mode::Range` verifies in one call; past it the head is
/// refused instead of spending minutes on an unbounded history.
pub const MAX_RANGE_COMMITS: usize = 10_000;

/// Which commits must be signed (Flux's `GitRepository.spec.verify` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only the head commit.
    Head,
    /// Every commit reachable from the head and not from the last applied
    /// one (all of history when there is none).
    Range,
}

/// The kind of signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenSSH's sshsig, as `gpg.format=ssh` makes.
    Ssh,
    /// OpenPGP, as gpg makes.
    OpenPgp,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ssh => "ssh",
            Format::OpenPgp => "openpgp",
        })
    }
}

/// Who signed a commit that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The commit.
    pub commit: Oid,
    /// The kind of signature.
    pub format: Format,
    /// `SHA256:...` for SSH, as `ssh-keygen -l` prints it; the certificate's
    /// (primary key's) uppercase hex fingerprint for OpenPGP.
    pub fingerprint: String,
    /// The principals of the allowed_signers line, or the certificate's
    /// primary user id.
    pub principal: String,
}

/// Why a commit is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The commit carries no signature.
    Unsigned,
    /// Signed by a key that is not in the allowed set.
    UnknownKey {
        /// `SHA256:...` for SSH; the issuer's hex fingerprint (or key id) for OpenPGP.
        fingerprint: String,
    },
    /// The signature does not verify over the commit.
    BadSignature {
        /// The key, when the signature could be read far enough to name it.
        fingerprint: Option<String>,
        /// What failed.
        reason: String,
    },
    /// An allowed key, which no longer (or not yet, or not for git) counts:
    /// `valid-before`/`valid-after`/`namespaces` of its allowed_signers
    /// line, or an expired or revoked OpenPGP key.
    KeyNotValid {
        /// The key.
        fingerprint: String,
        /// Which rule.
        reason: String,
    },
    /// A kind of signature this crate does not check (x509, SSH certificates).
    Unsupported(String),
    /// `Mode::Range` found more than [`MAX_RANGE_COMMITS`] commits to check.
    TooManyCommits {
        /// The bound.
        limit: usize,
    },
    /// The repository could not be read (a missing object, a broken walk).
    Repository(String),
}

/// Reads after the commit's id: "commit 1a2b3c4 {refusal}".
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("is not signed"),
            Refusal::UnknownKey { fingerprint } => write!(f, "is signed by {fingerprint}, which is not an allowed signer"),
            Refusal::BadSignature { fingerprint: Some(fingerprint), reason } => write!(f, "has a bad signature by {fingerprint}: {reason}"),
            Refusal::BadSignature { fingerprint: None, reason } => write!(f, "has a bad signature: {reason}"),
            Refusal::KeyNotValid { fingerprint, reason } => write!(f, "is signed by {fingerprint}, which is not valid for it: {reason}"),
            Refusal::Unsupported(what) => write!(f, "has a signature that cannot be checked: {what}"),
            Refusal::TooManyCommits { limit } => write!(f, "has more than {limit} commits to verify since the last applied one, too many to check one by one"),
            Refusal::Repository(error) => write!(f, "cannot be read: {error}"),
        }
    }
}

/// A refused commit: which one and why. Its message is the sentence a user
/// reads, e.g. "commit 1a2b3c4 is not signed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit {} {refusal}", short(commit))]
pub struct Refused {
    /// The refused commit (the head for `TooManyCommits`).
    pub commit: Oid,
    /// Why.
    pub refusal: Refusal,
}

fn short(oid: &Oid) -> String {
    let mut hex = oid.to_string();
    hex.truncate(7);
    hex
}

/// Whether `commit` is signed by one of `signers`.
pub fn verify_commit(repo: &Repository, commit: Oid, signers: &AllowedSigners) -> Result<Signer, Refused> {
    check(repo, commit, signers).map_err(|refusal| Refused { commit, refusal })
}

fn check(repo: &Repository, oid: Oid, signers: &AllowedSigners) -> Result<Signer, Refusal> {
    let commit = repo.find_commit(oid).map_err(|e| Refusal::Repository(e.message().to_owned()))?;
    let (signature, data) = match repo.extract_signature(&oid, None) {
        Ok(pair) => pair,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Err(Refusal::Unsigned),
        Err(e) => return Err(Refusal::Repository(e.message().to_owned())),
    };
    let armored: &[u8] = &signature;
    let signer = |format, fingerprint, principal: &str| Signer { commit: oid, format, fingerprint, principal: principal.to_owned() };
    if armored.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
        let time = commit.committer().when().seconds();
        let found = ssh::verify(armored, &data, time, &signers.ssh)?;
        let fingerprint = found.key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
        Ok(signer(Format::Ssh, fingerprint, &found.principals))
    } else if armored.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
        let found = openpgp::verify(armored, &data, &signers.openpgp)?;
        Ok(signer(Format::OpenPgp, found.fingerprint(), &found.principal))
    } else if armored.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
        Err(Refusal::Unsupported("x509 (gpgsm) signatures are not supported".to_owned()))
    } else {
        Err(Refusal::Unsupported("the signature is in an unknown format".to_owned()))
    }
}

/// Verifies what `mode` asks for from `head`: the head alone, or every
/// commit since `since` (the last applied commit). Returns who signed each,
/// head first, or the first commit refused; a refusal refuses the head
/// whole. In `Range` mode, `head == since` has nothing to check.
pub fn verify(repo: &Repository, head: Oid, since: Option<Oid>, mode: Mode, signers: &AllowedSigners) -> Result<Vec<Signer>, Refused> {
    let commits = match mode {
        Mode::Head => vec![head],
        Mode::Range => range(repo, head, since).map_err(|refusal| Refused { commit: head, refusal })?,
    };
    commits.into_iter().map(|commit| verify_commit(repo, commit, signers)).collect()
}

fn range(repo: &Repository, head: Oid, since: Option<Oid>) -> Result<Vec<Oid>, Refusal> {
    let git = |e: git2::Error| Refusal::Repository(e.message().to_owned());
    let mut walk = repo.revwalk().map_err(git)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL).map_err(git)?;
    walk.push(head).map_err(git)?;
    if let Some(since) = since {
        walk.hide(since).map_err(git)?;
    }
    // Count before verifying any, so a huge range costs a walk, not
    // thousands of signature checks.
    let commits: Vec<Oid> = walk.take(MAX_RANGE_COMMITS + 1).collect::<Result<_, _>>().map_err(git)?;
    if commits.len() > MAX_RANGE_COMMITS {
        return Err(Refusal::TooManyCommits { limit: MAX_RANGE_COMMITS });
    }
    Ok(commits)
}
