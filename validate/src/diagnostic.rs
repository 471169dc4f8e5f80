//! One finding, and how it is printed.

use std::fmt;
use std::sync::Arc;

use driftless_manifest::Pos;
use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The API server would reject the object; the revision is refused.
    Error,
    /// The API server would accept the object, but it will not work as
    /// written until something else exists.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A finding, located as precisely as the input allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as the user named it or relative to the repository.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// `KIND/NAME` of the object, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field, in dotted form (`spec.template.spec.containers[0].image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, lower case, no trailing period.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(severity: Severity, file: Arc<str>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic { severity, file, line: pos.line, column: pos.col, object: None, field: None, message: message.into() }
    }
}

/// `FILE:LINE:COL: error: KIND/NAME: FIELD.PATH: message`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: ", self.file, self.line, self.column, self.severity)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_format() {
        let mut d = Diagnostic::new(Severity::Error, Arc::from("apps/web.yaml"), Pos { line: 12, col: 7 }, "must be positive");
        assert_eq!(d.to_string(), "apps/web.yaml:12:7: error: must be positive");
        d.object = Some("Deployment/web".into());
        d.field = Some("spec.replicas".into());
        assert_eq!(d.to_string(), "apps/web.yaml:12:7: error: Deployment/web: spec.replicas: must be positive");
    }
}
