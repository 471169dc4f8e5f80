//! `driftless image`: the real busybox layout the project builds, imported
//! into a throwaway data folder, listed and removed.


use crate::images::busybox_layout;
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
