//! `driftless image`: the real busybox layout the project builds, imported
//! into a throwaway data folder, listed and removed.

use crate::images::busybox_layout;
use crate::registry::Registry;
use crate::support::{Repo, driftless_in};

#[test]
fn import_list_and_remove_the_busybox_image() {
    let layout = busybox_layout();
    let work = Repo::folder();
    let data = work.join("data");
    let data = data.to_str().unwrap();

    let run = driftless_in(work.path(), &["image", "import", layout.to_str().unwrap(), "--name", "busybox", "--data-dir", data]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "imported docker.io/library/busybox:1.35\n"), "{run:?}");

    let run = driftless_in(work.path(), &["image", "ls", "--data-dir", data]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert!(lines[0].starts_with("REFERENCE"), "{run:?}");
    assert!(lines[1].starts_with("docker.io/library/busybox:1.35  sha256:"), "{run:?}");
    assert_eq!(lines.len(), 2, "{run:?}");

    // The short name resolves as Docker normalizes it.
    let run = driftless_in(work.path(), &["image", "rm", "busybox:1.35", "--data-dir", data]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = driftless_in(work.path(), &["image", "ls", "--data-dir", data]);
    assert_eq!(run.lines().len(), 1, "only the header is left: {run:?}");

    let run = driftless_in(work.path(), &["image", "rm", "busybox:1.35", "--data-dir", data]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("busybox:1.35"), "{run:?}");
    let run = driftless_in(work.path(), &["image", "import", "/no/such/layout", "--data-dir", data]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("/no/such/layout"), "{run:?}");
}

fn pull(work: &Repo, reference: &str, host: &str, data: &str, password: Option<&str>) -> crate::support::Run {
    use std::io::Write;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"));
    command.args(["image", "pull", reference, "--insecure-registry", host, "--data-dir", data]).current_dir(work.path());
    if password.is_some() {
        command.args(["--username", "tester", "--password-stdin"]);
    }
    let mut child = command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    if let Some(password) = password {
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    }
    crate::support::Run::from(child.wait_with_output().unwrap())
}

#[test]
fn pull_from_a_registry_with_basic_auth() {
    let registry = Registry::start("tester", "s3cret-pass");
    let host = registry.host();
    registry.push_busybox("tester", "s3cret-pass");

    let work = Repo::folder();
    let data = work.join("data");
    let data = data.to_str().unwrap();
    let reference = format!("{host}/library/busybox:1.35");
    let run = pull(&work, &reference, &host, data, Some("s3cret-pass"));
    assert_eq!((run.code, run.stdout.as_str()), (0, format!("pulled {reference}\n").as_str()), "{run:?}");
    // Progress: a line per blob received (config, then the one layer).
    assert!(run.stderr.contains("blob 1/2 ") && run.stderr.contains("blob 2/2 "), "{run:?}");
    let run = driftless_in(work.path(), &["image", "ls", "--data-dir", data]);
    assert!(run.stdout.contains(&reference), "{run:?}");

    // Refusals surface with the registry's words, and nothing is stored.
    let other = work.join("other");
    let other = other.to_str().unwrap();
    let run = pull(&work, &reference, &host, other, Some("wrong"));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&format!("pulling {reference:?}")) && run.stderr.to_lowercase().contains("not authorized"), "{run:?}");
    let run = pull(&work, &reference, &host, other, None);
    assert_eq!(run.code, 2, "anonymous pulls are refused by this registry: {run:?}");
    let run = driftless_in(work.path(), &["image", "ls", "--data-dir", other]);
    assert_eq!(run.lines().len(), 1, "{run:?}");
}
