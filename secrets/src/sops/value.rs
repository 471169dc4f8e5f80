//! Typed values as SOPS (Go, go-yaml v3) has them: how a plaintext YAML
//! scalar is typed, the bytes SOPS feeds the MAC and the cipher for each
//! type, and how a decrypted value is written back as one line of YAML.
//!
//! The MAC covers unencrypted values too, so typing must match go-yaml's
//! decoding into `interface{}` exactly (YAML 1.2 booleans, Go's base-0
//! integers, its float grammar, timestamps kept as strings). No I/O here.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::ScalarStyle;

use super::tree::Scalar;

/// A leaf value of the SOPS tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing: SOPS neither encrypts nor MACs it.
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A timestamp, as Go's `time.MarshalText` writes it (RFC 3339, nanoseconds).
    Time(String),
}

impl Value {
    /// The bytes SOPS hashes into the MAC and encrypts (its `ToBytes`):
    /// `None` for null.
    pub(crate) fn bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            Value::Null => return None,
            Value::Str(s) | Value::Time(s) => s.as_bytes().to_vec(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Float(f) => go_float_f(*f).into_bytes(),
            Value::Bool(b) => if *b { "True" } else { "False" }.as_bytes().to_vec(),
        })
    }

    /// The `type:` SOPS records for an encrypted value.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null | Value::Str(_) => "str",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time",
        }
    }

    /// The value as one line of YAML that reads back as the same value, the
    /// way `sops --decrypt` writes it: strings double-quoted and escaped
    /// (valid JSON too), numbers and booleans plain.
    pub(crate) fn to_yaml(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Str(s) => quote(s),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => {
                if f.is_nan() {
                    ".nan".to_owned()
                } else if f.is_infinite() {
                    if *f > 0.0 { ".inf" } else { "-.inf" }.to_owned()
                } else {
                    go_float_g(*f)
                }
            }
            Value::Bool(b) => b.to_string(),
            Value::Time(t) => t.clone(),
        }
    }

    /// The value of a decrypted `type:`, as SOPS's cipher parses it.
    pub(crate) fn from_decrypted(kind: &str, plaintext: Vec<u8>) -> Result<Value, String> {
        let text = String::from_utf8(plaintext).map_err(|_| "the decrypted value is not UTF-8".to_owned())?;
        match kind {
            "str" | "bytes" => Ok(Value::Str(text)),
            "int" => go_atoi(&text).map(Value::Int).ok_or_else(|| "the decrypted value is not an int".to_owned()),
            "float" => go_parse_float(&text).map(Value::Float).ok_or_else(|| "the decrypted value is not a float".to_owned()),
            "bool" => match text.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err("the decrypted value is not a bool".to_owned()),
            },
            "time" => Ok(Value::Time(text)),
            other => Err(format!("unknown value type `{other}`")),
        }
    }
}

/// The value go-yaml v3 decodes `scalar` to, as SOPS's YAML store reads it.
pub(crate) fn of_scalar(scalar: &Scalar) -> Result<Value, String> {
    match &scalar.tag {
        Some((handle, suffix)) if handle == "tag:yaml.org,2002:" => {
            let resolved = resolve_plain(&scalar.value)?;
            match (suffix.as_str(), resolved) {
                ("str", _) => Ok(Value::Str(scalar.value.clone())),
                ("timestamp", _) => Ok(go_timestamp(&scalar.value).map_or_else(|| Value::Str(scalar.value.clone()), Value::Time)),
                ("null", v @ Value::Null) | ("bool", v @ Value::Bool(_)) | ("int", v @ Value::Int(_)) | ("float", v @ Value::Float(_)) => Ok(v),
                ("float", Value::Int(i)) => Ok(Value::Float(i as f64)),
                (tag, _) => Err(format!("a `!!{tag}` value that SOPS cannot read")),
            }
        }
        // go-yaml leaves values with other tags as strings.
        Some(_) => Ok(Value::Str(scalar.value.clone())),
        None if scalar.style == ScalarStyle::Plain => resolve_plain(&scalar.value),
        None => Ok(Value::Str(scalar.value.clone())),
    }
}

static YAML_FLOAT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("a valid regex"));

/// go-yaml v3's resolution of an untagged plain scalar.
fn resolve_plain(s: &str) -> Result<Value, String> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Ok(Value::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => Ok(go_parse_float(s).filter(|f| f.is_finite()).map_or_else(|| Value::Str(s.to_owned()), Value::Float)),
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(time) = go_timestamp(s) {
                return Ok(Value::Time(time));
            }
            let plain = s.replace('_', "");
            match go_parse_int(&plain) {
                Some(Ok(i)) => return Ok(Value::Int(i)),
                // Go decodes it as uint64, which SOPS cannot hash.
                Some(Err(())) => return Err("an integer too large for SOPS".to_owned()),
                None => {}
            }
            if let Some(f) = YAML_FLOAT.is_match(&plain).then(|| go_parse_float(&plain)).flatten().filter(|f| f.is_finite()) {
                return Ok(Value::Float(f));
            }
            Ok(Value::Str(s.to_owned()))
        }
        _ => Ok(Value::Str(s.to_owned())),
    }
}

/// go-yaml's timestamp forms (`2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00`,
/// lower-case `t`, `2006-1-2 15:4:5.999999999`), which SOPS's YAML store
/// decodes to a Go `time.Time`, written back by `time.MarshalText`.
fn go_timestamp(s: &str) -> Option<String> {
    // Every form starts with a four-digit year and a dash.
    if s.len() < 5 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) || s.as_bytes()[4] != b'-' {
        return None;
    }
    let mut fields = [s[..4].parse().ok()?, 0, 0, 0, 0, 0];
    let mut fraction = String::new();
    let mut offset = "Z".to_owned();
    let rest = &s[4..];
    let parts: Vec<&str> = rest.splitn(3, '-').collect();
    let [_, month, tail] = parts.as_slice() else { return None };
    let day_len = tail.bytes().take_while(u8::is_ascii_digit).count();
    let (day, mut tail) = tail.split_at(day_len);
    let two = |t: &str| (1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    if !rest.starts_with('-') || !two(month) || !two(day) {
        return None;
    }
    fields[1] = month.parse().ok()?;
    fields[2] = day.parse().ok()?;
    if !tail.is_empty() {
        let zoned = match tail.as_bytes()[0] {
            b'T' | b't' => true,
            b' ' => false,
            _ => return None,
        };
        let clock: Vec<&str> = tail[1..].splitn(3, ':').collect();
        let [hour, minute, second] = clock.as_slice() else { return None };
        let second_len = second.bytes().take_while(u8::is_ascii_digit).count();
        let (second, after) = second.split_at(second_len);
        if !two(hour) || !two(minute) || !two(second) {
            return None;
        }
        fields[3] = hour.parse().ok()?;
        fields[4] = minute.parse().ok()?;
        fields[5] = second.parse().ok()?;
        tail = after;
        if let Some(after_dot) = tail.strip_prefix('.') {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            fraction = after_dot[..len.min(9)].trim_end_matches('0').to_owned();
            tail = &after_dot[len..];
        }
        match (zoned, tail) {
            (false, "") => {}
            (true, "Z") => {}
            (true, zone) if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) && &zone[3..4] == ":" => {
                let (h, m) = (&zone[1..3], &zone[4..6]);
                if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
                    return None;
                }
                if h != "00" || m != "00" {
                    offset = zone.to_owned();
                }
            }
            _ => return None,
        }
    }
    let [year, month, day, hour, minute, second] = fields;
    jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    let fraction = if fraction.is_empty() { String::new() } else { format!(".{fraction}") };
    Some(format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{offset}"))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: `None` when not an integer,
/// `Some(Err)` when one that only fits a `uint64`.
fn go_parse_int(s: &str) -> Option<Result<i64, ()>> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    let value = if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() };
    Some(match value {
        Some(v) => Ok(v),
        // A negative out of range is no number at all for Go; a positive one is a uint64.
        None if negative => return None,
        None => Err(()),
    })
}

/// Go's `strconv.Atoi`.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Go's `strconv.ParseFloat(s, 64)`, for the decimal forms and the
/// infinities and NaN SOPS writes.
fn go_parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" | "+Infinity" | "Infinity" => return Some(f64::INFINITY),
        "-Inf" | "-inf" | "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    s.parse().ok()
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: what SOPS hashes and encrypts.
pub(crate) fn go_float_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display is also the shortest representation that reads back, never in exponent form.
        format!("{f}")
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which go-yaml writes floats
/// with: the exponent form when the decimal exponent is below -4 or 6 and
/// more (Go's threshold for the shortest form), else the plain digits.
fn go_float_g(f: f64) -> String {
    // `{:e}` gives the shortest digits: `1.25e-7`, `3e0`.
    let sci = format!("{f:e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else { return sci };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return go_float_f(f);
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// `s` as a double-quoted scalar, escaped so it stays on one line and reads
/// the same in YAML 1.1, YAML 1.2 and JSON.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Controls, YAML 1.1's extra line breaks, and what YAML forbids.
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> Value {
        resolve_plain(s).unwrap()
    }

    #[test]
    fn plain_scalars_are_typed_like_go_yaml_v3() {
        assert_eq!(plain("v1"), Value::Str("v1".into()));
        assert_eq!(plain("yes"), Value::Str("yes".into()));
        assert_eq!(plain("True"), Value::Bool(true));
        assert_eq!(plain("~"), Value::Null);
        assert_eq!(plain("42"), Value::Int(42));
        assert_eq!(plain("0x1F"), Value::Int(31));
        assert_eq!(plain("017"), Value::Int(15));
        assert_eq!(plain("1_000"), Value::Int(1000));
        assert_eq!(plain("08"), Value::Float(8.0));
        assert_eq!(plain("1.50"), Value::Float(1.5));
        assert_eq!(plain(".5"), Value::Float(0.5));
        assert_eq!(plain("1e400"), Value::Str("1e400".into()));
        assert_eq!(plain("2024-01-01"), Value::Time("2024-01-01T00:00:00Z".into()));
        assert_eq!(plain("2024-1-2 3:04:05.500"), Value::Time("2024-01-02T03:04:05.5Z".into()));
        assert_eq!(plain("2024-01-02t03:04:05+01:00"), Value::Time("2024-01-02T03:04:05+01:00".into()));
        assert_eq!(plain("2024-01-02T03:04:05+00:00"), Value::Time("2024-01-02T03:04:05Z".into()));
        assert_eq!(plain("2024-02-30"), Value::Str("2024-02-30".into()));
        assert_eq!(plain("2024-01-02 03:04:05 +1"), Value::Str("2024-01-02 03:04:05 +1".into()));
        assert_eq!(plain("-"), Value::Str("-".into()));
        assert!(resolve_plain("18446744073709551615").is_err());
    }

    #[test]
    fn bytes_are_sops_to_bytes() {
        assert_eq!(Value::Float(1.5).bytes().unwrap(), b"1.5");
        assert_eq!(Value::Float(3.0).bytes().unwrap(), b"3");
        assert_eq!(Value::Float(1e21).bytes().unwrap(), b"1000000000000000000000");
        assert_eq!(Value::Bool(false).bytes().unwrap(), b"False");
        assert_eq!(Value::Null.bytes(), None);
    }

    #[test]
    fn floats_are_written_like_go_yaml() {
        assert_eq!(Value::Float(0.25).to_yaml(), "0.25");
        assert_eq!(Value::Float(100000.0).to_yaml(), "100000");
        assert_eq!(Value::Float(1e6).to_yaml(), "1e+06");
        assert_eq!(Value::Float(1.25e-7).to_yaml(), "1.25e-07");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_yaml(), "-.inf");
    }

    #[test]
    fn strings_are_quoted_on_one_line() {
        assert_eq!(quote("a\"b\\c\nd\u{2028}é"), "\"a\\\"b\\\\c\\nd\\u2028é\"");
    }
}
