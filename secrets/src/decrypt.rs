//! Decrypting a SOPS file's TEXT: each `ENC[...]` value is replaced in
//! place by its plaintext as one line of YAML, encrypted comments by their
//! text, and each document's top-level `sops:` block by empty lines, so
//! every line keeps its number and the manifest loader's positions stay
//! true. The MAC is checked over the whole file, in SOPS's walk order.
//!
//! Returns the plaintext in memory only; never logs or writes it.

use std::collections::BTreeSet;

use crate::error::DecryptError;
use crate::keyring::{Keyring, Unwrap};
use crate::sops::cipher::{self, CipherError, DataKey};
use crate::sops::mac::Mac;
use crate::sops::metadata::Metadata;
use crate::sops::tree::{self, Comment, Document, Entry, Lines, Node};
use crate::sops::value::{self, Value};
use crate::sops::walk::{self, Leaf};

/// Whether `bytes` is a SOPS file: some document has a top-level `sops`
/// mapping with a `mac`.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    if !text.contains("sops") || !text.contains("mac") {
        return false;
    }
    let Ok(documents) = tree::parse(text) else { return false };
    documents.iter().any(|d| matches!(d.top_level("sops"), Some(Entry { value: Node::Map(m), .. }) if m.entries.iter().any(|e| e.key.value == "mac")))
}

/// Decrypts a SOPS-encrypted YAML or JSON file with the identities of
/// `keyring`, returning text with the same lines (see the module docs).
pub fn decrypt(bytes: &[u8], keyring: &Keyring) -> Result<Vec<u8>, DecryptError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let col = valid.len() - valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        DecryptError { line, col, message: "the file is not UTF-8".to_owned() }
    })?;
    let lines = Lines::new(text);
    let at = |offset: usize, message: String| {
        let (line, col) = lines.position(offset);
        DecryptError { line, col, message }
    };
    let documents = tree::parse(text).map_err(|e| DecryptError { line: e.line, col: e.col, message: format!("not valid YAML: {}", e.message) })?;
    // SOPS reads the metadata of the first document; the others carry copies.
    let Some(sops) = documents.first().and_then(|d| d.top_level("sops")) else {
        return Err(match documents.iter().find_map(|d| d.top_level("sops")) {
            Some(later) => at(later.key.start, "the first document has no `sops` metadata, which SOPS reads from it".to_owned()),
            None => DecryptError { line: 1, col: 1, message: "no `sops` metadata: the file is not encrypted with SOPS".to_owned() },
        });
    };
    let sops_at = sops.key.start;
    let metadata = Metadata::read(&sops.value).map_err(|m| at(sops_at, m))?;
    let key = data_key(&metadata, keyring).map_err(|m| at(sops_at, m))?;

    let mut mac = Mac::new(metadata.rules.mac_only_encrypted);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut comments: Vec<(Comment, String)> = Vec::new();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for document in &documents {
        let walked = walk::walk(text, document, &mut |leaf, path, stack| {
            let joined = additional_data(path);
            match leaf {
                Leaf::Alias(offset) => return Err(at(offset, "YAML aliases are not supported in SOPS files".to_owned())),
                Leaf::Comment(comment) => comments.push((comment, joined.clone())),
                Leaf::Scalar(scalar) => {
                    let typed = value::of_scalar(scalar).map_err(|m| at(scalar.start, m))?;
                    if typed == Value::Null {
                        // SOPS skips nulls: neither decrypted nor MACed.
                        return Ok(());
                    }
                    if !metadata.rules.should_encrypt(path, stack, false) {
                        mac.add(&typed.bytes().unwrap_or_default(), false);
                        return Ok(());
                    }
                    let Value::Str(encrypted) = typed else {
                        return Err(at(scalar.start, format!("expected an encrypted value here, found a plaintext {}", typed.kind())));
                    };
                    if encrypted.is_empty() {
                        // SOPS leaves empty strings as they are.
                        return Ok(());
                    }
                    let plain = decrypt_value(&key, &encrypted, &joined).map_err(|m| at(scalar.start, m))?;
                    mac.add(&plain.bytes().unwrap_or_default(), true);
                    edits.push((scalar.start, scalar.end, plain.to_yaml()));
                }
            }
            paths.insert(joined);
            Ok(())
        })?;
        if let Err(walk::NotAMapping(offset)) = walked {
            return Err(at(offset, "SOPS supports only documents that are mappings".to_owned()));
        }
    }

    let Some(stored) = &metadata.mac else {
        return Err(at(sops_at, "`sops.mac` is missing, so the file's integrity cannot be checked".to_owned()));
    };
    let additional = metadata.mac_additional_data().map_err(|m| at(sops_at, m))?;
    let stored = match cipher::decrypt(&key, stored, &additional) {
        Ok((_, plain)) => plain,
        Err(_) => return Err(at(sops_at, "`sops.mac` does not decrypt: the MAC or `lastmodified` was altered".to_owned())),
    };
    if stored.as_slice() != mac.finish().as_bytes() {
        return Err(at(sops_at, "MAC mismatch: the file was altered after it was encrypted".to_owned()));
    }

    for (comment, path) in comments {
        if let Some(plain) = decrypt_comment(text, comment, &key, &path, &paths) {
            edits.push((comment.start + 1, comment.end, plain));
        }
    }
    for document in &documents {
        if let Some((start, end)) = sops_range(text, document) {
            // Keep only the line breaks: the lines stay, empty.
            let block = &text[start..end];
            let newline = if block.contains("\r\n") { "\r\n" } else { "\n" };
            let breaks = newline.repeat(block.matches('\n').count());
            edits.push((start, end, breaks));
        }
    }
    Ok(apply(text, edits).into_bytes())
}

/// The additional data SOPS binds a value to: its keys, each followed by `:`.
pub(crate) fn additional_data(path: &[&str]) -> String {
    let mut joined = path.join(":");
    joined.push(':');
    joined
}

/// Unwraps the data key with the first age stanza the keyring opens.
fn data_key(metadata: &Metadata, keyring: &Keyring) -> Result<DataKey, String> {
    if metadata.age.is_empty() {
        let others = if metadata.other_keys.is_empty() { "no key at all".to_owned() } else { metadata.other_keys.join(", ") };
        return Err(format!("the file has no age recipient (it is encrypted with {others}), so no age identity can decrypt it"));
    }
    let mut malformed = Vec::new();
    for stanza in &metadata.age {
        match keyring.unwrap_data_key(&stanza.enc) {
            Ok(key) => return Ok(key),
            Err(Unwrap::Malformed) => malformed.push(stanza.recipient.as_str()),
            Err(Unwrap::NoMatch) => {}
        }
    }
    let recipients: Vec<&str> = metadata.age.iter().map(|s| s.recipient.as_str()).collect();
    let mut message = format!(
        "no age identity in the keyring ({} identit{}) decrypts this file; it is encrypted for {}",
        keyring.recipients().len(),
        if keyring.recipients().len() == 1 { "y" } else { "ies" },
        recipients.join(", ")
    );
    if !malformed.is_empty() {
        message.push_str(&format!(" (the stanza for {} is damaged)", malformed.join(", ")));
    }
    Err(message)
}

fn decrypt_value(key: &DataKey, encrypted: &str, path: &str) -> Result<Value, String> {
    let (kind, plain) = cipher::decrypt(key, encrypted, path).map_err(|e| match e {
        CipherError::Malformed(why) => format!("this value should be encrypted, but {why}"),
        CipherError::Authentication => "this value does not decrypt: it was altered, or moved from another key".to_owned(),
    })?;
    if kind == "comment" {
        return Err("a value encrypted as a comment".to_owned());
    }
    Value::from_decrypted(&kind, plain.to_vec())
}

/// An encrypted comment's text, tried under the path SOPS would have used
/// and then every other path of the file (comments are not MACed, and the
/// tag proves the right one). `None` leaves it as is, as SOPS does.
fn decrypt_comment(text: &str, comment: Comment, key: &DataKey, path: &str, paths: &BTreeSet<String>) -> Option<String> {
    let value = &text[comment.start + 1..comment.end];
    if !cipher::is_encrypted(value) {
        return None;
    }
    let candidates = std::iter::once(path).chain(paths.iter().map(String::as_str).filter(|p| *p != path));
    for candidate in candidates {
        if let Some((_, plain)) = cipher::decrypt(key, value, candidate).ok().filter(|(kind, _)| kind == "comment") {
            let plain = String::from_utf8_lossy(&plain).replace(['\n', '\r'], " ");
            return Some(plain);
        }
    }
    let (line, _) = Lines::new(text).position(comment.start);
    tracing::warn!(line, "an encrypted comment does not decrypt; left as it is");
    None
}

/// The bytes of a document's top-level `sops` entry, with the comma that
/// separates it in a flow (JSON) mapping.
fn sops_range(text: &str, document: &Document) -> Option<(usize, usize)> {
    let Some(Node::Map(root)) = &document.root else { return None };
    let entry = root.entries.iter().find(|e| e.key.value == "sops")?;
    let (mut start, mut end) = (entry.key.start, entry.value.end());
    if root.flow {
        let before = text[..start].trim_end();
        if before.ends_with(',') {
            start = before.len() - 1;
        } else {
            let after = &text[end..];
            let rest = after.trim_start();
            if rest.starts_with(',') {
                end += after.len() - rest.len() + 1;
            }
        }
    }
    Some((start, end))
}

/// Applies non-overlapping replacements.
fn apply(text: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by_key(|(start, end, _)| (*start, *end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, replacement) in edits {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}
