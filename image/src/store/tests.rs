//! Tests of the store end to end: synthetic layouts and docker save
//! archives built in code, imported, listed, resolved and removed in temp
//! dirs, and the real busybox layout.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::digest::sha256_of;
use crate::testutil::{TarBuilder, TestImage, base_layer, gzip, top_layer, write_docker_save, write_layout};
use crate::{BlobError, ImportError, UnpackError};

const BUSYBOX: &str = "docker.io/library/busybox:1.35";

/// A layout with one two-layer image tagged `1.35`.
fn two_layer_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let image = TestImage { ref_name: Some("1.35"), layers: vec![base_layer(), top_layer()], gzip: true };
    write_layout(&layout, &[image]);
    layout
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// Tars a folder, as `tar -C dir -cf - .` would.
fn tar_folder(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn imports_lists_and_resolves_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = two_layer_layout(dir.path());
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    assert_eq!(store.import(&layout, Some("busybox")).unwrap(), [BUSYBOX]);

    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reference, BUSYBOX);
    assert_eq!(list[0].created.as_deref(), Some("2024-05-01T00:00:00Z"));
    let blob_sizes: u64 = std::fs::read_dir(layout.join("blobs/sha256")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>();
    let manifest_size = std::fs::metadata(layout.join("blobs/sha256").join(&list[0].manifest_digest[7..])).unwrap().len();
    assert_eq!(list[0].size, blob_sizes - manifest_size);

    let image = store.resolve("busybox:1.35").unwrap();
    assert_eq!(image.reference, BUSYBOX);
    assert_eq!(image.manifest_digest, list[0].manifest_digest);
    assert_eq!(image.config.entrypoint, ["/bin/sh"]);
    assert_eq!(image.config.cmd, ["-c", "echo hi"]);
    assert_eq!(image.config.env, ["PATH=/bin", "A=1"]);
    assert_eq!(image.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(image.config.user.as_deref(), Some("65534:65534"));
    assert_eq!(image.config.exposed_ports, ["8080/tcp"]);
    assert_eq!((image.config.os.as_str(), image.config.architecture.as_str()), ("linux", "amd64"));
    // Lowest layer first; the top one carries the overlayfs whiteouts.
    assert_eq!(
        image.layers,
        [store.root().join("layers/sha256").join(&sha256_of(&base_layer())[7..]), store.root().join("layers/sha256").join(&sha256_of(&top_layer())[7..])]
    );
    assert!(image.layers[0].join("bin/sh").is_file());
    assert!(std::fs::symlink_metadata(image.layers[1].join("etc/passwd")).unwrap().file_type().is_char_device());
    assert_eq!(xattr::get(image.layers[1].join("var/cache"), "trusted.overlay.opaque").unwrap(), Some(b"y".to_vec()));

    // By digest, in the same repository; not in another.
    assert_eq!(store.resolve(&format!("busybox@{}", image.manifest_digest)).unwrap().layers, image.layers);
    let err = store.resolve(&format!("alpine@{}", image.manifest_digest)).unwrap_err();
    assert!(matches!(err, ImageError::NotFound { .. }), "{err}");
    let err = store.resolve("nginx:1").unwrap_err();
    assert_eq!(err.to_string(), "image \"docker.io/library/nginx:1\" not found in the store");
    // A store reopened sees the same; the staging folder is empty.
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    assert_eq!(store.list().unwrap(), list);
    assert_eq!(count(&store.root().join("tmp")), 0);
}

#[test]
fn imports_layout_tars_gzipped_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_folder(&two_layer_layout(dir.path()));
    let plain = dir.path().join("busybox.tar");
    std::fs::write(&plain, &tar).unwrap();
    let gzipped = dir.path().join("busybox.tar.gz");
    std::fs::write(&gzipped, gzip(&tar)).unwrap();
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    assert_eq!(store.import(&plain, Some("busybox")).unwrap(), [BUSYBOX]);
    assert_eq!(store.import(&gzipped, Some("ghcr.io/x/busybox")).unwrap(), ["ghcr.io/x/busybox:1.35"]);
    assert_eq!(store.list().unwrap().len(), 2);
    assert_eq!(count(&store.root().join("layers/sha256")), 2, "both references share the layers");
    assert_eq!(count(&store.root().join("tmp")), 0, "the unpacked archives are gone");
}

#[test]
fn imports_docker_save_archives() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("app.tar");
    write_docker_save(&archive, &["app:v1", "localhost:5000/app:v1"], &[base_layer(), top_layer()]);
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    let references = store.import(&archive, None).unwrap();
    assert_eq!(references, ["docker.io/library/app:v1", "localhost:5000/app:v1"]);
    let image = store.resolve("localhost:5000/app:v1").unwrap();
    assert_eq!(image.config.cmd, ["-c", "echo hi"]);
    assert_eq!(image.layers.len(), 2);
    assert!(image.layers[0].join("bin/sh2").is_file());
    // The same archive again changes nothing: the store writes the same manifest.
    let before = store.list().unwrap();
    store.import(&archive, None).unwrap();
    assert_eq!(store.list().unwrap(), before);

    let untagged = dir.path().join("untagged.tar");
    write_docker_save(&untagged, &[], &[base_layer()]);
    let err = store.import(&untagged, None).unwrap_err();
    assert!(matches!(err, ImageError::Import(ImportError::Unnamed { .. })), "{err}");
    assert_eq!(store.import(&untagged, Some("base")).unwrap(), ["docker.io/library/base:latest"]);
}

#[test]
fn remove_collects_what_no_reference_uses() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let extra = TarBuilder::new().file("extra", b"extra", 0o644).finish();
    write_layout(
        &layout,
        &[
            TestImage { ref_name: Some("docker.io/library/base:1"), layers: vec![base_layer()], gzip: true },
            TestImage { ref_name: Some("ghcr.io/x/app:2"), layers: vec![base_layer(), extra.clone()], gzip: true },
        ],
    );
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    assert_eq!(store.import(&layout, None).unwrap(), ["docker.io/library/base:1", "ghcr.io/x/app:2"]);
    let (blobs, layers) = (store.root().join("blobs/sha256"), store.root().join("layers/sha256"));
    // Two manifests, two configs, two layer blobs (the base one shared).
    assert_eq!((count(&blobs), count(&layers)), (6, 2));

    store.remove("ghcr.io/x/app:2").unwrap();
    assert_eq!((count(&blobs), count(&layers)), (3, 1));
    assert!(store.resolve("base:1").unwrap().layers[0].join("bin/sh").is_file());
    assert!(!layers.join(&sha256_of(&extra)[7..]).exists());

    let err = store.remove("ghcr.io/x/app:2").unwrap_err();
    assert_eq!(err.to_string(), "image \"ghcr.io/x/app:2\" not found in the store");
    store.remove("base:1").unwrap();
    assert_eq!((count(&blobs), count(&layers)), (0, 0));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_moved_reference_frees_its_old_image() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    write_layout(&old, &[TestImage { ref_name: Some("1"), layers: vec![base_layer()], gzip: false }]);
    let extra = TarBuilder::new().file("v2", b"2", 0o644).finish();
    write_layout(&new, &[TestImage { ref_name: Some("1"), layers: vec![extra], gzip: false }]);
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    store.import(&old, Some("app")).unwrap();
    store.import(&new, Some("app")).unwrap();
    let image = store.resolve("app:1").unwrap();
    assert!(image.layers[0].join("v2").is_file());
    assert_eq!(count(&store.root().join("layers/sha256")), 1);
    assert_eq!(count(&store.root().join("blobs/sha256")), 3);
}

#[test]
fn corrupt_blobs_and_unsafe_layers_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let layout = two_layer_layout(dir.path());
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    // Flip a byte of the top layer's blob.
    let top = sha256_of(&gzip(&top_layer()));
    let path = layout.join("blobs/sha256").join(&top[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = store.import(&layout, Some("busybox")).unwrap_err();
    assert!(matches!(err, ImageError::Blob(BlobError::Corrupt { .. })), "{err}");
    assert_eq!(err.to_string(), format!("blob {top} in {} is corrupt: content hashes to {}", layout.display(), sha256_of(&bytes)));
    assert!(store.list().unwrap().is_empty(), "no reference to a half-imported image");

    let evil = dir.path().join("evil");
    let layer = TarBuilder::new().raw_file("../../escaped", b"x").finish();
    write_layout(&evil, &[TestImage { ref_name: Some("1"), layers: vec![layer], gzip: true }]);
    let err = store.import(&evil, Some("evil")).unwrap_err();
    assert!(matches!(err, ImageError::Unpack(UnpackError::Refused { .. })), "{err}");
    assert!(err.to_string().ends_with("refusing entry \"../../escaped\": its path contains `..`"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(count(&store.root().join("tmp")), 0);
    assert!(!dir.path().join("escaped").exists() && !store.root().join("escaped").exists());
}

#[test]
fn naming_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("data")).unwrap();
    let layout = |name: &str, ref_name: Option<&'static str>| {
        let path = dir.path().join(name);
        write_layout(&path, &[TestImage { ref_name, layers: vec![top_layer()], gzip: false }]);
        path
    };
    let tagged = layout("tagged", Some("1.35"));
    let err = store.import(&tagged, None).unwrap_err();
    assert!(err.to_string().ends_with("image is tagged \"1.35\" without a repository; give a repository name (like busybox)"), "{err}");
    let err = store.import(&tagged, Some("busybox:1")).unwrap_err();
    assert!(matches!(err, ImageError::Import(ImportError::NameHasVersion { .. })), "{err}");
    let err = store.import(&tagged, Some("Bad Name")).unwrap_err();
    assert!(matches!(err, ImageError::Reference(_)), "{err}");
    let full = layout("full", Some("ghcr.io/x/y:2"));
    assert_eq!(store.import(&full, Some("ignored")).unwrap(), ["ghcr.io/x/y:2"]);
    let unnamed = layout("unnamed", None);
    let err = store.import(&unnamed, None).unwrap_err();
    assert!(matches!(err, ImageError::Import(ImportError::Unnamed { .. })), "{err}");
    assert_eq!(store.import(&unnamed, Some("localhost:5000/app")).unwrap(), ["localhost:5000/app:latest"]);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = store.import(&empty, None).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: not an OCI image layout or docker save archive (no index.json or manifest.json)", empty.display()));
}

#[test]
fn open_clears_what_a_crash_left_staged() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    std::fs::create_dir_all(store.root().join("tmp/layer-x/etc")).unwrap();
    std::fs::write(store.root().join("tmp/blob"), b"half").unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(count(&store.root().join("tmp")), 0);
    assert_eq!(store.root(), dir.path().join("images"));
}

/// The real busybox image the examples run, built by
/// scripts/build-images.sh when it is not there yet.
#[test]
fn imports_the_real_busybox_image() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let layout = repo.join("target/images/busybox-1.35");
    if !layout.join("index.json").is_file() {
        let output = std::process::Command::new(repo.join("scripts/build-images.sh")).output().unwrap();
        assert!(output.status.success(), "scripts/build-images.sh failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(store.import(&layout, Some("busybox")).unwrap(), [BUSYBOX]);
    let image = store.resolve("busybox:1.35").unwrap();
    assert_eq!(image.config.cmd, ["sh"]);
    assert_eq!(image.config.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    let root = &image.layers[0];
    assert_eq!(image.layers.len(), 1);
    assert_eq!(std::fs::metadata(root.join("bin/busybox")).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
    assert_eq!(std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    assert!(std::fs::read_to_string(root.join("etc/passwd")).unwrap().starts_with("root:x:0:0:"));
    assert!(root.join("www/index.html").is_file() && root.join("proc").is_dir());
}
