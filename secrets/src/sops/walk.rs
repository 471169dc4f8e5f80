//! SOPS's tree walk (`walkBranch`/`walkSlice` in `sops.go`) over our
//! positioned tree: every leaf in document order with its path (the keys
//! from the root; sequence items share their sequence's path) and the
//! comments in effect at each level, which the comment-regex rules read.
//!
//! The order is the MAC's order, so it must be SOPS's: comments attached
//! before an item come before it. Skips each document's top-level `sops`
//! entry, as SOPS removes it before walking. Decides nothing itself.

use super::tree::{Attached, Comment, Document, Node, Scalar};

/// A leaf the walk reports.
pub(crate) enum Leaf<'t> {
    Scalar(&'t Scalar),
    Comment(Comment),
    /// An alias, at its byte offset: SOPS would expand it; we refuse it.
    Alias(usize),
}

/// What the walk calls for each leaf: the leaf, its path, and the comments
/// in effect at each level.
pub(crate) type Visit<'t, 'v, E> = dyn FnMut(Leaf<'t>, &[&'t str], &[Vec<&'t str>]) -> Result<(), E> + 'v;

/// A document whose root is not a mapping (SOPS supports only mappings).
pub(crate) struct NotAMapping(pub usize);

/// Walks every leaf of `document`, calling `visit(leaf, path, comments)`.
pub(crate) fn walk<'t, E>(text: &'t str, document: &'t Document, visit: &mut Visit<'t, '_, E>) -> Result<Result<(), NotAMapping>, E> {
    let mut walker = Walker { text, document, visit, path: Vec::new(), stack: Vec::new() };
    match &document.root {
        None => Ok(Ok(())),
        Some(Node::Map(map)) => {
            let entries: Vec<_> = map.entries.iter().map(|e| (Some(e.key.value.as_str()), &e.value)).collect();
            walker.container(map.id, &entries, true).map(Ok)
        }
        Some(Node::Scalar(s)) if s.value.is_empty() => Ok(Ok(())),
        Some(other) => Ok(Err(NotAMapping(other.start()))),
    }
}

struct Walker<'t, 'v, E> {
    text: &'t str,
    document: &'t Document,
    visit: &'v mut Visit<'t, 'v, E>,
    path: Vec<&'t str>,
    stack: Vec<Vec<&'t str>>,
}

impl<'t, E> Walker<'t, '_, E> {
    /// A mapping (items with keys) or a sequence (without), its comments
    /// interleaved where SOPS's YAML store puts them.
    fn container(&mut self, id: usize, items: &[(Option<&'t str>, &'t Node)], root: bool) -> Result<(), E> {
        self.stack.push(Vec::new());
        let comments: &'t [Attached] = self.document.comments.get(id).map_or(&[], Vec::as_slice);
        let mut next_comment = 0;
        for index in 0..=items.len() {
            while let Some(attached) = comments.get(next_comment).filter(|a| a.before.min(items.len()) == index) {
                next_comment += 1;
                let value = &self.text[attached.comment.start + 1..attached.comment.end];
                if let Some(level) = self.stack.last_mut() {
                    level.push(value);
                }
                (self.visit)(Leaf::Comment(attached.comment), &self.path, &self.stack)?;
            }
            let Some((key, node)) = items.get(index) else { break };
            if root && *key == Some("sops") {
                continue;
            }
            if let Some(key) = key {
                self.path.push(key);
            }
            self.node(node)?;
            if key.is_some() {
                self.path.pop();
            }
            if let Some(level) = self.stack.last_mut() {
                level.clear();
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn node(&mut self, node: &'t Node) -> Result<(), E> {
        match node {
            Node::Scalar(s) => (self.visit)(Leaf::Scalar(s), &self.path, &self.stack),
            Node::Alias(at) => (self.visit)(Leaf::Alias(*at), &self.path, &self.stack),
            Node::Map(map) => {
                let entries: Vec<_> = map.entries.iter().map(|e| (Some(e.key.value.as_str()), &e.value)).collect();
                self.container(map.id, &entries, false)
            }
            Node::Seq(seq) => {
                let items: Vec<_> = seq.items.iter().map(|n| (None, n)).collect();
                self.container(seq.id, &items, false)
            }
        }
    }
}
