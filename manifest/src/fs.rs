//! Loading from files and folders on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::limits::{Budget, MAX_FILE_BYTES};
use crate::{LoadError, Pos, RawFile, SourceFile, SyntaxError, is_manifest_name, parse_file};

/// Loads every manifest under `paths`. A file named directly is read
/// whatever its extension; folders are walked recursively for `.yaml`,
/// `.yml` and `.json` files, skipping hidden files and folders, in path
/// order. A missing or unreadable path fails the whole load.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<RawFile>, LoadError> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound { path: root.clone() },
            _ => LoadError::Io { path: root.clone(), source },
        })?;
        if meta.is_file() {
            files.push(root.clone());
            continue;
        }
        let walker = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.clone());
                LoadError::Io { path, source: e.into() }
            })?;
            if entry.file_type().is_file() && is_manifest_name(&entry.file_name().to_string_lossy()) {
                files.push(entry.into_path());
            }
        }
    }
    let mut budget = Budget::default();
    files.into_iter().map(|path| read(&path, &mut budget)).collect()
}

/// The file at `path`, unless it is too large to read.
fn read(path: &Path, budget: &mut Budget) -> Result<RawFile, LoadError> {
    let io = |source| LoadError::Io { path: path.to_path_buf(), source };
    let shown: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    budget.take(&shown, size)?;
    if size > MAX_FILE_BYTES {
        return Ok(RawFile::too_large(shown, size));
    }
    // Read no more than the bound, whatever the size said (a file that
    // grows meanwhile, or a device).
    let mut bytes = Vec::with_capacity(size as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, MAX_FILE_BYTES + 1), &mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(RawFile::too_large(shown, bytes.len() as u64));
    }
    Ok(RawFile::new(shown, bytes))
}

/// Parses a file's bytes, reporting text that is not UTF-8 as a syntax error
/// of that file.
pub(crate) fn from_bytes(path: Arc<str>, bytes: &[u8]) -> SourceFile {
    let outcome = match std::str::from_utf8(bytes) {
        Ok(text) => parse_file(path.clone(), text),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            Err(SyntaxError { pos: Pos { line: u32::try_from(line).unwrap_or(u32::MAX), col: 1 }, message: "file is not valid UTF-8".to_owned() })
        }
    };
    SourceFile { path, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_skipping_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("apps/web")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("apps/.drafts")).unwrap();
        std::fs::write(root.join("apps/web/b.yml"), "kind: B\n").unwrap();
        std::fs::write(root.join("apps/a.yaml"), "kind: A\n").unwrap();
        std::fs::write(root.join("apps/c.JSON"), "{\"kind\": \"C\"}").unwrap();
        std::fs::write(root.join("apps/readme.md"), "# not a manifest").unwrap();
        std::fs::write(root.join("apps/.drafts/x.yaml"), "kind: X\n").unwrap();
        std::fs::write(root.join(".git/config.yaml"), "kind: G\n").unwrap();
        std::fs::write(root.join("apps/.hidden.yaml"), "kind: H\n").unwrap();
        let files = load_paths(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.path.strip_prefix(&*root.to_string_lossy()).unwrap().to_owned()).collect();
        assert_eq!(names, ["/apps/a.yaml", "/apps/c.JSON", "/apps/web/b.yml"]);
    }

    #[test]
    fn a_file_over_the_bound_is_not_read_and_parses_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.yaml");
        // Sparse: 200 MiB on paper, nothing on disk.
        std::fs::File::create(&huge).unwrap().set_len(200 << 20).unwrap();
        let file = load_paths(&[huge]).unwrap().remove(0);
        assert!(file.is_too_large() && file.bytes.is_empty());
        let err = file.parse().outcome.unwrap_err();
        assert_eq!((err.pos.line, err.message.as_str()), (1, "the file is 200.0 MiB; a manifest file may hold at most 16.0 MiB (it was not read)"));
    }

    #[test]
    fn missing_paths_and_bad_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load_paths(std::slice::from_ref(&missing)).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: no such file or directory", missing.display()));
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, b"kind: A\nname: \xff\n").unwrap();
        let file = load_paths(&[bad]).unwrap().remove(0).parse();
        let err = file.outcome.as_ref().unwrap_err();
        assert_eq!((err.pos.line, err.message.as_str()), (2, "file is not valid UTF-8"));
    }
}
