//! The project's own test images, shared by the test binaries.

use std::path::PathBuf;

/// The busybox:1.35 OCI layout, built by scripts/build-images.sh when it is
/// missing (it is reproducible, so building it again changes nothing).
pub(crate) fn busybox_layout() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let layout = root.join("target/images/busybox-1.35");
    if !layout.join("index.json").exists() {
        let status = std::process::Command::new("bash").arg(root.join("scripts/build-images.sh")).status().unwrap();
        assert!(status.success(), "scripts/build-images.sh failed");
    }
    layout
}
