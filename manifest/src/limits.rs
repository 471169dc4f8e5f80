//! The bounds on what one load reads: anyone who can push may write a
//! revision, so its size, its number of files and of objects are bounded,
//! and a revision past a bound is refused at the file that crosses it,
//! with the bound in the message, before it costs more than the bound
//! allows. The YAML parser bounds the rest: nesting (128 levels) and
//! alias expansion (100 times the events a document writes), both
//! reported at the file.
//!
//! Must not touch: what a document means (validation's).

/// The most one manifest file may hold: a file over it is not read.
/// Kubernetes stores no object over 1.5 MiB (etcd's default request
/// size), and the largest bundles users apply whole (CRD bundles) are a
/// few MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The most the manifests of one revision may hold together.
pub const MAX_REVISION_BYTES: u64 = 64 << 20;

/// The most manifest files one revision may hold.
pub const MAX_FILES: usize = 20_000;

/// The most folders deep a manifest may sit in a revision's tree (git
/// allows any depth, and a tree is walked by recursion).
pub const MAX_FOLDER_DEPTH: usize = 100;

/// The most objects one revision may declare (a `List`'s items count one
/// each). Each is held typed while a revision is judged, about 5 KiB.
pub const MAX_OBJECTS: usize = 20_000;

/// The most YAML nodes (events: each scalar, alias, mapping and sequence
/// start and end) one file may write. Parsing holds about 130 bytes per
/// event at once (a 16 MiB file of `- {}` lines took 870 MiB), so a
/// file's events are counted first when it is large enough to pass the
/// bound; a real file of [`MAX_FILE_BYTES`] writes well under half as many
/// (about one event per 20 bytes).
pub const MAX_YAML_EVENTS: usize = 1_000_000;

/// Files up to this size are not counted first: they cannot write
/// [`MAX_YAML_EVENTS`] (an event takes two bytes at least, `[]`), and
/// parsing one costs little.
pub(crate) const COUNT_EVENTS_ABOVE: usize = 2 * MAX_YAML_EVENTS;

/// Where in `text` the YAML events pass [`MAX_YAML_EVENTS`], if they do
/// (`None` too when the text is not YAML: the parser then says why).
pub(crate) fn yaml_events_past_bound(text: &str) -> Option<crate::Pos> {
    if text.len() <= COUNT_EVENTS_ABOVE {
        return None;
    }
    let (_, span) = saphyr_parser::Parser::new_from_str(text).nth(MAX_YAML_EVENTS)?.ok()?;
    Some(crate::Pos { line: u32::try_from(span.start.line()).unwrap_or(u32::MAX), col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX) })
}

/// `bytes` as people read sizes: `200.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

/// What a file too large to read says where its syntax error would be.
pub(crate) fn file_too_large(size: u64) -> String {
    format!("the file is {}; a manifest file may hold at most {} (it was not read)", human_bytes(size), human_bytes(MAX_FILE_BYTES))
}

/// The running totals of one load, checked as each file is found.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    /// Counts a file of `size` bytes found at `path`; the error once a
    /// bound is crossed. A file over [`MAX_FILE_BYTES`] counts as a file
    /// but not its bytes (it is not read).
    pub(crate) fn take(&mut self, path: &str, size: u64) -> Result<(), crate::LoadError> {
        self.files += 1;
        if size <= MAX_FILE_BYTES {
            self.bytes += size;
        }
        if self.files > MAX_FILES {
            return Err(crate::LoadError::TooLarge { path: path.to_owned(), why: format!("more than {MAX_FILES} manifest files") });
        }
        if self.bytes > MAX_REVISION_BYTES {
            return Err(crate::LoadError::TooLarge {
                path: path.to_owned(),
                why: format!("more than {} of manifests together", human_bytes(MAX_REVISION_BYTES)),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_files_are_counted_and_the_bound_is_placed() {
        assert_eq!(yaml_events_past_bound("a: [b, c]\n"), None);
        let lines = "- {}\n".repeat(MAX_YAML_EVENTS / 2 + 10);
        let pos = yaml_events_past_bound(&lines).unwrap();
        // Stream, document and sequence start (events 0 to 2), then two
        // events a line: line N holds events 2N + 1 and 2N + 2.
        assert_eq!(pos.line, u32::try_from(MAX_YAML_EVENTS / 2 - 1).unwrap());
        let lines = "- a\n".repeat(COUNT_EVENTS_ABOVE / 4 + 1);
        assert_eq!(yaml_events_past_bound(&lines), None, "{} events are under the bound", COUNT_EVENTS_ABOVE / 4);
    }

    #[test]
    fn a_budget_refuses_at_the_file_that_crosses_a_bound() {
        let mut budget = Budget::default();
        for i in 0..4 {
            budget.take(&format!("{i}.yaml"), MAX_FILE_BYTES).unwrap();
        }
        // A file too large to read does not count its bytes.
        budget.take("huge.yaml", 200 << 20).unwrap();
        let error = budget.take("b.yaml", 1).unwrap_err();
        assert_eq!(error.to_string(), "b.yaml: the revision holds more than 64.0 MiB of manifests together; refused whole");
        let mut budget = Budget::default();
        for i in 0..MAX_FILES {
            budget.take(&format!("{i}.yaml"), 1).unwrap();
        }
        assert!(budget.take("last.yaml", 1).unwrap_err().to_string().contains("more than 20000 manifest files"));
        assert_eq!(human_bytes(200 << 20), "200.0 MiB");
        assert_eq!(file_too_large(200 << 20), "the file is 200.0 MiB; a manifest file may hold at most 16.0 MiB (it was not read)");
    }
}
