//! Positions in YAML text for the crates that edit or rewrite it in place
//! (the write path, SOPS): saphyr's markers count characters, slices need
//! bytes.
//!
//! Must not touch: parsing; this is arithmetic on text already read.

/// Character index to byte offset, for texts that are not all ASCII.
pub struct CharOffsets(Option<Vec<usize>>);

impl CharOffsets {
    /// The table for `text` (none needed when it is ASCII).
    pub fn new(text: &str) -> CharOffsets {
        if text.is_ascii() {
            return CharOffsets(None);
        }
        let mut table: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        table.push(text.len());
        CharOffsets(Some(table))
    }

    /// The byte offset of character `index` (the text's end past it).
    pub fn byte(&self, index: usize) -> usize {
        match &self.0 {
            None => index,
            Some(table) => table.get(index).copied().unwrap_or_else(|| table.last().copied().unwrap_or(0)),
        }
    }
}

/// The offset of the `-` of the block sequence item starting at byte
/// `item`, when only blanks are between them.
pub fn dash_before(text: &str, item: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = item.min(bytes.len());
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b' ' | b'\t' => {}
            b'-' => return Some(i),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_map_to_bytes() {
        let offsets = CharOffsets::new("é: ü");
        assert_eq!((offsets.byte(0), offsets.byte(1), offsets.byte(3), offsets.byte(9)), (0, 2, 4, 6));
        assert_eq!(CharOffsets::new("a: b").byte(3), 3);
    }

    #[test]
    fn a_dash_is_found_over_blanks_only() {
        assert_eq!(dash_before("- a", 2), Some(0));
        assert_eq!(dash_before("x a", 2), None);
        assert_eq!(dash_before("a", 0), None);
    }
}
