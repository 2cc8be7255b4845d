//! Numbers as JSON bodies carry them: a JSON number, or, as the original
//! app's clients send them, a JSON string holding exactly one number.
//!
//! The original (FastAPI) coerced `"19.99"` and `"5"` to numbers, and its
//! React UI relies on it. A string is a number here when it is written
//! exactly as a JSON number without exponent would be: an optional `-`,
//! digits without a superfluous leading zero, and optionally `.` and at
//! least one digit. So `"5"`, `"19.99"` and `"-1"` are numbers (the last one
//! refused later as negative, naming its field); `" 5"`, `"+5"`, `"5."`,
//! `".5"`, `"05"`, `"1e3"`, `""` and `"abc"` are not. The rules of each
//! field (range, decimals) are the same whichever way the number came.
//!
//! A leaf: it knows only text. Each field's type reads its own number
//! (`Cents` in [`crate::money`], `Quantity` in [`crate::quantity`]).

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A number field of a JSON body before its field's rules are applied:
/// kept as decimal text, so that no float ever touches an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberInput(Input);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    /// A JSON integer (`5`, `-3`).
    Integer(String),
    /// A JSON number with a fraction or an exponent (`19.99`, `2.0`, `1e3`),
    /// as the shortest decimal text that reads back as the same value.
    Decimal(String),
    /// A JSON string, whatever it holds.
    Text(String),
}

/// Whether `text` is exactly a JSON number without exponent.
fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && (whole == "0" || !whole.starts_with('0')) && fraction.is_none_or(digits)
}

impl NumberInput {
    /// A number as a JSON string would carry it (`"19.99"`).
    pub fn text(text: impl Into<String>) -> NumberInput {
        NumberInput(Input::Text(text.into()))
    }

    /// The decimal text of the number, or `None` when it is a string that
    /// does not hold exactly one.
    pub fn decimal(&self) -> Option<&str> {
        match &self.0 {
            Input::Integer(text) | Input::Decimal(text) => Some(text),
            Input::Text(text) => is_number(text).then_some(text.as_str()),
        }
    }

    /// The text of a whole number written without a fraction (`2`, `"2"`,
    /// `"-2"`); `None` for anything else, `2.0` and `"2.5"` included.
    pub fn whole(&self) -> Option<&str> {
        match &self.0 {
            Input::Integer(text) => Some(text),
            Input::Decimal(_) => None,
            Input::Text(text) => (is_number(text) && !text.contains('.')).then_some(text.as_str()),
        }
    }

    /// The number as a whole number of units from 0 up, when it is one
    /// that fits in a `u64`.
    pub fn units(&self) -> Option<u64> {
        self.whole()?.parse().ok()
    }
}

impl From<u64> for NumberInput {
    fn from(value: u64) -> NumberInput {
        NumberInput(Input::Integer(value.to_string()))
    }
}

impl<'de> Deserialize<'de> for NumberInput {
    /// Takes any JSON number or string; the field's rules judge it later, so
    /// that a bad value is refused with its field's own message.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NumberInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a string holding exactly one")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumberInput, E> {
                Ok(NumberInput(Input::Integer(v.to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumberInput, E> {
                Ok(NumberInput(Input::Integer(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<NumberInput, E> {
                // Rust prints the shortest text that reads back as the same
                // f64, and never with an exponent: 19.99 stays "19.99".
                if v.is_finite() {
                    Ok(NumberInput(Input::Decimal(format!("{v}"))))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumberInput, E> {
                Ok(NumberInput(Input::Text(v.to_string())))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> NumberInput {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn strings_holding_exactly_a_number_are_numbers() {
        for (text, decimal) in [("\"19.99\"", "19.99"), ("\"0\"", "0"), ("\"0.5\"", "0.5"), ("\"-1\"", "-1")] {
            assert_eq!(json(text).decimal(), Some(decimal), "{text}");
        }
        assert_eq!(json("\"5\"").units(), Some(5));
        assert_eq!(json("\"-1\"").whole(), Some("-1"));
        assert_eq!(json("\"-1\"").units(), None, "negative");
        assert_eq!(json("\"2.5\"").whole(), None, "not whole");
    }

    #[test]
    fn anything_else_in_a_string_is_not_a_number() {
        for text in [
            "", " 5", "5 ", "+5", "5.", ".5", "05", "00.5", "1e3", "1E3", "abc", "0x10", "1,5", "- 1", "--1", "١",
            "NaN", "Infinity",
        ] {
            let input = NumberInput::text(text);
            assert_eq!(input.decimal(), None, "{text:?}");
            assert_eq!(input.whole(), None, "{text:?}");
            assert_eq!(input.units(), None, "{text:?}");
        }
    }

    #[test]
    fn json_numbers_keep_their_text() {
        assert_eq!(json("19.99").decimal(), Some("19.99"));
        assert_eq!(json("2.0").decimal(), Some("2"), "the shortest text of the same value");
        assert_eq!(json("2.0").whole(), None, "a whole number is written without a fraction");
        assert_eq!(json("3").units(), Some(3));
        assert_eq!(json("-3").units(), None);
        assert_eq!(json("99999999999999999999").units(), None, "past u64");
        for other in ["true", "null", "[]", "{}"] {
            assert!(serde_json::from_str::<NumberInput>(other).is_err(), "{other}");
        }
    }
}
