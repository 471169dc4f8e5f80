//! Encrypting a plaintext Secret manifest in SOPS's format, as
//! `sops --encrypt --age R --encrypted-regex '^(data|stringData)$'` would:
//! `data` and `stringData` values (and comments under them) encrypted,
//! everything MACed, one age stanza per recipient, and the `sops:` block
//! appended to each document. The user's layout is kept: values are
//! replaced in place instead of re-emitting the whole file, so a diff of an
//! encrypted Secret shows only what changed. Real `sops` reads the result.

use crate::decrypt::additional_data;
use crate::error::SecretsError;
use crate::keyring::{parse_recipient, wrap_data_key};
use crate::sops::cipher::{self, DataKey};
use crate::sops::mac::Mac;
use crate::sops::metadata::{self, AgeStanza, Rules};
use crate::sops::tree::{self, Lines, Node, line_end};
use crate::sops::value;
use crate::sops::walk::{self, Leaf};

/// Encrypts the Secret manifest `bytes` (block-style YAML, one or more
/// documents, each a `kind: Secret`) for the age `recipients`.
pub fn encrypt_secret(bytes: &[u8], recipients: &[String]) -> Result<Vec<u8>, SecretsError> {
    if recipients.is_empty() {
        return Err(SecretsError::NoRecipients);
    }
    let recipients = recipients.iter().map(|r| parse_recipient(r).map(|parsed| (r.trim().to_owned(), parsed))).collect::<Result<Vec<_>, _>>()?;
    let text = std::str::from_utf8(bytes).map_err(|_| SecretsError::Manifest { line: 1, col: 1, message: "the file is not UTF-8".to_owned() })?;
    let lines = Lines::new(text);
    let at = |offset: usize, message: &str| {
        let (line, col) = lines.position(offset);
        SecretsError::Manifest { line, col, message: message.to_owned() }
    };
    let documents = tree::parse(text).map_err(|e| SecretsError::Manifest { line: e.line, col: e.col, message: format!("not valid YAML: {}", e.message) })?;
    if documents.iter().any(|d| d.top_level("sops").is_some()) {
        return Err(SecretsError::AlreadyEncrypted);
    }
    let mut ends = Vec::new();
    for document in &documents {
        match &document.root {
            None => {}
            Some(Node::Map(map)) if !map.flow => {
                let kind = document.top_level("kind");
                match kind.map(|k| &k.value) {
                    Some(Node::Scalar(s)) if s.value == "Secret" => ends.push(map.end),
                    Some(other) => return Err(at(other.start(), "not a Secret: only `kind: Secret` manifests are encrypted")),
                    None => return Err(at(document.root.as_ref().map_or(0, Node::start), "not a Secret: the manifest has no `kind`")),
                }
            }
            Some(Node::Map(map)) => return Err(at(map.end.saturating_sub(1), "flow-style (JSON) manifests are not supported; write the Secret as block YAML")),
            Some(other) => return Err(at(other.start(), "not a Secret: the document is not a mapping")),
        }
    }
    if ends.is_empty() {
        return Err(SecretsError::Manifest { line: 1, col: 1, message: "the file holds no manifest".to_owned() });
    }

    let rules = Rules::secret_data();
    let key = DataKey::generate();
    let mut mac = Mac::new(rules.mac_only_encrypted);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for document in &documents {
        walk::walk(text, document, &mut |leaf, path, comments| {
            match leaf {
                Leaf::Alias(offset) => return Err(at(offset, "YAML aliases are not supported in SOPS files")),
                Leaf::Comment(comment) => {
                    let value = &text[comment.start + 1..comment.end];
                    if !value.is_empty() && rules.should_encrypt(path, comments, true) {
                        edits.push((comment.start + 1, comment.end, cipher::encrypt(&key, value.as_bytes(), "comment", &additional_data(path))));
                    }
                }
                Leaf::Scalar(scalar) => {
                    let typed = value::of_scalar(scalar).map_err(|m| at(scalar.start, &m))?;
                    let Some(plain) = typed.bytes() else { return Ok(()) };
                    let encrypted = rules.should_encrypt(path, comments, false);
                    mac.add(&plain, encrypted);
                    // SOPS leaves empty strings unencrypted.
                    if encrypted && !plain.is_empty() {
                        let enc = cipher::encrypt(&key, &plain, typed.kind(), &additional_data(path));
                        // In a flow collection a plain scalar cannot hold `[`, `,` or `]`.
                        edits.push((scalar.start, scalar.end, if scalar.flow { format!("\"{enc}\"") } else { enc }));
                    }
                }
            }
            Ok(())
        })?
        .map_err(|walk::NotAMapping(offset)| at(offset, "not a Secret: the document is not a mapping"))?;
    }

    let lastmodified = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mac = cipher::encrypt(&key, mac.finish().as_bytes(), "str", &lastmodified);
    let age = recipients
        .iter()
        .map(|(text, parsed)| Ok(AgeStanza { recipient: text.clone(), enc: wrap_data_key(parsed, &key)? }))
        .collect::<Result<Vec<_>, SecretsError>>()?;
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let block = metadata::render(&age, &lastmodified, &mac, newline);
    for end in ends {
        let insert = line_end(text, end);
        let separator = if insert == text.len() && !text.is_empty() && !text.ends_with('\n') { newline } else { "" };
        edits.push((insert, insert, format!("{separator}{block}")));
    }

    edits.sort_by_key(|(start, end, _)| (*start, *end));
    let mut out = String::with_capacity(text.len() + 1024);
    let mut position = 0;
    for (start, end, replacement) in edits {
        out.push_str(&text[position..start]);
        out.push_str(&replacement);
        position = end;
    }
    out.push_str(&text[position..]);
    Ok(out.into_bytes())
}
