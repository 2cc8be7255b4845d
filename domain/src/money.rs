//! Money as integer cents.
//!
//! Floating point never touches an amount inside the system: amounts are
//! parsed from their decimal text into cents and formatted back. The JSON
//! form is a decimal number (`12.5`), as the original API used.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::number::NumberInput;

/// The largest amount the shop accepts for one price: 1,000,000.00.
pub const MAX_PRICE: Cents = Cents(100_000_000);

/// A non-negative amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub u64);

/// Why a text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("must have at most 2 decimal places")]
    TooManyDecimals,
    #[error("must be at most {MAX_PRICE}")]
    TooLarge,
    #[error("is too large")]
    Overflow,
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Parses a decimal amount such as `12`, `12.5` or `12.34` (any amount;
    /// the cap on a product's price is [`MAX_PRICE`], checked where prices are set).
    ///
    /// Accepts an optional leading `+`, surrounding white space and exponent-free
    /// notation only; rejects more than two decimals rather than rounding, so a
    /// typo never silently changes a price.
    pub fn parse(text: &str) -> Result<Cents, MoneyError> {
        let text = text.trim();
        let text = text.strip_prefix('+').unwrap_or(text);
        if let Some(rest) = text.strip_prefix('-') {
            // Name the real problem: "-5" is a negative price, "-x" is not a number.
            return match Cents::parse(rest) {
                Err(MoneyError::NotANumber) => Err(MoneyError::NotANumber),
                _ if rest.starts_with(['-', '+']) => Err(MoneyError::NotANumber),
                _ => Err(MoneyError::Negative),
            };
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
            return Err(MoneyError::NotANumber);
        }
        // Trailing zeros beyond the cents do not add precision: 1.500 is 1.50.
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        let whole = whole.trim_start_matches('0');
        // Amounts up to 10^12 units: far above any order total, far below u64 overflow.
        if whole.len() > 12 {
            return Err(MoneyError::Overflow);
        }
        let units: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| MoneyError::Overflow)? };
        let mut cents_text = fraction.to_string();
        while cents_text.len() < 2 {
            cents_text.push('0');
        }
        let cents: u64 = cents_text.parse().map_err(|_| MoneyError::NotANumber)?;
        Ok(Cents(units * 100 + cents))
    }

    /// Converts a JSON number; its shortest decimal text is what the client wrote.
    pub fn from_f64(value: f64) -> Result<Cents, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::NotANumber);
        }
        if value < 0.0 {
            return Err(MoneyError::Negative);
        }
        if value > 1e13 {
            return Err(MoneyError::Overflow);
        }
        // Rust prints the shortest text that reads back as the same f64, so
        // 19.99 prints as "19.99" and parses exactly; 0.1 + 0.2 has 17 digits
        // and is refused as too precise rather than rounded.
        Cents::parse(&format!("{value}"))
    }

    /// The amount as a JSON number (exact for every amount up to [`MAX_PRICE`] and far beyond).
    pub fn as_f64(self) -> f64 {
        // Going through the decimal text keeps 19.99 as the f64 nearest 19.99.
        format!("{self}").parse().unwrap_or(f64::NAN)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: u64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }
}

impl fmt::Display for Cents {
    /// Formats as a decimal with exactly two places: `12.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Cents {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cents::parse(s)
    }
}

impl TryFrom<&NumberInput> for Cents {
    type Error = MoneyError;
    /// An amount: a decimal number with at most 2 decimals (`12`, `"12.50"`).
    fn try_from(number: &NumberInput) -> Result<Cents, MoneyError> {
        Cents::parse(number.decimal().ok_or(MoneyError::NotANumber)?)
    }
}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Cents {
    /// Accepts a JSON number (`12.5`) or a string holding exactly one
    /// (`"12.50"`; see [`NumberInput`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Cents::try_from(&NumberInput::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_decimal_amounts() {
        assert_eq!(Cents::parse("12"), Ok(Cents(1200)));
        assert_eq!(Cents::parse("12.5"), Ok(Cents(1250)));
        assert_eq!(Cents::parse("12.34"), Ok(Cents(1234)));
        assert_eq!(Cents::parse("0.07"), Ok(Cents(7)));
        assert_eq!(Cents::parse(".5"), Ok(Cents(50)));
        assert_eq!(Cents::parse("3."), Ok(Cents(300)));
        assert_eq!(Cents::parse(" +1.500 "), Ok(Cents(150)));
        assert_eq!(Cents::parse("000001.10"), Ok(Cents(110)));
        assert_eq!(Cents::parse("0"), Ok(Cents::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_price() {
        assert_eq!(Cents::parse(""), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("."), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("1e3"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("1.2.3"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("-1"), Err(MoneyError::Negative));
        assert_eq!(Cents::parse("-"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("1.234"), Err(MoneyError::TooManyDecimals));
        assert_eq!(Cents::parse("99999999999999999999999"), Err(MoneyError::Overflow));
        assert_eq!(Cents::parse("1000000"), Ok(MAX_PRICE));
        assert_eq!(Cents::parse("120000000000.00"), Ok(Cents(12_000_000_000_000)), "large totals parse");
    }

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(Cents(0).to_string(), "0.00");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(1250).to_string(), "12.50");
        assert_eq!(Cents(123456).to_string(), "1234.56");
    }

    #[test]
    fn amounts_from_json_bodies_follow_the_rules_of_amounts() {
        let text = NumberInput::text;
        for (text, cents) in [("19.99", 1999), ("0", 0), ("0.5", 50), ("12", 1200), ("1.500", 150)] {
            assert_eq!(Cents::try_from(&NumberInput::text(text)), Ok(Cents(cents)), "{text}");
        }
        assert_eq!(Cents::try_from(&text("-1")), Err(MoneyError::Negative));
        assert_eq!(Cents::try_from(&text("1.234")), Err(MoneyError::TooManyDecimals));
        assert_eq!(Cents::try_from(&text("99999999999999999999999")), Err(MoneyError::Overflow));
        assert_eq!(Cents::try_from(&text(" 5")), Err(MoneyError::NotANumber));
        let json = |text: &str| serde_json::from_str::<NumberInput>(text).unwrap();
        assert_eq!(Cents::try_from(&json("19.99")), Ok(Cents(1999)));
        assert_eq!(Cents::try_from(&json("20")), Ok(Cents(2000)));
        assert_eq!(Cents::try_from(&json("-5")), Err(MoneyError::Negative));
        assert_eq!(Cents::try_from(&json("0.001")), Err(MoneyError::TooManyDecimals));
        assert_eq!(Cents::try_from(&json("1e300")), Err(MoneyError::Overflow));
    }

    #[test]
    fn json_numbers_round_trip_exactly() {
        for cents in [0, 1, 10, 99, 1999, 2998, 123_456_789, MAX_PRICE.0] {
            let json = serde_json::to_string(&Cents(cents)).unwrap();
            assert_eq!(serde_json::from_str::<Cents>(&json).unwrap(), Cents(cents), "{json}");
        }
        assert_eq!(serde_json::to_string(&Cents(1250)).unwrap(), "12.5");
        assert_eq!(serde_json::from_str::<Cents>("19.99").unwrap(), Cents(1999));
        assert_eq!(serde_json::from_str::<Cents>("\"19.99\"").unwrap(), Cents(1999));
        assert!(serde_json::from_str::<Cents>("\" 19.99\"").is_err(), "a string holds exactly a number");
        assert_eq!(serde_json::from_str::<Cents>("20").unwrap(), Cents(2000));
        assert!(serde_json::from_str::<Cents>("0.001").is_err());
        assert!(serde_json::from_str::<Cents>("-5").is_err());
        assert!(serde_json::from_str::<Cents>("true").is_err());
    }
}
