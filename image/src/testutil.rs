//! Test fixtures built in code: layer tars, OCI image layouts and
//! `docker save` archives, small enough to read in a test.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::digest::sha256_of;

/// Builds a tar archive entry by entry, owned by root, mtime 1000.
pub(crate) struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    pub(crate) fn new() -> Self {
        Self { builder: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1000);
        header
    }

    pub(crate) fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    pub(crate) fn file(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, content.len() as u64);
        self.builder.append_data(&mut header, path, content).unwrap();
        self
    }

    pub(crate) fn owned_file(mut self, path: &str, content: &[u8], uid: u64, gid: u64) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, 0o640, content.len() as u64);
        header.set_uid(uid);
        header.set_gid(gid);
        self.builder.append_data(&mut header, path, content).unwrap();
        self
    }

    pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut header, path, target).unwrap();
        self
    }

    pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Link, 0o644, 0);
        self.builder.append_link(&mut header, path, target).unwrap();
        self
    }

    /// An entry whose name the tar crate would refuse to write (`..`,
    /// absolute): the name bytes go straight into the header.
    pub(crate) fn raw_file(mut self, name: &str, content: &[u8]) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, content.len() as u64);
        let field = &mut header.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        self.builder.append(&header, content).unwrap();
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The base layer of the test images: folders, files, a symlink and a hard
/// link, an owned file, a sticky folder.
pub(crate) fn base_layer() -> Vec<u8> {
    TarBuilder::new()
        .dir("bin", 0o755)
        .file("bin/sh", b"#!shell\n", 0o755)
        .symlink("bin/ls", "sh")
        .hardlink("bin/sh2", "bin/sh")
        .dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
        .owned_file("etc/shadow", b"root:*::\n", 0, 42)
        .dir("var/cache", 0o755)
        .file("var/cache/old", b"old", 0o644)
        .dir("tmp", 0o1777)
        .finish()
}

/// A layer on top: deletes /etc/passwd (whiteout), empties /var/cache
/// (opaque folder) and adds a file to it.
pub(crate) fn top_layer() -> Vec<u8> {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/.wh.passwd", b"", 0o644)
        .dir("var/cache", 0o755)
        .file("var/cache/.wh..wh..opq", b"", 0o644)
        .file("var/cache/new", b"new", 0o600)
        .finish()
}

/// An image in a test layout: uncompressed layer tars, lowest first.
pub(crate) struct TestImage {
    pub(crate) ref_name: Option<&'static str>,
    pub(crate) layers: Vec<Vec<u8>>,
    pub(crate) gzip: bool,
}

pub(crate) fn config_json(layers: &[Vec<u8>]) -> Value {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_of(l)).collect();
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/bin/sh"],
            "Cmd": ["-c", "echo hi"],
            "Env": ["PATH=/bin", "A=1"],
            "WorkingDir": "/srv",
            "User": "65534:65534",
            "ExposedPorts": {"8080/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
}

fn write_blob(root: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256_of(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&digest[7..]), bytes).unwrap();
    (digest, bytes.len() as u64)
}

/// Writes an OCI image layout of `images` into `root`; returns the
/// manifest digests.
pub(crate) fn write_layout(root: &Path, images: &[TestImage]) -> Vec<String> {
    let mut descriptors = Vec::new();
    for image in images {
        let (config, config_size) = write_blob(root, config_json(&image.layers).to_string().as_bytes());
        let layers: Vec<Value> = image
            .layers
            .iter()
            .map(|tar| {
                let (bytes, media_type) = if image.gzip {
                    (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
                } else {
                    (tar.clone(), "application/vnd.oci.image.layer.v1.tar")
                };
                let (digest, size) = write_blob(root, &bytes);
                json!({"mediaType": media_type, "digest": digest, "size": size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": layers,
        });
        let (digest, size) = write_blob(root, manifest.to_string().as_bytes());
        let mut descriptor = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size});
        if let Some(name) = image.ref_name {
            descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        descriptors.push(descriptor);
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors});
    std::fs::write(root.join("index.json"), index.to_string()).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    descriptors.iter().map(|d| d["digest"].as_str().unwrap().to_owned()).collect()
}

/// Writes a `docker save` archive (the classic layout: `<id>/layer.tar`,
/// `<config hex>.json`, `manifest.json`) of one image with `repo_tags`.
pub(crate) fn write_docker_save(path: &Path, repo_tags: &[&str], layers: &[Vec<u8>]) {
    let config = config_json(layers).to_string();
    let config_name = format!("{}.json", &sha256_of(config.as_bytes())[7..]);
    let mut tar = TarBuilder::new().file(&config_name, config.as_bytes(), 0o644);
    let mut layer_names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        tar = tar.dir(&format!("layer{i}"), 0o755).file(&name, layer, 0o644);
        layer_names.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]);
    let tar = tar.file("manifest.json", manifest.to_string().as_bytes(), 0o644).finish();
    std::fs::write(path, tar).unwrap();
}
