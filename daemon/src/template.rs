//! The repository template `driftless init` copies, embedded at build time
//! from `repo-template/`.

use include_dir::{Dir, DirEntry, include_dir};

static TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../repo-template");

/// Every file of the template as (relative path, contents), in path order.
pub(crate) fn files() -> Vec<(&'static std::path::Path, &'static [u8])> {
    let mut out = Vec::new();
    collect(&TEMPLATE, &mut out);
    out.sort_by_key(|(path, _)| *path);
    out
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(&'static std::path::Path, &'static [u8])>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => collect(sub, out),
            DirEntry::File(file) => out.push((file.path(), file.contents())),
        }
    }
}
