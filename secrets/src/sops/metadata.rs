//! The `sops:` block: reading the fields that decide decryption (age
//! stanzas, `lastmodified`, `mac`, and the rules choosing which values are
//! encrypted), and writing the block SOPS 3.11 writes.
//!
//! Owns the rules' semantics (`shouldBeEncrypted` in SOPS's `sops.go`);
//! knows nothing of files, keys or ciphers.

use regex::Regex;

use super::tree::{Node, Scalar};

/// The SOPS version our files claim, the one whose format we write.
pub(crate) const VERSION: &str = "3.11.0";

/// SOPS's default when no rule is given.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// One age stanza: the recipient and the armored data key.
#[derive(Debug)]
pub(crate) struct AgeStanza {
    pub recipient: String,
    pub enc: String,
}

/// What decryption needs of the `sops:` block.
#[derive(Debug)]
pub(crate) struct Metadata {
    pub age: Vec<AgeStanza>,
    /// Key types we cannot use (pgp, kms, ...), for the error message.
    pub other_keys: Vec<String>,
    pub lastmodified: String,
    pub mac: Option<String>,
    pub rules: Rules,
}

/// Which values SOPS encrypts (and, with `mac_only_encrypted`, MACs).
#[derive(Debug, Default)]
pub(crate) struct Rules {
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<Regex>,
    pub encrypted_regex: Option<Regex>,
    pub unencrypted_comment_regex: Option<Regex>,
    pub encrypted_comment_regex: Option<Regex>,
    pub mac_only_encrypted: bool,
}

impl Rules {
    /// The rules `encrypt_secret` records: only `data` and `stringData`.
    pub(crate) fn secret_data() -> Rules {
        Rules { encrypted_regex: Some(Regex::new(SECRET_DATA_REGEX).expect("a valid regex")), ..Rules::default() }
    }

    /// SOPS's `shouldBeEncrypted`: `path` holds the keys from the root,
    /// `comments` the comments in effect at each level, `is_comment` whether
    /// the leaf is itself a comment (the last of them).
    pub(crate) fn should_encrypt(&self, path: &[&str], comments: &[Vec<&str>], is_comment: bool) -> bool {
        let mut encrypted = true;
        if self.unencrypted_suffix.as_ref().is_some_and(|suffix| path.iter().any(|p| p.ends_with(suffix.as_str()))) {
            encrypted = false;
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|p| p.ends_with(suffix.as_str()));
        }
        if self.unencrypted_regex.as_ref().is_some_and(|regex| path.iter().any(|p| regex.is_match(p))) {
            encrypted = false;
        }
        if let Some(regex) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| regex.is_match(p));
        }
        if self.unencrypted_comment_regex.as_ref().is_some_and(|regex| comments.iter().flatten().any(|c| regex.is_match(c))) {
            encrypted = false;
        }
        if let Some(regex) = &self.encrypted_comment_regex {
            // The marker comment itself stays plaintext: skip the comment
            // being decided, the last of the innermost level.
            let levels = comments.len();
            encrypted = comments
                .iter()
                .enumerate()
                .any(|(i, level)| level.iter().enumerate().any(|(j, c)| !(is_comment && i + 1 == levels && j + 1 == level.len()) && regex.is_match(c)));
        }
        encrypted
    }
}

/// The regex Flux users encrypt Secrets with, recorded by `encrypt_secret`.
pub(crate) const SECRET_DATA_REGEX: &str = "^(data|stringData)$";

/// Why the `sops:` block cannot be used. Never carries secret material.
pub(crate) type MetadataError = String;

impl Metadata {
    /// Reads the value of a top-level `sops:` key.
    pub(crate) fn read(node: &Node) -> Result<Metadata, MetadataError> {
        let Node::Map(map) = node else { return Err("`sops` is not a mapping".to_owned()) };
        let mut metadata = Metadata { age: Vec::new(), other_keys: Vec::new(), lastmodified: String::new(), mac: None, rules: Rules::default() };
        let mut rule_count = 0;
        let mut regex = |value: &Node, name: &str| -> Result<Option<Regex>, MetadataError> {
            let text = scalar(value, name)?;
            if text.is_empty() {
                return Ok(None);
            }
            rule_count += 1;
            Regex::new(&text).map(Some).map_err(|e| format!("`sops.{name}` is not a valid regex: {e}"))
        };
        let mut suffixes = 0;
        for entry in &map.entries {
            let name = entry.key.value.as_str();
            match name {
                "age" => read_age(&entry.value, &mut metadata.age)?,
                "key_groups" => {
                    let Node::Seq(groups) = &entry.value else { return Err("`sops.key_groups` is not a list".to_owned()) };
                    if groups.items.len() > 1 {
                        return Err("the data key is split across several key groups (Shamir), which is not supported".to_owned());
                    }
                    for group in &groups.items {
                        let Node::Map(group) = group else { return Err("a key group is not a mapping".to_owned()) };
                        for key in &group.entries {
                            match key.key.value.as_str() {
                                "age" => read_age(&key.value, &mut metadata.age)?,
                                other => note_other(other, &key.value, &mut metadata.other_keys),
                            }
                        }
                    }
                }
                "pgp" | "kms" | "gcp_kms" | "hckms" | "azure_kv" | "hc_vault" => note_other(name, &entry.value, &mut metadata.other_keys),
                "lastmodified" => metadata.lastmodified = scalar(&entry.value, name)?,
                "mac" => metadata.mac = Some(scalar(&entry.value, name)?).filter(|m| !m.is_empty()),
                "unencrypted_suffix" | "encrypted_suffix" => {
                    let suffix = Some(scalar(&entry.value, name)?).filter(|s| !s.is_empty());
                    suffixes += usize::from(suffix.is_some());
                    if name == "unencrypted_suffix" {
                        metadata.rules.unencrypted_suffix = suffix;
                    } else {
                        metadata.rules.encrypted_suffix = suffix;
                    }
                }
                "unencrypted_regex" => metadata.rules.unencrypted_regex = regex(&entry.value, name)?,
                "encrypted_regex" => metadata.rules.encrypted_regex = regex(&entry.value, name)?,
                "unencrypted_comment_regex" => metadata.rules.unencrypted_comment_regex = regex(&entry.value, name)?,
                "encrypted_comment_regex" => metadata.rules.encrypted_comment_regex = regex(&entry.value, name)?,
                "mac_only_encrypted" => {
                    metadata.rules.mac_only_encrypted = matches!(scalar(&entry.value, name)?.as_str(), "true" | "True" | "TRUE" | "1" | "t" | "T");
                }
                _ => {}
            }
        }
        match rule_count + suffixes {
            0 => metadata.rules.unencrypted_suffix = Some(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()),
            1 => {}
            _ => return Err("`sops` names more than one of the encrypted/unencrypted suffix, regex and comment regex rules".to_owned()),
        }
        if metadata.lastmodified.is_empty() {
            return Err("`sops.lastmodified` is missing".to_owned());
        }
        Ok(metadata)
    }

    /// `lastmodified` as Go's RFC 3339 formatting writes it back, which is
    /// the MAC's additional data: no fractional seconds, `Z` for UTC.
    pub(crate) fn mac_additional_data(&self) -> Result<String, MetadataError> {
        canonical_time(&self.lastmodified).ok_or_else(|| "`sops.lastmodified` is not an RFC 3339 time".to_owned())
    }
}

fn canonical_time(text: &str) -> Option<String> {
    text.parse::<jiff::Timestamp>().ok()?;
    let (seconds, rest) = (text.get(..19)?, text.get(19..)?);
    let offset = match rest.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let offset = match offset {
        "z" | "+00:00" | "-00:00" => "Z",
        other => other,
    };
    Some(format!("{}T{}{offset}", &seconds[..10], &seconds[11..]))
}

fn scalar(node: &Node, name: &str) -> Result<String, MetadataError> {
    match node {
        Node::Scalar(Scalar { value, .. }) => Ok(value.clone()),
        _ => Err(format!("`sops.{name}` is not a scalar")),
    }
}

fn read_age(node: &Node, out: &mut Vec<AgeStanza>) -> Result<(), MetadataError> {
    let Node::Seq(list) = node else { return Err("`sops.age` is not a list".to_owned()) };
    for item in &list.items {
        let Node::Map(stanza) = item else { return Err("an entry of `sops.age` is not a mapping".to_owned()) };
        let field = |name: &str| stanza.entries.iter().find(|e| e.key.value == name).map(|e| scalar(&e.value, name)).transpose();
        let (Some(recipient), Some(enc)) = (field("recipient")?, field("enc")?) else {
            return Err("an entry of `sops.age` lacks `recipient` or `enc`".to_owned());
        };
        out.push(AgeStanza { recipient, enc });
    }
    Ok(())
}

fn note_other(kind: &str, node: &Node, out: &mut Vec<String>) {
    let count = match node {
        Node::Seq(s) => s.items.len(),
        _ => 0,
    };
    if count > 0 {
        out.push(format!("{count} {kind} key(s)"));
    }
}

/// The `sops:` block SOPS 3.11 writes for age recipients, with 4-space
/// indentation and SOPS's key order; `newline` is the file's line ending.
pub(crate) fn render(age: &[AgeStanza], lastmodified: &str, mac: &str, newline: &str) -> String {
    let mut lines: Vec<String> = vec!["sops:".into(), "    age:".into()];
    for stanza in age {
        lines.push(format!("        - recipient: {}", stanza.recipient));
        lines.push("          enc: |".into());
        lines.extend(stanza.enc.lines().map(|l| format!("            {l}")));
    }
    lines.push(format!("    lastmodified: \"{lastmodified}\""));
    lines.push(format!("    mac: {mac}"));
    lines.push(format!("    encrypted_regex: {SECRET_DATA_REGEX}"));
    lines.push(format!("    version: {VERSION}"));
    let mut out = lines.join(newline);
    out.push_str(newline);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_like_go() {
        assert_eq!(canonical_time("2026-12-04T11:30:18Z").unwrap(), "2026-12-04T11:30:18Z");
        assert_eq!(canonical_time("2026-12-04T11:30:18.123456Z").unwrap(), "2026-12-04T11:30:18Z");
        assert_eq!(canonical_time("2026-12-04T12:30:18+01:00").unwrap(), "2026-12-04T12:30:18+01:00");
        assert_eq!(canonical_time("2026-12-04T11:30:18+00:00").unwrap(), "2026-12-04T11:30:18Z");
        assert!(canonical_time("yesterday").is_none());
    }

    #[test]
    fn rules_follow_sops() {
        let rules = Rules::secret_data();
        assert!(rules.should_encrypt(&["stringData", "password"], &[], false));
        assert!(!rules.should_encrypt(&["metadata", "name"], &[], false));
        let default = Rules { unencrypted_suffix: Some("_unencrypted".into()), ..Rules::default() };
        assert!(default.should_encrypt(&["a"], &[], false));
        assert!(!default.should_encrypt(&["a_unencrypted", "b"], &[], false));
        let marked = Rules { encrypted_comment_regex: Some(Regex::new("sops:enc").unwrap()), ..Rules::default() };
        assert!(marked.should_encrypt(&["a"], &[vec![" sops:enc"]], false));
        assert!(!marked.should_encrypt(&[], &[vec![" sops:enc"]], true));
        assert!(!marked.should_encrypt(&["b"], &[vec![]], false));
    }
}
