//! How a field is named in messages: the dotted form of a JSON pointer.

/// The dotted form of a JSON pointer: `/spec/containers/0/image` reads
/// `spec.containers[0].image`, and keys that are not plain identifiers are
/// quoted (`metadata.labels["app.kubernetes.io/name"]`).
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        } else {
            out.push_str(&format!("[{segment:?}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths() {
        assert_eq!(field_path(""), "");
        assert_eq!(field_path("/spec/containers/0/image"), "spec.containers[0].image");
        assert_eq!(field_path("/metadata/labels/app.kubernetes.io~1name"), "metadata.labels[\"app.kubernetes.io/name\"]");
    }
}
