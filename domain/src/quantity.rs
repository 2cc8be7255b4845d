//! Quantities: the units one order takes, and the limits of a product's stock.

use serde::{Deserialize, Serialize};

use crate::number::NumberInput;

/// The most units of one product the warehouse keeps track of.
pub const MAX_STOCK: u32 = 1_000_000;

/// How many units one order takes: 1 to [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct Quantity(u32);

/// A quantity outside 1..=10,000. The message names no field: the caller
/// puts it under the field the quantity came in (else the page showed
/// "quantity: quantity must be ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a whole number from 1 to 10000")]
pub struct QuantityError;

impl Quantity {
    pub const MAX: Quantity = Quantity(10_000);

    pub fn new(units: u32) -> Result<Quantity, QuantityError> {
        if (1..=Self::MAX.0).contains(&units) {
            Ok(Quantity(units))
        } else {
            Err(QuantityError)
        }
    }

    /// Parses a form field: a whole number, surrounding white space allowed.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        text.trim().parse::<u32>().map_err(|_| QuantityError).and_then(Quantity::new)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for Quantity {
    type Error = QuantityError;
    fn try_from(units: u64) -> Result<Self, Self::Error> {
        u32::try_from(units).map_err(|_| QuantityError).and_then(Quantity::new)
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> u32 {
        quantity.0
    }
}

impl TryFrom<&NumberInput> for Quantity {
    type Error = QuantityError;
    /// Units of one order: a whole number from 1 to [`Quantity::MAX`] (`2`, `"2"`).
    fn try_from(number: &NumberInput) -> Result<Quantity, QuantityError> {
        number.units().and_then(|units| u32::try_from(units).ok()).ok_or(QuantityError).and_then(Quantity::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_is_one_to_ten_thousand() {
        assert!(Quantity::new(0).is_err());
        assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(10_000).map(Quantity::get), Ok(10_000));
        assert!(Quantity::new(10_001).is_err());
        assert_eq!(Quantity::parse(" 7 ").map(Quantity::get), Ok(7));
        assert!(Quantity::parse("2.5").is_err());
        assert!(Quantity::parse("-1").is_err());
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("99999999999").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("3").unwrap().get(), 3);
    }

    #[test]
    fn quantities_from_json_bodies_are_whole_numbers_in_range() {
        let json = |text: &str| serde_json::from_str::<NumberInput>(text).unwrap();
        assert_eq!(Quantity::try_from(&json("\"2\"")).map(Quantity::get), Ok(2));
        assert_eq!(Quantity::try_from(&json("3")).map(Quantity::get), Ok(3));
        assert_eq!(
            Quantity::try_from(&json("2.0")),
            Err(QuantityError),
            "a whole number is written without a fraction"
        );
        assert_eq!(Quantity::try_from(&json("1.5")), Err(QuantityError));
        assert_eq!(Quantity::try_from(&json("99999999999999999999")), Err(QuantityError));
        for quantity in ["2.5", "2.0", "0", "10001", "-1", "99999999999999999999999", " 5", "abc"] {
            assert_eq!(Quantity::try_from(&NumberInput::text(quantity)), Err(QuantityError), "{quantity}");
        }
    }
}
