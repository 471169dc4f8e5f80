//! Unpacking tar archives safely: image layers (gzip or plain, checked
//! against their diff_id, with whiteouts for overlayfs) and the image
//! archives an import reads from.
//!
//! Owns: reading a tar stream into a folder the caller made. Must not
//! touch: anything outside that folder (see [`scope`]), and where the
//! folder ends up, which is [`crate::layers`]'s concern.

mod entry;
mod scope;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::ImageError;
use crate::digest::HashingReader;
use crate::error::io_at;
use crate::space::{FileSystem, Guard, guard_error};
pub(crate) use entry::Options;
use entry::{EntryError, Meta};
pub(crate) use scope::{entry_components, resolve};

/// A layer or archive that cannot be unpacked safely.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry is unsafe (absolute, `..`, through a symlink leading out)
    /// or of a kind the store cannot write.
    #[error("{archive}: refusing entry {entry:?}: {reason}")]
    Refused {
        /// The layer's digest or the archive's path.
        archive: String,
        /// The entry's name in the archive.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The uncompressed layer does not hash to the config's diff_id.
    #[error("layer {archive} is corrupt: its uncompressed content hashes to {actual}, the image config says {expected}")]
    DiffIdMismatch {
        /// The layer blob's digest.
        archive: String,
        /// The diff_id in the image config.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// The stream is compressed in a format the store does not read.
    #[error("{archive} is compressed with {format}, which is not supported (use gzip or none)")]
    Compression {
        /// The layer's digest or the archive's path.
        archive: String,
        /// The format recognized by its magic bytes.
        format: &'static str,
    },
    /// The stream is not a readable tar archive.
    #[error("{archive} is not a valid tar archive: {source}")]
    Tar {
        /// The layer's digest or the archive's path.
        archive: String,
        /// What the reader found.
        #[source]
        source: std::io::Error,
    },
}

/// Unpacks a layer blob into the empty folder `dest`, gzip-compressed or
/// not, and checks its uncompressed content against `diff_id`. `name`
/// names the layer in errors. On error, `dest` holds a partial layer: the
/// caller stages it in a temporary folder and throws it away.
pub(crate) fn unpack_layer(blob: &Path, dest: &Path, diff_id: &str, name: &str, fs: &dyn FileSystem) -> Result<(), ImageError> {
    let file = File::open(blob).map_err(io_at(blob))?;
    let reader = decompress(BufReader::new(file), name, blob)?;
    let options = Options { whiteouts: true, metadata: true };
    let what = format!("to unpack layer {name} further (it expands past what the disk can spare: a decompression bomb, or a disk too full)");
    let mut guard = Guard::new(fs, dest).map_err(|e| guard_error(e, &what))?;
    let reader = unpack(HashingReader::new(reader), dest, name, options, &mut guard, &what)?;
    let (actual, _) = reader.finish().map_err(|source| UnpackError::Tar { archive: name.to_owned(), source })?;
    if actual != diff_id {
        return Err(UnpackError::DiffIdMismatch { archive: name.to_owned(), expected: diff_id.to_owned(), actual }.into());
    }
    Ok(())
}

/// Unpacks an image archive (an OCI layout or `docker save` tar, possibly
/// gzip-compressed) into `dest`, content only.
pub(crate) fn unpack_archive(archive: &Path, dest: &Path, fs: &dyn FileSystem) -> Result<(), ImageError> {
    let name = archive.display().to_string();
    let file = File::open(archive).map_err(io_at(archive))?;
    let reader = decompress(BufReader::new(file), &name, archive)?;
    let what = format!("to unpack {name} further (it expands past what the disk can spare)");
    let mut guard = Guard::new(fs, dest).map_err(|e| guard_error(e, &what))?;
    unpack(reader, dest, &name, Options { whiteouts: false, metadata: false }, &mut guard, &what).map(drop)
}

/// Picks the decompressor by the stream's magic bytes rather than a media
/// type, which `docker save` archives do not carry.
fn decompress(mut reader: BufReader<File>, name: &str, path: &Path) -> Result<Box<dyn Read>, ImageError> {
    let head = reader.fill_buf().map_err(io_at(path))?;
    let format = match head {
        [0x1f, 0x8b, ..] => return Ok(Box::new(flate2::read::MultiGzDecoder::new(reader))),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz",
        [b'B', b'Z', b'h', ..] => "bzip2",
        _ => return Ok(Box::new(reader)),
    };
    Err(UnpackError::Compression { archive: name.to_owned(), format }.into())
}

fn unpack<R: Read>(reader: R, dest: &Path, name: &str, options: Options, guard: &mut Guard<'_>, what: &str) -> Result<R, ImageError> {
    let tar_error = |source| UnpackError::Tar { archive: name.to_owned(), source };
    let mut archive = tar::Archive::new(reader);
    let mut folders: Vec<Meta> = Vec::new();
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let entry_name = entry.path_bytes().into_owned();
        match entry::write(dest, &mut entry, options, guard) {
            Ok(Some(folder)) => folders.push(folder),
            Ok(None) => {}
            Err(EntryError::Refused(reason)) => {
                let entry = String::from_utf8_lossy(&entry_name).into_owned();
                return Err(UnpackError::Refused { archive: name.to_owned(), entry, reason }.into());
            }
            Err(EntryError::Io(path, source)) => return Err(ImageError::Io { path, source }),
            Err(EntryError::Full(error)) => return Err(guard_error(error, what)),
        }
    }
    if options.metadata {
        // Deepest first is not needed for correctness (a child's metadata
        // does not touch its parent's mtime) but keeps a read-only parent
        // from being locked before its children when not running as root.
        folders.sort_by(|a, b| b.path.cmp(&a.path));
        for folder in &folders {
            entry::apply(folder, false).map_err(|e| match e {
                EntryError::Refused(reason) => {
                    ImageError::from(UnpackError::Refused { archive: name.to_owned(), entry: folder.path.display().to_string(), reason })
                }
                EntryError::Io(path, source) => ImageError::Io { path, source },
                EntryError::Full(error) => guard_error(error, what),
            })?;
        }
    }
    Ok(archive.into_inner())
}

#[cfg(test)]
mod tests;
