//! Importing an image archive (an OCI layout tar or a `docker save` tar,
//! gzip or not) into a fresh store: tar, gzip, JSON manifests and configs,
//! layers with whiteouts. Whatever the bytes, nothing is written outside
//! the store's folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    std::fs::write(&archive, bytes).unwrap();
    let data = dir.path().join("data");
    let store = driftless_image::ImageStore::open(&data).unwrap();
    let _ = store.import(&archive, Some("fuzzed"));
    // Only the archive and the data folder are in the temporary folder.
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["data", "image.tar"], "written outside the store");
});
