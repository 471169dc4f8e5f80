//! The two modes: the head alone, or every commit since the last applied
//! one, and the bound on how many that can be.

use driftless_signatures::{AllowedSigners, MAX_RANGE_COMMITS, Mode, Refusal, verify};

use crate::support::{Repo, Sign, SshKey, short};

fn open(repo: &Repo) -> (git2::Repository, AllowedSigners) {
    (git2::Repository::open(repo.path()).expect("open"), AllowedSigners::load(&repo.keys()).expect("load"))
}

#[test]
fn range_refuses_an_unsigned_commit_that_head_mode_lets_through() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let applied = repo.commit(Sign::Ssh(&key));
    let unsigned = repo.commit(Sign::No);
    let head = repo.commit(Sign::Ssh(&key));
    assert!(!repo.git_verifies(unsigned) && repo.git_verifies(head));
    let (git, signers) = open(&repo);

    let heads = verify(&git, head, Some(applied), Mode::Head, &signers).expect("head is signed");
    assert_eq!(heads.iter().map(|s| s.commit).collect::<Vec<_>>(), [head]);

    let refused = verify(&git, head, Some(applied), Mode::Range, &signers).unwrap_err();
    assert_eq!((refused.commit, &refused.refusal), (unsigned, &Refusal::Unsigned));
    assert_eq!(refused.to_string(), format!("commit {} is not signed", short(unsigned)));
}

#[test]
fn range_checks_every_commit_since_the_applied_one() {
    let mut repo = Repo::new();
    let key = SshKey::generate(&repo.scratch(), "signer", &["-t", "ed25519"]);
    repo.allow_ssh(&key);
    let old_unsigned = repo.commit(Sign::No);
    let applied = repo.commit(Sign::Ssh(&key));
    let middle = repo.commit(Sign::Ssh(&key));
    let head = repo.commit(Sign::Ssh(&key));
    let (git, signers) = open(&repo);

    let signed = verify(&git, head, Some(applied), Mode::Range, &signers).expect("all signed since applied");
    assert_eq!(signed.iter().map(|s| s.commit).collect::<Vec<_>>(), [head, middle]);
    assert!(verify(&git, head, Some(head), Mode::Range, &signers).expect("nothing new").is_empty());

    // Without a last applied commit, all of history counts.
    let refused = verify(&git, head, None, Mode::Range, &signers).unwrap_err();
    assert_eq!(refused.commit, old_unsigned);
}

#[test]
fn range_is_bounded() {
    let repo = Repo::new();
    let git = git2::Repository::open(repo.path()).expect("open");
    // Made with git2 rather than `git commit`: ten thousand processes
    // would take minutes.
    let who = git2::Signature::now("Test", "test@example.com").expect("signature");
    let tree = git.find_tree(git.treebuilder(None).expect("treebuilder").write().expect("tree")).expect("find tree");
    let mut parent: Option<git2::Commit<'_>> = None;
    for n in 0..=MAX_RANGE_COMMITS {
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = git.commit(None, &who, &who, &format!("commit {n}"), &tree, &parents).expect("commit");
        parent = Some(git.find_commit(oid).expect("find"));
    }
    let head = parent.expect("head").id();
    let signers = AllowedSigners::load(&repo.keys()).expect("load");
    let refused = verify(&git, head, None, Mode::Range, &signers).unwrap_err();
    assert_eq!((refused.commit, refused.refusal), (head, Refusal::TooManyCommits { limit: MAX_RANGE_COMMITS }));
}
