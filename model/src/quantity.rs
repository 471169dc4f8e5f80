//! Exact resource quantities (`500m`, `1Gi`, `1.5`, `2e3`).
//!
//! Kubernetes stores quantities as arbitrary-precision decimals and rounds
//! anything finer than a nano-unit up. Driftless keeps a quantity as a whole
//! number of nano-units in an `i128`, which is exact for every value the
//! grammar can express up to about 1.7e29 units (an exbibyte is 1.2e18) and
//! makes comparisons and sums plain integer arithmetic.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// How the quantity was written, which decides how it is printed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Powers of 1024: `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`.
    BinarySI,
    /// Powers of 1000 and plain numbers: `n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSI,
    /// Scientific notation: `1e3`, `2E-3`.
    DecimalExponent,
}

/// An exact quantity with the format it was written in.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not follow the quantity grammar.
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Syntax,
    /// The value is too large or too precise to hold exactly.
    #[error("quantity is too large")]
    TooLarge,
}

impl Quantity {
    /// The value in nano-units (`1` is 10^9, `1m` is 10^6).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up as Kubernetes' `MilliValue` does.
    pub fn millis(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in whole units, rounded up as Kubernetes' `Value` does.
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_UNIT)
    }

    /// The format the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Builds a quantity of whole units in the given format.
    pub fn from_units(units: i64, format: Format) -> Quantity {
        Quantity { nanos: i128::from(units) * NANOS_PER_UNIT, format }
    }

    /// The canonical text Kubernetes prints for this quantity: the largest
    /// suffix of the written format that keeps the number whole, so that
    /// `1000m` reads `1` and `1024Mi` reads `1Gi`.
    pub fn canonical(&self) -> String {
        let mut format = self.format;
        if format == Format::BinarySI {
            // Kubernetes prints small or fractional binary quantities as
            // decimal, to avoid rounding.
            let whole = self.nanos % NANOS_PER_UNIT == 0;
            if !whole || self.nanos.abs() < 1024 * NANOS_PER_UNIT {
                format = Format::DecimalSI;
            }
        }
        if self.nanos == 0 {
            return "0".to_owned();
        }
        match format {
            Format::BinarySI => {
                let units = self.nanos / NANOS_PER_UNIT;
                let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
                let mut power = 0;
                let mut mantissa = units;
                while power + 1 < suffixes.len() && mantissa % 1024 == 0 {
                    mantissa /= 1024;
                    power += 1;
                }
                format!("{mantissa}{}", suffixes[power])
            }
            Format::DecimalSI | Format::DecimalExponent => {
                // Find the largest exponent (a multiple of 3, from -9) for
                // which the mantissa is whole.
                let mut exponent = -9i32;
                let mut mantissa = self.nanos;
                // SI suffixes end at E (10^18); scientific notation does not.
                while (exponent < 18 || format == Format::DecimalExponent) && mantissa % 1000 == 0 {
                    mantissa /= 1000;
                    exponent += 3;
                }
                if format == Format::DecimalExponent {
                    return if exponent == 0 { mantissa.to_string() } else { format!("{mantissa}e{exponent}") };
                }
                let suffix = match exponent {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    0 => "",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    _ => "E",
                };
                format!("{mantissa}{suffix}")
            }
        }
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 { q + 1 } else { q }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let mut pos = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &text[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &text[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(QuantityError::Syntax);
        }
        let (format, scale) = parse_suffix(&text[pos..])?;

        // Leading zeros carry no precision; dropping them keeps long but
        // ordinary numbers (0.000001) within the digit budget.
        let int_digits = int_digits.trim_start_matches('0');
        let frac_digits = frac_digits.trim_end_matches('0');
        // Held exactly while the digits fit an i128; past that, too large.
        // (A bound on the count of digits instead refused what this type
        // itself prints: `52012.500000000000090000Ei` is 32 digits of
        // nano-units. Found by fuzz/fuzz_targets/quantity.rs.)
        let mut mantissa: i128 = 0;
        for d in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa.checked_mul(10).and_then(|m| m.checked_add(i128::from(d - b'0'))).ok_or(QuantityError::TooLarge)?;
        }
        // value = mantissa * 10^-frac * scale; in nanos multiply by 10^9.
        let ten_exp = scale.ten_exp + 9 - frac_digits.len() as i32;
        let mut nanos = mantissa.checked_mul(scale.factor).ok_or(QuantityError::TooLarge)?;
        if ten_exp >= 0 {
            let pow = checked_pow10(ten_exp as u32).ok_or(QuantityError::TooLarge)?;
            nanos = nanos.checked_mul(pow).ok_or(QuantityError::TooLarge)?;
        } else {
            // Finer than a nano-unit: Kubernetes rounds up.
            nanos = match checked_pow10((-ten_exp) as u32) {
                Some(pow) => div_ceil(nanos, pow),
                None => i128::from(nanos > 0),
            };
        }
        // Headroom so that sums of quantities (a node's requests) cannot
        // overflow.
        if nanos > i128::MAX / 4 {
            return Err(QuantityError::TooLarge);
        }
        Ok(Quantity { nanos: if negative { -nanos } else { nanos }, format })
    }
}

struct Scale {
    factor: i128,
    ten_exp: i32,
}

fn parse_suffix(suffix: &str) -> Result<(Format, Scale), QuantityError> {
    let decimal = |ten_exp| Ok((Format::DecimalSI, Scale { factor: 1, ten_exp }));
    let binary = |power: u32| Ok((Format::BinarySI, Scale { factor: 1i128 << (10 * power), ten_exp: 0 }));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E']).ok_or(QuantityError::Syntax)?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Syntax);
            }
            let ten_exp: i32 = rest.parse().map_err(|_| QuantityError::Syntax)?;
            Ok((Format::DecimalExponent, Scale { factor: 1, ten_exp }))
        }
    }
}

fn checked_pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_exact_values() {
        assert_eq!(q("500m").millis(), 500);
        assert_eq!(q("1").millis(), 1000);
        assert_eq!(q("1.5").millis(), 1500);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1.5Gi").value(), 3 << 29);
        assert_eq!(q("2e3").value(), 2000);
        assert_eq!(q("1E-3").millis(), 1);
        assert_eq!(q("100n").nanos(), 100);
        assert_eq!(q(".5").millis(), 500);
        assert_eq!(q("5.").value(), 5);
        assert_eq!(q("+1k").value(), 1000);
        assert_eq!(q("-1k").value(), -1000);
        assert_eq!(q("1Ei").value(), 1 << 60);
    }

    #[test]
    fn equal_values_compare_equal() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1024Mi"), q("1Gi"));
        assert_eq!(q("1e3"), q("1k"));
        assert!(q("1Gi") > q("1G"));
    }

    #[test]
    fn canonical_forms_match_kubernetes() {
        for (input, canonical) in [
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.1", "100m"),
            ("2000", "2k"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("1e3", "1e3"),
            ("1e21", "1e21"),
            ("0", "0"),
            ("0Gi", "0"),
            ("0.0001", "100u"),
        ] {
            assert_eq!(q(input).canonical(), canonical, "{input}");
        }
    }

    #[test]
    fn rounds_sub_nano_values_up() {
        assert_eq!(q("0.1n").nanos(), 1);
        assert_eq!(q("1e-12").nanos(), 1);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "m", "1.2.3", "1Z", "1 Gi", "Gi", "1e", "1e+", "1kk", "--1", "1e1000", "0x10"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} should not parse");
        }
        assert!(matches!("9".repeat(40).parse::<Quantity>(), Err(QuantityError::TooLarge)));
        // Found by fuzzing (fuzz/fuzz_targets/quantity.rs): what parses
        // prints in a form that parses to the same quantity.
        for text in [
            "006666666666666666446666667.66666",
            "52012.500000000000090000Ei",
            "12345678901234567890123456",
            "0.000000001",
            "1e-9",
            "999999999999999999999999999.999m",
        ] {
            let quantity: Quantity = text.parse().unwrap();
            let printed = quantity.to_string();
            assert_eq!(printed.parse::<Quantity>().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}")), quantity, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<Quantity>();
        }

        #[test]
        fn canonical_text_parses_to_the_same_value(units in -1_000_000_000i64..1_000_000_000, milli in 0u32..1000, bin in any::<bool>()) {
            let text = if bin { format!("{}Ki", units.unsigned_abs()) } else { format!("{units}.{milli:03}") };
            let value = q(&text);
            prop_assert_eq!(q(&value.canonical()), value);
        }
    }
}
