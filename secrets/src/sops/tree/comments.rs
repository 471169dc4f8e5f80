//! Where SOPS's YAML store puts each comment of a document: go-yaml's
//! head, line and foot comments, as SOPS lists them in its tree (inline
//! comments before their item, foot comments after a block's last item).
//! Comments decide the comment-regex rules and an encrypted comment's
//! additional data; they are not MACed.
//!
//! Reads the text and the tree's item positions; decides nothing else.

use super::{Comment, Node, line_start};
use driftless_manifest::text::dash_before;

/// What `parse` knows of a container while its document is open, for
/// attaching comments.
pub(super) struct Container {
    pub(super) parent: Option<usize>,
    pub(super) depth: usize,
    /// The column (bytes from the line start) its items are written at.
    pub(super) column: Option<usize>,
    pub(super) flow: bool,
}

/// An item start, for attaching comments: container, index, byte offset.
pub(super) struct ItemStart {
    pub(super) container: usize,
    pub(super) index: usize,
    pub(super) at: usize,
}

/// Records where every item of every container starts, and each block
/// container's item column.
pub(super) fn collect_items(text: &str, node: &Node, containers: &mut [Container], out: &mut Vec<ItemStart>) {
    match node {
        Node::Map(map) => {
            for (index, entry) in map.entries.iter().enumerate() {
                out.push(ItemStart { container: map.id, index, at: entry.key.start });
                collect_items(text, &entry.value, containers, out);
            }
            if let Some(first) = map.entries.first() {
                containers[map.id].column = Some(first.key.start - line_start(text, first.key.start));
            }
        }
        Node::Seq(seq) => {
            for (index, item) in seq.items.iter().enumerate() {
                let at = if seq.flow { item.start() } else { dash_before(text, item.start()).unwrap_or(item.start()) };
                out.push(ItemStart { container: seq.id, index, at });
                collect_items(text, item, containers, out);
            }
            if let Some(first) = seq.items.first() {
                let at = dash_before(text, first.start()).unwrap_or(first.start());
                containers[seq.id].column = Some(at - line_start(text, at));
            }
        }
        Node::Scalar(_) | Node::Alias(_) => {}
    }
}

/// The comments in `text[range.0..range.1]` (one document), outside every
/// scalar: a `#` at a line start or after a blank.
pub(super) fn find_comments(text: &str, scalars: &[(usize, usize)], range: (usize, usize)) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut next_scalar = 0;
    let mut i = range.0;
    while i < range.1.min(bytes.len()) {
        while next_scalar < scalars.len() && scalars[next_scalar].1 <= i {
            next_scalar += 1;
        }
        if let Some(&(_, e)) = scalars.get(next_scalar).filter(|(s, e)| *s <= i && i < *e) {
            i = e;
            continue;
        }
        if bytes[i] == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'\r')) {
            let mut end = i;
            while end < bytes.len() && bytes[end] != b'\n' {
                end += 1;
            }
            let stop = if end > i && bytes[end - 1] == b'\r' { end - 1 } else { end };
            comments.push(Comment { start: i, end: stop });
            i = end;
            continue;
        }
        i += 1;
    }
    comments
}

/// Where SOPS's YAML store (through go-yaml's head, line and foot comments)
/// puts a comment: the container and the item it precedes. A comment on a
/// line after an item precedes that item (SOPS lists inline comments
/// first); a comment on its own line precedes the next item, unless it is
/// indented into a block that ended just before it, whose foot it is.
pub(super) fn attach(text: &str, comment: Comment, containers: &[Container], starts: &[ItemStart]) -> Option<(usize, usize)> {
    let line_begin = line_start(text, comment.start);
    let inline = text[line_begin..comment.start].bytes().any(|b| !matches!(b, b' ' | b'\t'));
    let next = starts.iter().position(|s| s.at > comment.start);
    let prev = match next {
        Some(0) => None,
        Some(n) => Some(&starts[n - 1]),
        None => starts.last(),
    };
    if inline {
        let prev = prev?;
        return Some((prev.container, prev.index));
    }
    let column = comment.start - line_begin;
    let chain = |from: usize| {
        let mut chain = vec![from];
        while let Some(parent) = containers[*chain.last().unwrap_or(&from)].parent {
            chain.push(parent);
        }
        chain
    };
    let next_chain = next.map(|n| chain(starts[n].container)).unwrap_or_default();
    // Blocks closed between the previous item and the comment, deepest first.
    let closed = prev.map(|p| chain(p.container)).unwrap_or_default().into_iter().filter(|c| !next_chain.contains(c));
    let foot = closed.filter(|c| !containers[*c].flow && containers[*c].column.is_some_and(|col| col <= column)).max_by_key(|c| containers[*c].depth);
    match (next, foot) {
        (Some(n), Some(f)) if containers[f].depth > containers[starts[n].container].depth => Some((f, usize::MAX)),
        (Some(n), _) => Some((starts[n].container, starts[n].index)),
        (None, Some(f)) => Some((f, usize::MAX)),
        (None, None) => prev.map(|p| (p.container, usize::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    fn comments_of(text: &str) -> Vec<(usize, usize, String)> {
        let documents = parse(text).unwrap();
        let mut out = Vec::new();
        for (id, list) in documents[0].comments.iter().enumerate() {
            for a in list {
                out.push((id, a.before, text[a.comment.start + 1..a.comment.end].to_owned()));
            }
        }
        out
    }

    #[test]
    fn comments_attach_like_sops() {
        // The root is container 0, `data` container 1.
        let text = "# head\nkind: Secret # inline\ndata:\n  # first\n  a: b\n  # foot of data\nlast: x\n# tail\n";
        let found = comments_of(text);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.contains(&(0, 0, " head".to_owned())));
        assert!(found.contains(&(0, 0, " inline".to_owned())));
        assert!(found.contains(&(1, 0, " first".to_owned())));
        assert!(found.contains(&(1, usize::MAX, " foot of data".to_owned())));
        assert!(found.contains(&(0, usize::MAX, " tail".to_owned())));
    }
}
