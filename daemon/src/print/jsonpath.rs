//! kubectl's JSONPath templates (`-o jsonpath=...`, `custom-columns`,
//! `--sort-by`): text with `{...}` actions (an expression, a string literal,
//! or `range ... end`), the expressions read by `serde_json_path` (RFC 9535,
//! whose filters kubectl's `[?(@.x=="y")]` already are) after kubectl's
//! relative forms (`.items[*]`, `@.name`) are rooted.
//!
//! Owns the template language and how results print (strings bare, other
//! values as JSON, several results joined by a space); the columns and
//! tables stay with `columns.rs` and `table.rs`.

use serde_json::Value;
use serde_json_path::JsonPath;

/// The deepest `range` nesting a template may have.
const MAX_DEPTH: usize = 16;

/// One piece of a template.
#[derive(Debug)]
enum Node {
    /// Text printed as it is.
    Text(String),
    /// An expression's results.
    Query(JsonPath),
    /// The body, once for each result of the expression.
    Range(JsonPath, Vec<Node>),
}

/// A parsed template.
#[derive(Debug)]
pub struct Template(Vec<Node>);

/// Reads an expression as kubectl writes it (`.a.b`, `@.a`, `$.a`, `a.b`).
pub fn expression(text: &str) -> Result<JsonPath, String> {
    let text = text.trim();
    let rooted = if let Some(rest) = text.strip_prefix('@') {
        format!("${rest}")
    } else if text.starts_with('$') {
        text.to_owned()
    } else if text.starts_with('.') || text.starts_with('[') {
        format!("${text}")
    } else {
        format!("$.{text}")
    };
    JsonPath::parse(&rooted).map_err(|e| format!("error parsing jsonpath {text:?}: {e}"))
}

impl Template {
    /// Parses `text`; without any `{`, the whole text is one expression (as
    /// `--sort-by` and custom columns are written).
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.contains('{') {
            return Ok(Template(vec![Node::Query(expression(text)?)]));
        }
        let mut chars = text.chars().peekable();
        let mut stack: Vec<(Option<JsonPath>, Vec<Node>)> = vec![(None, Vec::new())];
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            if c != '{' {
                literal.push(c);
                continue;
            }
            if !literal.is_empty() {
                stack.last_mut().ok_or("unbalanced template")?.1.push(Node::Text(std::mem::take(&mut literal)));
            }
            // The action, up to its closing brace outside quotes.
            let mut action = String::new();
            let mut quote: Option<char> = None;
            let mut closed = false;
            while let Some(c) = chars.next() {
                match (c, quote) {
                    ('\\', Some(_)) => {
                        action.push(c);
                        if let Some(next) = chars.next() {
                            action.push(next);
                        }
                        continue;
                    }
                    ('"' | '\'', None) => quote = Some(c),
                    (q, Some(open)) if q == open => quote = None,
                    ('}', None) => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
                action.push(c);
            }
            if !closed {
                return Err(format!("unclosed action in template {text:?}"));
            }
            let action = action.trim();
            let nodes = &mut stack.last_mut().ok_or("unbalanced template")?.1;
            if let Some(rest) = action.strip_prefix("range ") {
                if stack.len() > MAX_DEPTH {
                    return Err("template nests range too deeply".into());
                }
                stack.push((Some(expression(rest)?), Vec::new()));
            } else if action == "end" {
                let (Some(path), body) = stack.pop().ok_or("unbalanced template")? else {
                    return Err(format!("not in range, nothing to end in template {text:?}"));
                };
                stack.last_mut().ok_or("unbalanced template")?.1.push(Node::Range(path, body));
            } else if let Some(string) = string_literal(action) {
                nodes.push(Node::Text(string));
            } else {
                nodes.push(Node::Query(expression(action)?));
            }
        }
        if !literal.is_empty() {
            stack.last_mut().ok_or("unbalanced template")?.1.push(Node::Text(literal));
        }
        match (stack.pop(), stack.is_empty()) {
            (Some((None, nodes)), true) => Ok(Template(nodes)),
            _ => Err(format!("unclosed range in template {text:?}")),
        }
    }

    /// The template applied to `value`.
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render(&self.0, value, &mut out);
        out
    }

    /// The results of a one-expression template (for columns and sorting).
    pub fn values<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        match self.0.as_slice() {
            [Node::Query(path)] => path.query(value).all(),
            _ => Vec::new(),
        }
    }
}

fn render(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Query(path) => out.push_str(&join(&path.query(value).all())),
            Node::Range(path, body) => {
                for item in path.query(value).all() {
                    render(body, item, out);
                }
            }
        }
    }
}

/// Results as kubectl prints them: strings bare, others as JSON, by spaces.
pub fn join(values: &[&Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `"\n"` or `'x'` as the text it stands for.
fn string_literal(action: &str) -> Option<String> {
    let quote = action.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = action.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pods() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
             "spec": {"containers": [{"image": "busybox:1.35"}, {"image": "nginx:1"}]}},
            {"metadata": {"name": "b"}, "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]},
             "spec": {"containers": [{"image": "busybox:1.35"}]}}
        ]})
    }

    fn run(template: &str) -> String {
        Template::parse(template).unwrap().render(&pods())
    }

    #[test]
    fn the_kubectl_cheat_sheets_templates() {
        assert_eq!(run("{.items[*].metadata.name}"), "a b");
        assert_eq!(run("{range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}"), "a\tRunning\nb\tPending\n");
        assert_eq!(run("{.items[?(@.status.phase==\"Running\")].metadata.name}"), "a");
        assert_eq!(run("{range .items[*]}{@.metadata.name}:{range @.status.conditions[*]}{@.type}={@.status};{end}{end}"), "a:Ready=True;b:Ready=False;");
        assert_eq!(run("names: {.items[0].metadata.name}"), "names: a");
        assert_eq!(run("{.items[0].spec.containers[*].image}"), "busybox:1.35 nginx:1");
        assert_eq!(run("{.items[0].status.conditions[0]}"), "{\"status\":\"True\",\"type\":\"Ready\"}");
        assert_eq!(Template::parse(".metadata.name").unwrap().values(&json!({"metadata": {"name": "x"}})), [&json!("x")]);
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(Template::parse("{.items[*]").unwrap_err().contains("unclosed action"));
        assert!(Template::parse("{range .items[*]}{.x}").unwrap_err().contains("unclosed range"));
        assert!(Template::parse("{end}").unwrap_err().contains("nothing to end"));
        assert!(Template::parse("{.items[?(@.x==]}").unwrap_err().contains("error parsing jsonpath"));
    }
}
