//! Tests of unpacking: real tars built in code, unpacked into temp dirs.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use super::*;
use crate::digest::sha256_of;
use crate::testutil::{TarBuilder, base_layer, gzip, top_layer};

/// Writes `blob` to a file and unpacks it into a fresh folder; returns the
/// temp dir (kept alive), the folder and the outcome.
fn unpack_bytes(blob: &[u8], diff_id: &str) -> (tempfile::TempDir, PathBuf, Result<(), ImageError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, blob).unwrap();
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let outcome = unpack_layer(&path, &dest, diff_id, "sha256:test", &crate::Statvfs);
    (dir, dest, outcome)
}

#[test]
fn unpacks_files_links_owners_modes_and_times() {
    let tar = base_layer();
    let (_dir, root, outcome) = unpack_bytes(&gzip(&tar), &sha256_of(&tar));
    outcome.unwrap();
    assert_eq!(std::fs::read(root.join("bin/sh")).unwrap(), b"#!shell\n");
    let sh = std::fs::metadata(root.join("bin/sh")).unwrap();
    assert_eq!((sh.mode() & 0o7777, sh.mtime()), (0o755, 1000));
    assert_eq!(std::fs::read_link(root.join("bin/ls")).unwrap(), PathBuf::from("sh"));
    assert_eq!(std::fs::metadata(root.join("bin/sh2")).unwrap().ino(), sh.ino());
    let shadow = std::fs::metadata(root.join("etc/shadow")).unwrap();
    assert_eq!((shadow.uid(), shadow.gid(), shadow.mode() & 0o7777), (0, 42, 0o640));
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!((tmp.mode() & 0o7777, tmp.mtime()), (0o1777, 1000));
    assert_eq!(std::fs::metadata(root.join("var/cache")).unwrap().mtime(), 1000);
}

#[test]
fn uncompressed_layers_and_whiteouts() {
    let tar = top_layer();
    let (_dir, root, outcome) = unpack_bytes(&tar, &sha256_of(&tar));
    outcome.unwrap();
    let passwd = std::fs::symlink_metadata(root.join("etc/passwd")).unwrap();
    assert!(passwd.file_type().is_char_device(), "a whiteout is a character device");
    assert_eq!(passwd.rdev(), 0);
    assert!(!root.join("etc/.wh.passwd").exists());
    assert_eq!(xattr::get(root.join("var/cache"), "trusted.overlay.opaque").unwrap(), Some(b"y".to_vec()));
    assert!(!root.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(std::fs::read(root.join("var/cache/new")).unwrap(), b"new");
}

#[test]
fn content_must_match_the_diff_id() {
    let tar = base_layer();
    let wrong = sha256_of(b"something else");
    let (_dir, _root, outcome) = unpack_bytes(&gzip(&tar), &wrong);
    let err = outcome.unwrap_err();
    assert_eq!(err.to_string(), format!("layer sha256:test is corrupt: its uncompressed content hashes to {}, the image config says {wrong}", sha256_of(&tar)));
}

#[test]
fn refuses_paths_that_leave_the_layer() {
    let cases = [
        (TarBuilder::new().raw_file("../evil", b"x"), "../evil", "its path contains `..`"),
        (TarBuilder::new().raw_file("/evil", b"x"), "/evil", "its path is absolute"),
        (TarBuilder::new().symlink("etc", "/etc").file("etc/evil", b"x", 0o644), "etc/evil", "it goes through a symlink that points outside the folder"),
        (
            TarBuilder::new().dir("a", 0o755).symlink("a/up", "../..").file("a/up/evil", b"x", 0o644),
            "a/up/evil",
            "it goes through a symlink that points outside the folder",
        ),
        (
            TarBuilder::new().symlink("up", "..").file(".wh..wh..opq", b"", 0o644).file("up/.wh.evil", b"", 0o644),
            "up/.wh.evil",
            "it goes through a symlink that points outside the folder",
        ),
    ];
    for (builder, entry, reason) in cases {
        let tar = builder.finish();
        let (dir, _root, outcome) = unpack_bytes(&tar, &sha256_of(&tar));
        let err = outcome.unwrap_err();
        assert_eq!(err.to_string(), format!("sha256:test: refusing entry {entry:?}: {reason}"));
        assert!(!dir.path().join("evil").exists() && !dir.path().parent().unwrap().join("evil").exists());
    }
    let tar = TarBuilder::new().file("x", b"x", 0o644).hardlink("z", "../../etc/passwd").finish();
    let (_dir, _root, outcome) = unpack_bytes(&tar, &sha256_of(&tar));
    let err = outcome.unwrap_err().to_string();
    assert!(err.ends_with("refusing entry \"z\": its link target \"../../etc/passwd\" is refused: its path contains `..`"), "{err}");
}

#[test]
fn refuses_unsupported_compression() {
    let (_dir, _root, outcome) = unpack_bytes(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0], "sha256:x");
    let err = outcome.unwrap_err();
    assert_eq!(err.to_string(), "sha256:test is compressed with zstd, which is not supported (use gzip or none)");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = TarBuilder::new()
        .file("a", b"first", 0o644)
        .file("a", b"second", 0o600)
        .dir("d", 0o700)
        .file("d/x", b"x", 0o644)
        .dir("d", 0o755)
        .symlink("s", "a")
        .file("s", b"not through the link", 0o644)
        .finish();
    let (_dir, root, outcome) = unpack_bytes(&tar, &sha256_of(&tar));
    outcome.unwrap();
    assert_eq!(std::fs::read(root.join("a")).unwrap(), b"second");
    assert_eq!(std::fs::metadata(root.join("d")).unwrap().mode() & 0o7777, 0o755);
    assert!(root.join("d/x").exists());
    assert_eq!(std::fs::read(root.join("s")).unwrap(), b"not through the link");
    assert_eq!(std::fs::read(root.join("a")).unwrap(), b"second");
}

#[test]
fn a_decompression_bomb_stops_at_the_disks_reserve() {
    // 64 MiB of zeros gzip to about 64 KiB; the disk has 8 MiB.
    let tar = TarBuilder::new().file("zeros", &vec![0u8; 64 << 20], 0o644).finish();
    let blob = gzip(&tar);
    assert!(blob.len() < 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &blob).unwrap();
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let fs = crate::space::fake::Small { root: dest.clone(), size: 8 << 20, inodes: 0 };
    let err = unpack_layer(&path, &dest, &sha256_of(&tar), "sha256:bomb", &fs).unwrap_err();
    assert!(matches!(err, ImageError::NoSpace { .. }), "{err}");
    assert!(err.to_string().starts_with("refusing to unpack layer sha256:bomb further"), "{err}");
    let written = std::fs::metadata(dest.join("zeros")).unwrap().len();
    // Looks come every quarter of the reserve (410 KiB), after a chunk of
    // up to 128 KiB: at most that much of the reserve is used.
    assert!(written <= (8 << 20) - (410 << 10) + (103 << 10) + (128 << 10), "stopped near the reserve: {written}");
}
