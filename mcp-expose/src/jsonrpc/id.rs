//! JSON-RPC ids compared by value, not by their text: a peer may re-serialise the id it was
//! sent (`"\u00e9"` for `"é"`, `1.0` for `1`), and its answer must still find its request.

/// A JSON-RPC id (or progress token, or any JSON scalar) by value: `"\u00e9"` and `"é"` are
/// one id, and so are `1`, `1.0`, `1e0`. Numbers compare exactly, at any size; [`float`]
/// is the looser match for a peer that could only say the number as a float.
///
/// [`float`]: IdKey::float
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdKey {
    String(String),
    /// A number's exact value: its significant digits and the power of ten after them.
    Number(String),
    Other(String),
}

impl IdKey {
    pub(crate) fn of(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.starts_with('"') {
            if let Ok(text) = serde_json::from_str::<String>(raw) {
                return Self::String(text);
            }
        } else if let Some(number) = exact_number(raw) {
            return Self::Number(number);
        }
        Self::Other(raw.to_owned())
    }

    /// The number as a float, for a child that could only say it as one.
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    pub(crate) fn float(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// A JSON number's exact value as `[-]DIGITSeEXP` with no leading or trailing zeros.
fn exact_number(raw: &str) -> Option<String> {
    let (negative, unsigned) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    if significant.is_empty() {
        return Some("0".to_owned());
    }
    let power = exponent
        .checked_sub(i64::try_from(frac.len()).ok()?)?
        .checked_add(i64::try_from(digits.len() - significant.len()).ok()?)?;
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{significant}e{power}"))
}

#[cfg(test)]
mod tests {
    use super::IdKey;

    #[test]
    fn ids_match_by_value() {
        let same = [
            (r#""\u00e9""#, r#""é""#),
            (r#""\/x""#, r#""/x""#),
            (r#""mx-1""#, r#""\u006dx\u002d1""#),
            ("1.0", "1"),
            ("1e2", "100"),
            ("1E+2", "100.00"),
            ("-0", "0"),
            ("0.0e5", "0"),
            ("12.5e-1", "1.25"),
            ("1.5", "15e-1"),
            ("7", " 7 "),
            ("1e400", "10E399"),
            (
                "123456789012345678901234567890",
                "1234567890123456789012345678900e-1",
            ),
        ];
        for (a, b) in same {
            assert_eq!(IdKey::of(a), IdKey::of(b), "{a} vs {b}");
        }
        let different = [
            ("1", "\"1\""),
            ("1", "2"),
            ("1", "10"),
            ("-1", "1"),
            ("0.1", "1"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567891",
            ),
            // One `f64`, two values: the key is exact; only `float()` takes them for one.
            ("0.1", "0.10000000000000001"),
            ("9007199254740993", "9007199254740992"),
        ];
        for (a, b) in different {
            assert_ne!(IdKey::of(a), IdKey::of(b), "{a} vs {b}");
        }
        assert_eq!(
            IdKey::of("0.1").float(),
            IdKey::of("0.10000000000000001").float()
        );
        assert_eq!(IdKey::of(r#""1""#).float(), None);
    }
}
