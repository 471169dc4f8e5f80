//! Container logs in the CRI format kubelet writes and `kubectl logs`
//! reads: one line per output line, `TIME STREAM TAG MESSAGE`, where TAG is
//! `F` for a full line and `P` for a partial one (cut at the buffer size).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// Lines longer than this are split into partial (`P`) records.
const MAX_LINE: usize = 16 * 1024;

/// Copies everything read from `source` into `log` as CRI records of
/// `stream` ("stdout" or "stderr") until the source closes.
pub fn copy(source: impl Read, stream: &str, log: &Arc<Mutex<File>>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(MAX_LINE, source);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let full = line.last() == Some(&b'\n');
        if full {
            line.pop();
        }
        let record = format_record(&crate::status::now(), stream, full, &line);
        // A poisoned lock only means another copier panicked mid-write;
        // the file itself is still usable.
        let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&record)?;
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
    fn splits_lines_and_marks_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("hello\n{long}\nno newline");
        copy(input.as_bytes(), "stdout", &log).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        let kinds: Vec<_> = text.lines().map(|l| l.splitn(4, ' ').nth(2).unwrap()).collect();
        assert_eq!(kinds, ["F", "P", "F", "P"]);
        assert!(text.lines().next().unwrap().ends_with(" stdout F hello"));
        assert!(text.lines().last().unwrap().ends_with(" stdout P no newline"));
    }
}
