//! From two values of one document, the old as written and the new a verb
//! made, to the fewest text splices that turn the old text into the new:
//! a changed scalar is rewritten where it stands (in its quoting style), a
//! removed entry or item loses exactly its lines, a new one is added after
//! its last sibling in its siblings' layout. Everything else, comments
//! included, is left byte for byte.

use saphyr_parser::ScalarStyle;
use serde_json::{Map, Value};

use super::render::{self, Layout};
use super::tree::{Body, Entry, Node, dash_before, line_end, line_start};

/// One change to the text: `text[start..end]` becomes `with`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Splice {
    pub start: usize,
    pub end: usize,
    pub with: String,
}

/// Why a change cannot be written in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// Where, a byte offset into the text.
    pub at: usize,
    pub why: String,
}

/// How a node is held by its parent, which decides how it is replaced.
#[derive(Clone, Copy)]
enum Holder<'a> {
    Root,
    /// The value of a block mapping entry.
    Entry(&'a Entry),
    /// An item of a block sequence, after its `-`.
    Item(usize),
    /// Inside a flow collection: replaced where it stands.
    Flow,
}

/// Collects the splices of one document's change.
pub(crate) struct Patcher<'t> {
    text: &'t str,
    layout: Layout,
    pub splices: Vec<Splice>,
}

fn col(text: &str, at: usize) -> usize {
    at - line_start(text, at)
}

fn first_on_line(text: &str, at: usize) -> bool {
    text[line_start(text, at)..at].bytes().all(|b| b == b' ' || b == b'\t')
}

fn quote_of(node: &Node) -> Option<char> {
    match node.body {
        Body::Scalar { style: ScalarStyle::DoubleQuoted, .. } => Some('"'),
        Body::Scalar { style: ScalarStyle::SingleQuoted, .. } => Some('\''),
        _ => None,
    }
}

/// The name that identifies an item of a list Kubernetes merges by key
/// (containers, env, volumes, ports...), if every item has one.
fn item_key(item: &Value) -> Option<String> {
    let object = item.as_object()?;
    for field in ["name", "mountPath", "containerPort", "ip", "key"] {
        if let Some(value) = object.get(field) {
            return Some(format!("{field}={value}"));
        }
    }
    None
}

impl<'t> Patcher<'t> {
    pub(crate) fn new(text: &'t str, layout: Layout) -> Patcher<'t> {
        Patcher { text, layout, splices: Vec::new() }
    }

    fn splice(&mut self, start: usize, end: usize, with: impl Into<String>) {
        self.splices.push(Splice { start, end, with: with.into() });
    }

    /// Rewrites the document whose root is `root` from `old` to `new`.
    pub(crate) fn document(&mut self, root: &Node, old: &Value, new: &Value) -> Result<(), Unsupported> {
        self.node(root, Holder::Root, old, new)
    }

    fn node(&mut self, node: &Node, holder: Holder<'_>, old: &Value, new: &Value) -> Result<(), Unsupported> {
        if old == new {
            return Ok(());
        }
        match (&node.body, old, new) {
            (Body::Alias, ..) => Err(Unsupported { at: node.start, why: "the value is an alias (`*name`) of an anchor used elsewhere".into() }),
            (Body::Opaque, ..) => Err(Unsupported { at: node.start, why: "the value cannot be edited in place".into() }),
            (Body::Map { flow, entries }, Value::Object(o), Value::Object(n)) if !n.is_empty() && !entries.is_empty() => self.map(node, *flow, entries, o, n),
            (Body::Seq { flow, items }, Value::Array(o), Value::Array(n)) if !n.is_empty() && items.len() == o.len() && !items.is_empty() => {
                self.seq(node, *flow, items, o, n)
            }
            _ => self.replace(node, holder, new),
        }
    }

    /// Writes `new` in place of `node` whole.
    fn replace(&mut self, node: &Node, holder: Holder<'_>, new: &Value) -> Result<(), Unsupported> {
        let layout = self.layout;
        // A flow collection stays one (`data: {}` becomes `data: {k: v}`).
        let flow_node = matches!(node.body, Body::Map { flow: true, .. } | Body::Seq { flow: true, .. });
        let in_flow = matches!(holder, Holder::Flow) || layout.json || (flow_node && !new.is_string());
        if in_flow {
            self.splice(node.start, node.end, render::inline(new, quote_of(node), true, layout));
            return Ok(());
        }
        if let Body::Scalar { style: ScalarStyle::Literal | ScalarStyle::Folded, content_col, .. } = node.body
            && let Some(text) = new.as_str().and_then(|s| render::literal(s, content_col))
        {
            self.splice(node.start, node.end, text);
            return Ok(());
        }
        match holder {
            Holder::Root => {
                let text = if render::is_inline(new) { render::inline(new, None, false, layout) } else { render::block(new, 0, layout) };
                self.splice(node.start, node.end, text.trim_end_matches('\n'));
            }
            Holder::Entry(entry) => {
                let indent = col(self.text, entry.key_start);
                let is_scalar_node = matches!(node.body, Body::Scalar { empty: false, .. });
                if render::is_inline(new) && is_scalar_node {
                    // Keep the quoting the user chose for strings.
                    let text = match new {
                        Value::String(s) if s.contains('\n') => render::after_key(new, indent, layout).trim_start().to_owned(),
                        _ => render::inline(new, quote_of(node), false, layout),
                    };
                    self.splice(node.start, node.end, text);
                } else {
                    self.splice(entry.colon + 1, node.end.max(entry.colon + 1), render::after_key(new, indent, layout));
                }
            }
            Holder::Item(dash) => {
                let indent = col(self.text, dash);
                if render::is_inline(new) && matches!(node.body, Body::Scalar { .. }) && !new.as_str().is_some_and(|s| s.contains('\n')) {
                    self.splice(node.start, node.end, render::inline(new, quote_of(node), false, layout));
                } else {
                    self.splice(dash + 1, node.end, render::after_dash(new, indent, layout));
                }
            }
            Holder::Flow => unreachable!("handled above"),
        }
        Ok(())
    }

    fn map(&mut self, node: &Node, flow: bool, entries: &[Entry], old: &Map<String, Value>, new: &Map<String, Value>) -> Result<(), Unsupported> {
        if entries.iter().any(|e| e.key == "<<") {
            // Merged fields are written elsewhere; only new keys that
            // override them could be written here, and removing one cannot.
            if old.keys().any(|k| !new.contains_key(k) && !entries.iter().any(|e| &e.key == k)) {
                return Err(Unsupported { at: node.start, why: "a field to remove comes from a merge key (`<<`)".into() });
            }
        }
        let removed: Vec<bool> = entries.iter().map(|e| e.key != "<<" && !new.contains_key(&e.key)).collect();
        let kept = removed.iter().filter(|r| !**r).count();
        let added: Vec<(&String, &Value)> = new.iter().filter(|(k, _)| !entries.iter().any(|e| &e.key == *k)).collect();
        if kept == 0 && added.is_empty() {
            // Cannot happen: `new` is not empty.
            return Err(Unsupported { at: node.start, why: "empty mapping".into() });
        }
        if kept == 0 {
            // Every entry goes: write the mapping anew where it stands.
            return self.rewrite(node, flow, &Value::Object(new.clone()));
        }
        // Removals, one run of neighbouring entries at a time.
        let mut i = 0;
        while i < entries.len() {
            if !removed[i] {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < entries.len() && removed[j + 1] {
                j += 1;
            }
            let next = entries.get(j + 1).map(|e| e.key_start);
            self.remove_run(flow, entries[i].key_start, entries[j].value.end, next, i.checked_sub(1).map(|p| entries[p].value.end))?;
            i = j + 1;
        }
        // Changes, in place.
        for entry in entries {
            if let (Some(o), Some(n)) = (old.get(&entry.key), new.get(&entry.key)) {
                let holder = if flow { Holder::Flow } else { Holder::Entry(entry) };
                self.node(&entry.value, holder, o, n)?;
            }
        }
        // Additions, after the last entry.
        if !added.is_empty() {
            let last = entries.last().map_or(node.end, |e| e.value.end);
            let layout = self.layout;
            if flow || layout.json {
                let text: String =
                    added.iter().map(|(k, v)| format!(", {}: {}", render::key(k, true, layout), render::inline(v, None, true, layout))).collect();
                self.splice(last, last, text);
            } else {
                let indent = col(self.text, entries[0].key_start);
                let pad = " ".repeat(indent);
                let at = line_end(self.text, last);
                let mut text = if at == self.text.len() && !self.text.ends_with('\n') { String::from("\n") } else { String::new() };
                for (k, v) in added {
                    text.push_str(&format!("{pad}{}:{}\n", render::key(k, false, layout), render::after_key(v, indent, layout)));
                }
                self.splice(at, at, text);
            }
        }
        Ok(())
    }

    /// A collection written anew where it stands (a mapping none of whose
    /// entries survive, a sequence reordered beyond what [`align`]
    /// follows), in its own style: the first line starts where the old
    /// first key or item started.
    fn rewrite(&mut self, node: &Node, flow: bool, value: &Value) -> Result<(), Unsupported> {
        if flow || self.layout.json {
            self.splice(node.start, node.end, render::inline(value, None, true, self.layout));
        } else {
            let indent = col(self.text, node.start);
            let text = render::block(value, indent, self.layout);
            self.splice(node.start, node.end, text[indent..].trim_end_matches('\n'));
        }
        Ok(())
    }

    /// Removes the run of entries or items from `start` (a key or an item)
    /// to `end` (the end of the run's last value). `next` is where the
    /// sibling after the run starts, `previous_end` where the one before
    /// it ends.
    fn remove_run(&mut self, flow: bool, start: usize, end: usize, next: Option<usize>, previous_end: Option<usize>) -> Result<(), Unsupported> {
        if flow || self.layout.json {
            match (next, previous_end) {
                (Some(next), _) => self.splice(start, next, ""),
                (None, Some(previous)) => self.splice(previous, end, ""),
                (None, None) => return Err(Unsupported { at: start, why: "nothing would be left".into() }),
            }
            return Ok(());
        }
        if first_on_line(self.text, start) {
            self.splice(line_start(self.text, start), line_end(self.text, end), "");
            return Ok(());
        }
        // The first entry of a sequence item, after its `- `: the next
        // entry moves up beside the dash.
        match next {
            Some(next) if first_on_line(self.text, next) => {
                self.splice(start, next, "");
                Ok(())
            }
            _ => Err(Unsupported { at: start, why: "the field shares its line with another".into() }),
        }
    }

    fn seq(&mut self, node: &Node, flow: bool, items: &[Node], old: &[Value], new: &[Value]) -> Result<(), Unsupported> {
        let Some(plan) = align(old, new) else {
            return self.rewrite(node, flow, &Value::Array(new.to_vec()));
        };
        let dash = |item: &Node| if flow { None } else { dash_before(self.text, item.start) };
        if !flow && items.iter().any(|i| dash(i).is_none()) {
            return Err(Unsupported { at: node.start, why: "a sequence item shares its line".into() });
        }
        // Removals, in runs.
        let mut i = 0;
        while i < items.len() {
            if plan.kept[i].is_some() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < items.len() && plan.kept[j + 1].is_none() {
                j += 1;
            }
            let start = dash(&items[i]).unwrap_or(items[i].start);
            let next = items.get(j + 1).map(|n| dash(n).unwrap_or(n.start));
            let previous = i.checked_sub(1).map(|p| items[p].end);
            self.remove_run(flow, start, items[j].end, next, previous)?;
            i = j + 1;
        }
        // Changes, in place.
        for (index, item) in items.iter().enumerate() {
            if let Some(target) = plan.kept[index] {
                let holder = match dash(item) {
                    Some(d) => Holder::Item(d),
                    None => Holder::Flow,
                };
                self.node(item, holder, &old[index], &new[target])?;
            }
        }
        // Insertions: before an old item, or after the last.
        let layout = self.layout;
        for (before, values) in plan.inserted {
            if flow || layout.json {
                let rendered: Vec<String> = values.iter().map(|v| render::inline(v, None, true, layout)).collect();
                match before {
                    Some(index) => self.splice(items[index].start, items[index].start, format!("{}, ", rendered.join(", "))),
                    None => {
                        let at = items.last().map_or(node.end, |l| l.end);
                        self.splice(at, at, rendered.iter().map(|r| format!(", {r}")).collect::<String>());
                    }
                }
                continue;
            }
            let first_dash = dash(&items[0]).unwrap_or(items[0].start);
            let indent = col(self.text, first_dash);
            let pad = " ".repeat(indent);
            let text: String = values.iter().map(|v| format!("{pad}-{}\n", render::after_dash(v, indent, layout))).collect();
            match before {
                Some(index) => {
                    let at = line_start(self.text, dash(&items[index]).unwrap_or(items[index].start));
                    self.splice(at, at, text);
                }
                None => {
                    let at = line_end(self.text, items.last().map_or(node.end, |l| l.end));
                    let lead = if at == self.text.len() && !self.text.ends_with('\n') { "\n" } else { "" };
                    self.splice(at, at, format!("{lead}{text}"));
                }
            }
        }
        Ok(())
    }
}

/// How the items of an old sequence map onto a new one.
struct Alignment {
    /// For each old item, the new item it becomes (`None`: removed).
    kept: Vec<Option<usize>>,
    /// New items to insert, before an old item or (`None`) at the end.
    inserted: Vec<(Option<usize>, Vec<Value>)>,
}

/// Aligns by Kubernetes' merge keys when every item has one (containers
/// and env by `name`...), else by the common head and tail. `None` when
/// kept items change order.
fn align(old: &[Value], new: &[Value]) -> Option<Alignment> {
    let keys_old: Option<Vec<String>> = old.iter().map(item_key).collect();
    let keys_new: Option<Vec<String>> = new.iter().map(item_key).collect();
    let pairs: Vec<(usize, usize)> = match (keys_old, keys_new) {
        (Some(ko), Some(kn)) => ko.iter().enumerate().filter_map(|(i, k)| kn.iter().position(|n| n == k).map(|j| (i, j))).collect(),
        _ => {
            let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
            let max_tail = old.len().min(new.len()) - head;
            let tail = old.iter().rev().zip(new.iter().rev()).take(max_tail).take_while(|(a, b)| a == b).count();
            let mut pairs: Vec<(usize, usize)> = (0..head).map(|i| (i, i)).collect();
            // The middles pair up by position.
            let middle = (old.len() - tail - head).min(new.len() - tail - head);
            pairs.extend((head..head + middle).map(|i| (i, i)));
            pairs.extend((0..tail).map(|t| (old.len() - tail + t, new.len() - tail + t)));
            pairs
        }
    };
    if pairs.windows(2).any(|w| w[1].1 <= w[0].1) {
        return None;
    }
    let mut kept = vec![None; old.len()];
    for (i, j) in &pairs {
        kept[*i] = Some(*j);
    }
    // Each new item no old item becomes goes before the next kept old
    // item, or at the end.
    let mut inserted: Vec<(Option<usize>, Vec<Value>)> = Vec::new();
    for (j, value) in new.iter().enumerate() {
        if pairs.iter().any(|(_, n)| *n == j) {
            continue;
        }
        let before = pairs.iter().find(|(_, n)| *n > j).map(|(o, _)| *o);
        match inserted.last_mut() {
            Some((b, values)) if *b == before => values.push(value.clone()),
            _ => inserted.push((before, vec![value.clone()])),
        }
    }
    Some(Alignment { kept, inserted })
}
