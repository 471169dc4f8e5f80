//! What a rule reports about one object, before it is located in a file.

use crate::Severity;

/// A JSON pointer under construction: `Ptr::root().key("spec").idx(0)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ptr(String);

impl Ptr {
    /// The object itself.
    pub fn root() -> Ptr {
        Ptr(String::new())
    }

    /// A field of this object.
    pub fn key(&self, key: &str) -> Ptr {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        Ptr(format!("{}/{escaped}", self.0))
    }

    /// An item of this list.
    pub fn idx(&self, index: usize) -> Ptr {
        Ptr(format!("{}/{index}", self.0))
    }

    /// A pointer given as text (already escaped), appended to this one.
    pub fn key_pointer(&self, pointer: &str) -> Ptr {
        Ptr(format!("{}{pointer}", self.0))
    }

    /// The pointer text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One finding about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the object.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// The findings of the rules run over one object.
#[derive(Clone, Debug, Default)]
pub struct Issues {
    list: Vec<Issue>,
}

impl Issues {
    /// Records an error.
    pub fn error(&mut self, at: &Ptr, message: impl Into<String>) {
        self.list.push(Issue { severity: Severity::Error, pointer: at.0.clone(), message: message.into() });
    }

    /// Records a warning.
    pub fn warn(&mut self, at: &Ptr, message: impl Into<String>) {
        self.list.push(Issue { severity: Severity::Warning, pointer: at.0.clone(), message: message.into() });
    }

    /// Records an error when `check` returns one.
    pub fn check(&mut self, at: &Ptr, check: Result<(), String>) {
        if let Err(message) = check {
            self.error(at, message);
        }
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|i| i.severity == Severity::Error)
    }

    /// The findings, in the order recorded.
    pub fn into_vec(self) -> Vec<Issue> {
        self.list
    }
}
