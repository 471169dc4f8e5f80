//! Container logs in the CRI format kubelet writes and `kubectl logs`
//! reads: one line per output line, `TIME STREAM TAG MESSAGE`, where TAG is
//! `F` for a full line and `P` for a partial one (cut at the buffer size).
//!
//! Logs rotate by size as kubelet's do: past [`MAX_BYTES`] the file becomes
//! `container.log.1` (older ones shift to `.2` ...), at most [`MAX_FILES`]
//! files are kept, and writing goes on in a fresh file. Rotation happens
//! between records, under the lock both streams write through.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Rotate when the log reaches this size (kubelet's default).
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Keep this many files, the current one included (kubelet's default).
pub const MAX_FILES: usize = 5;

/// A log file that rotates by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    max_files: usize,
}

impl LogWriter {
    /// Opens (appends to) the log at `path`, rotating past `max_bytes` and
    /// keeping `max_files` files.
    pub fn open(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(LogWriter { path: path.to_path_buf(), file, written, max_bytes, max_files: max_files.max(1) })
    }

    /// Writes one record, rotating first if the file is full.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written + record.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        if let Err(error) = self.file.write_all(record) {
            // A full disk: take back the part written, so the file holds
            // whole records only and the next one starts a line.
            let _ = self.file.set_len(self.written);
            return Err(error);
        }
        self.written += record.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        // The fresh file first: on a full disk that fails, and nothing is
        // shifted, so a record dropped never costs an older file.
        let fresh_path = PathBuf::from(format!("{}.new", self.path.display()));
        let fresh = OpenOptions::new().create(true).append(true).truncate(false).open(&fresh_path)?;
        fresh.set_len(0)?;
        let _ = std::fs::remove_file(numbered(self.max_files - 1));
        for n in (1..self.max_files.saturating_sub(1)).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if self.max_files > 1 {
            std::fs::rename(&self.path, numbered(1))?;
        }
        std::fs::rename(&fresh_path, &self.path)?;
        self.file = fresh;
        self.written = 0;
        Ok(())
    }
}

/// Lines longer than this are split into partial (`P`) records.
const MAX_LINE: usize = 16 * 1024;

/// Copies everything read from `source` into `log` as CRI records of
/// `stream` ("stdout" or "stderr") until the source closes. A record that
/// cannot be written (a full disk) is dropped and copying goes on, as
/// containerd's CRI logger does: the container must never block on its
/// output because the node's disk is full. Returns how many were dropped.
pub fn copy(source: impl Read, stream: &str, log: &Arc<Mutex<LogWriter>>) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(MAX_LINE, source);
    let mut line = Vec::with_capacity(256);
    let mut dropped = 0;
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(dropped);
        }
        let full = line.last() == Some(&b'\n');
        if full {
            line.pop();
        }
        let record = format_record(&crate::now(), stream, full, &line);
        // A poisoned lock only means another copier panicked mid-write;
        // the file itself is still usable.
        let mut writer = log.lock().unwrap_or_else(|e| e.into_inner());
        if writer.write_record(&record).is_err() {
            dropped += 1;
        }
    }
}

/// One CRI log record.
pub fn format_record(time: &str, stream: &str, full: bool, message: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(time.len() + stream.len() + message.len() + 5);
    record.extend_from_slice(time.as_bytes());
    record.push(b' ');
    record.extend_from_slice(stream.as_bytes());
    record.extend_from_slice(if full { b" F " } else { b" P " });
    record.extend_from_slice(message);
    record.push(b'\n');
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(LogWriter::open(&path, 200, 3).unwrap()));
        let input: String = (0..40).map(|i| format!("line {i:02}\n")).collect();
        copy(input.as_bytes(), "stdout", &log).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        let one = read(&dir.path().join("c.log.1"));
        let two = read(&dir.path().join("c.log.2"));
        assert!(!dir.path().join("c.log.3").exists(), "at most 3 files");
        for text in [&current, &one, &two] {
            assert!(!text.is_empty() && text.len() <= 200, "{text}");
            assert!(text.lines().all(|l| l.contains(" stdout F line ")), "records are never split: {text}");
        }
        assert!(current.ends_with(" stdout F line 39\n"));
        assert!(one.lines().last().unwrap() < current.lines().next().unwrap(), "older records in .1");
    }

    #[test]
    fn a_full_disk_drops_records_and_never_stops_the_copy() {
        // /dev/full answers every write with ENOSPC.
        let log = Arc::new(Mutex::new(LogWriter::open(Path::new("/dev/full"), MAX_BYTES, MAX_FILES).unwrap()));
        let input: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(copy(input.as_bytes(), "stdout", &log).unwrap(), 1000, "all read, all dropped");
    }

    #[test]
    fn splits_lines_and_marks_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(LogWriter::open(&path, MAX_BYTES, MAX_FILES).unwrap()));
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("hello\n{long}\nno newline");
        copy(input.as_bytes(), "stdout", &log).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        let kinds: Vec<_> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(kinds, ["F", "P", "F", "P"]);
        assert!(text.lines().next().unwrap().ends_with(" stdout F hello"));
        assert!(text.lines().last().unwrap().ends_with(" stdout P no newline"));
    }
}
