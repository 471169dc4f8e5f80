//! What the fuzz targets share: how YAML counts lines, for the property
//! that every position a finding names is inside its file.
//!
//! Must not touch: anything the targets test.

/// Lines as YAML counts them: libyaml breaks a line at `\n`, `\r\n`, a
/// lone `\r`, and (YAML 1.1) NEL, LS and PS.
pub fn yaml_lines(text: &[u8]) -> u32 {
    let lossy = String::from_utf8_lossy(text);
    let mut chars = lossy.chars().peekable();
    let mut lines = 1;
    while let Some(c) = chars.next() {
        if c == '\n' || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') || (c == '\r' && chars.peek() != Some(&'\n')) {
            lines += 1;
        }
    }
    lines
}
