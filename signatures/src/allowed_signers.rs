//! Git's `allowed_signers` format (`man ssh-keygen`, section ALLOWED
//! SIGNERS): one line per key, `principals [options] keytype base64 [comment]`.
//! Owns parsing a line and the option semantics (namespaces, validity
//! window); it does not read files or verify signatures.

use ssh_key::PublicKey;

/// One SSH key allowed to sign, with the restrictions of its line.
#[derive(Debug, Clone)]
pub(crate) struct SshSigner {
    /// The principals field as written (`a@example.com,b@example.com`).
    pub(crate) principals: String,
    pub(crate) key: PublicKey,
    /// `cert-authority`: the key signs certificates, never commits itself.
    pub(crate) cert_authority: bool,
    /// `namespaces="..."`: a pattern-list the signature's namespace must match.
    pub(crate) namespaces: Option<String>,
    /// `valid-after`, in seconds since the epoch.
    pub(crate) valid_after: Option<i64>,
    /// `valid-before`, in seconds since the epoch.
    pub(crate) valid_before: Option<i64>,
}

impl SshSigner {
    /// A key from a lone `.pub` file: no restrictions, and the principal is
    /// the key's comment (or the file's name, when the comment is empty).
    pub(crate) fn from_pub(key: PublicKey, fallback_principal: &str) -> Self {
        let principals = if key.comment().is_empty() { fallback_principal.to_owned() } else { key.comment().to_owned() };
        SshSigner { principals, key, cert_authority: false, namespaces: None, valid_after: None, valid_before: None }
    }

    /// Why this line does not allow `namespace` at `time` (seconds since the
    /// epoch), or `None` when it does.
    pub(crate) fn restriction(&self, namespace: &str, time: i64) -> Option<String> {
        if let Some(namespaces) = &self.namespaces
            && !match_pattern_list(namespace, namespaces)
        {
            return Some(format!("the key is allowed only for namespaces \"{namespaces}\", not \"{namespace}\""));
        }
        if let Some(after) = self.valid_after
            && time < after
        {
            return Some(format!("the key is valid only after {}, and the commit is dated {}", show_time(after), show_time(time)));
        }
        if let Some(before) = self.valid_before
            && time > before
        {
            return Some(format!("the key is valid only before {}, and the commit is dated {}", show_time(before), show_time(time)));
        }
        None
    }
}

fn show_time(seconds: i64) -> String {
    match jiff::Timestamp::from_second(seconds) {
        Ok(t) => t.to_string(),
        Err(_) => seconds.to_string(),
    }
}

/// Parses one line. `Ok(None)` for blank lines and comments.
pub(crate) fn parse_line(line: &str) -> Result<Option<SshSigner>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = split_field(line)?;
    if principals.is_empty() {
        return Err("empty principals".to_owned());
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err("missing key after the principals".to_owned());
    }
    let first = rest.split_whitespace().next().unwrap_or_default();
    // Key types never hold '=', and cert-authority is the one option without
    // a value, so this tells options from the key type as ssh-keygen does.
    let (options, key_text) = if first.contains('=') || first.eq_ignore_ascii_case("cert-authority") {
        let (options, key_text) = split_field(rest)?;
        (Some(options), key_text.trim_start())
    } else {
        (None, rest)
    };
    if key_text.is_empty() {
        return Err("missing key after the options".to_owned());
    }
    let key = PublicKey::from_openssh(key_text).map_err(|e| format!("bad public key: {e}"))?;
    let mut signer = SshSigner { principals, key, cert_authority: false, namespaces: None, valid_after: None, valid_before: None };
    if let Some(options) = options {
        for option in split_options(&options) {
            apply_option(&mut signer, &option)?;
        }
    }
    Ok(Some(signer))
}

/// Splits off the first whitespace-delimited field; double quotes protect
/// whitespace and are removed (principals and option values may be quoted).
fn split_field(text: &str) -> Result<(String, &str), String> {
    let mut field = String::new();
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((field, &text[i..])),
            c => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".to_owned());
    }
    Ok((field, ""))
}

/// The comma-separated options, quotes already removed by `split_field`.
/// Quotes let a value hold commas; we re-split on commas that start a new
/// `name=` or name, which is what every option ssh-keygen knows looks like.
fn split_options(options: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in options.split(',') {
        let starts_option = part.eq_ignore_ascii_case("cert-authority") || part.split_once('=').is_some_and(|(name, _)| is_option_name(name));
        match out.last_mut() {
            Some(last) if !starts_option => {
                last.push(',');
                last.push_str(part);
            }
            _ => out.push(part.to_owned()),
        }
    }
    out
}

fn is_option_name(name: &str) -> bool {
    ["namespaces", "valid-after", "valid-before"].iter().any(|known| name.eq_ignore_ascii_case(known))
}

fn apply_option(signer: &mut SshSigner, option: &str) -> Result<(), String> {
    if option.eq_ignore_ascii_case("cert-authority") {
        signer.cert_authority = true;
        return Ok(());
    }
    let Some((name, value)) = option.split_once('=') else {
        return Err(format!("unknown option \"{option}\""));
    };
    match name.to_ascii_lowercase().as_str() {
        "namespaces" => signer.namespaces = Some(value.to_owned()),
        "valid-after" => signer.valid_after = Some(parse_time(value)?),
        "valid-before" => signer.valid_before = Some(parse_time(value)?),
        _ => return Err(format!("unknown option \"{name}\"")),
    }
    Ok(())
}

/// `YYYYMMDD[HHMM[SS]][Z]`: UTC with the `Z`, the system's time zone without
/// it, as ssh-keygen reads them.
pub(crate) fn parse_time(value: &str) -> Result<i64, String> {
    let bad = || format!("bad time \"{value}\": expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z");
    let (digits, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(digits) => (digits, true),
        None => (value, false),
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits.get(range).and_then(|s| s.parse::<i16>().ok()).unwrap_or(0);
    let year = num(0..4);
    let narrow = |v: i16| i8::try_from(v).map_err(|_| bad());
    let datetime = jiff::civil::DateTime::new(year, narrow(num(4..6))?, narrow(num(6..8))?, narrow(num(8..10))?, narrow(num(10..12))?, narrow(num(12..14))?, 0)
        .map_err(|_| bad())?;
    let zone = if utc { jiff::tz::TimeZone::UTC } else { jiff::tz::TimeZone::system() };
    let zoned = datetime.to_zoned(zone).map_err(|_| bad())?;
    Ok(zoned.timestamp().as_second())
}

/// ssh_config's PATTERNS: a comma-separated list of `*`/`?` globs, where a
/// match of a `!`-negated pattern rejects the name outright.
pub(crate) fn match_pattern_list(name: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(name.as_bytes(), negated.as_bytes()) {
                return false;
            }
        } else if glob(name.as_bytes(), pattern.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn glob(name: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(&name[skip..], rest)),
        Some((b'?', rest)) => !name.is_empty() && glob(&name[1..], rest),
        Some((c, rest)) => name.first() == Some(c) && glob(&name[1..], rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti foo@bar.com";

    #[test]
    fn plain_line() {
        let signer = parse_line(&format!("a@example.com {KEY}")).unwrap().unwrap();
        assert_eq!(signer.principals, "a@example.com");
        assert!(signer.namespaces.is_none() && !signer.cert_authority);
        assert_eq!(signer.restriction("git", 0), None);
    }

    #[test]
    fn comments_and_blanks_are_skipped() {
        assert!(parse_line("   ").unwrap().is_none());
        assert!(parse_line("# a@example.com ssh-ed25519 AAAA").unwrap().is_none());
    }

    #[test]
    fn options_with_quotes() {
        let line = format!("\"a@example.com,b@example.com\" namespaces=\"git,file\",valid-after=\"20200101Z\",valid-before=\"20300101000000Z\" {KEY}");
        let signer = parse_line(&line).unwrap().unwrap();
        assert_eq!(signer.principals, "a@example.com,b@example.com");
        assert_eq!(signer.namespaces.as_deref(), Some("git,file"));
        assert_eq!(signer.valid_after, Some(1_577_836_800));
        assert_eq!(signer.valid_before, Some(1_893_456_000));
        assert_eq!(signer.restriction("git", 1_700_000_000), None);
        assert!(signer.restriction("git", 1_500_000_000).unwrap().contains("valid only after"));
        assert!(signer.restriction("git", 1_900_000_000).unwrap().contains("valid only before"));
        assert!(signer.restriction("mail", 1_700_000_000).unwrap().contains("namespaces"));
    }

    #[test]
    fn cert_authority_is_recorded() {
        let signer = parse_line(&format!("*@example.com cert-authority {KEY}")).unwrap().unwrap();
        assert!(signer.cert_authority);
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("a@example.com").unwrap_err().contains("missing key"));
        assert!(parse_line(&format!("a@example.com bogus=1 {KEY}")).unwrap_err().contains("unknown option"));
        assert!(parse_line(&format!("a@example.com valid-before=\"2020\" {KEY}")).unwrap_err().contains("bad time"));
        assert!(parse_line("a@example.com ssh-ed25519 AAAAnotbase64!").unwrap_err().contains("bad public key"));
        assert!(parse_line(&format!("\"a@example.com {KEY}")).unwrap_err().contains("unterminated"));
    }

    #[test]
    fn pattern_lists() {
        assert!(match_pattern_list("git", "git"));
        assert!(match_pattern_list("git", "file,g?t"));
        assert!(match_pattern_list("git", "*"));
        assert!(!match_pattern_list("git", "*,!git"));
        assert!(!match_pattern_list("git", "file"));
    }
}
