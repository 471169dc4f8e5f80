//! `$(VAR)` references in `command`, `args` and `env` values, expanded as
//! Kubernetes does: a reference to a variable defined earlier is replaced
//! by its value, `$$` is a literal `$` (so `$$(VAR)` stays `$(VAR)`), and a
//! reference to an unknown variable is left as written.

use std::collections::HashMap;

/// Expands `$(NAME)` in `input` with `vars`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match vars.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_kubernetes() {
        let vars: HashMap<String, String> = [("HOST".to_owned(), "db".to_owned()), ("PORT".to_owned(), "5432".to_owned())].into();
        assert_eq!(expand("$(HOST):$(PORT)", &vars), "db:5432");
        assert_eq!(expand("$$(HOST)", &vars), "$(HOST)");
        assert_eq!(expand("$(MISSING) and $(HOST)", &vars), "$(MISSING) and db");
        assert_eq!(expand("cost: 5$ or $5", &vars), "cost: 5$ or $5");
        assert_eq!(expand("$(unclosed", &vars), "$(unclosed");
        assert_eq!(expand("$$$(HOST)", &vars), "$db");
    }
}
