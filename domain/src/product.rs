//! Products in the warehouse and the rules for adding one.

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::money::{Cents, MoneyError, MAX_PRICE};
use crate::number::NumberInput;
use crate::quantity::MAX_STOCK;

/// The longest product name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 200;

/// A product as stored and as the REST API shows it (the original's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    /// A ULID: unique and sortable by creation time.
    pub id: Id,
    #[cfg_attr(feature = "openapi", schema(example = "Oak chair"))]
    pub name: String,
    /// Unit price, a decimal number with at most 2 decimals.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 19.99))]
    pub price: Cents,
    /// Units in stock; never below zero.
    pub quantity: u32,
}

/// Whether `c` is of Unicode's general category Cf (format): invisible
/// characters that change how text around them shows, like the bidi
/// overrides (U+202E turns "Oak chair" around) and zero-width spaces and
/// joiners. The ranges are those of Unicode 15.1.
pub fn is_format_character(c: char) -> bool {
    const CF: [(u32, u32); 21] = [
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    CF.iter().any(|(first, last)| (*first..=*last).contains(&c))
}

/// A validated request to add a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: String,
    pub price: Cents,
    pub quantity: u32,
}

/// Why a new product was refused, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProductError {
    pub field: &'static str,
    pub message: String,
}

impl ProductError {
    fn new(field: &'static str, message: impl Into<String>) -> ProductError {
        ProductError { field, message: message.into() }
    }
}

impl NewProduct {
    /// Validates already-typed values (the JSON API's path).
    pub fn new(name: &str, price: Cents, quantity: u64) -> Result<NewProduct, ProductError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ProductError::new("name", "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(ProductError::new("name", format!("must be at most {MAX_NAME_CHARS} characters")));
        }
        if name.chars().any(char::is_control) {
            return Err(ProductError::new("name", "must not contain control characters"));
        }
        if let Some(format) = name.chars().find(|c| is_format_character(*c)) {
            return Err(ProductError::new(
                "name",
                format!(
                    "must not contain invisible formatting characters (found U+{:04X}: bidi overrides and \
                     zero-width characters make one name look like another)",
                    u32::from(format)
                ),
            ));
        }
        if price > MAX_PRICE {
            return Err(ProductError::new("price", MoneyError::TooLarge.to_string()));
        }
        let quantity = u32::try_from(quantity).ok().filter(|q| *q <= MAX_STOCK).ok_or_else(stock_out_of_range)?;
        Ok(NewProduct { name: name.to_string(), price, quantity })
    }

    /// Validates the fields of a JSON body (the REST API's path), each a
    /// number or a string holding exactly one, with the same rules.
    pub fn from_json(name: &str, price: &NumberInput, quantity: &NumberInput) -> Result<NewProduct, ProductError> {
        let price = Cents::try_from(price).map_err(|e| ProductError::new("price", e.to_string()))?;
        let quantity = quantity.units().ok_or_else(stock_out_of_range)?;
        NewProduct::new(name, price, quantity)
    }

    /// Validates the text of a form (the UI's path), with the same rules.
    pub fn parse(name: &str, price: &str, quantity: &str) -> Result<NewProduct, ProductError> {
        let price = Cents::parse(price).map_err(|e| ProductError::new("price", e.to_string()))?;
        let quantity = quantity.trim().parse::<u64>().map_err(|_| stock_out_of_range())?;
        NewProduct::new(name, price, quantity)
    }
}

/// The stock of a new product is out of range (or not a whole number).
fn stock_out_of_range() -> ProductError {
    ProductError::new("quantity", format!("must be a whole number from 0 to {MAX_STOCK}"))
}

/// Units added to a product's stock by a restock, validated: 1 to [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restock(u32);

impl Restock {
    pub fn new(units: u64) -> Result<Restock, ProductError> {
        u32::try_from(units).ok().filter(|u| (1..=MAX_STOCK).contains(u)).map(Restock).ok_or_else(Restock::out_of_range)
    }

    /// Validates the text of a form, with the same rule.
    pub fn parse(units: &str) -> Result<Restock, ProductError> {
        units.trim().parse::<u64>().map_err(|_| Restock::out_of_range()).and_then(Restock::new)
    }

    fn out_of_range() -> ProductError {
        ProductError::new("quantity", format!("must be a whole number from 1 to {MAX_STOCK}"))
    }

    pub fn units(self) -> u32 {
        self.0
    }

    /// The stock after adding these units to `stock`, or an error when it
    /// would pass [`MAX_STOCK`]. (The store applies the same rule atomically.)
    pub fn apply(self, stock: u32) -> Result<u32, ProductError> {
        stock
            .checked_add(self.0)
            .filter(|s| *s <= MAX_STOCK)
            .ok_or_else(|| ProductError::new("quantity", format!("stock would pass {MAX_STOCK} (it is {stock} now)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restock_adds_between_one_and_the_stock_ceiling() {
        assert_eq!(Restock::parse(" 5 ").unwrap().apply(3), Ok(8));
        assert_eq!(Restock::new(1).unwrap().apply(MAX_STOCK - 1), Ok(MAX_STOCK));
        assert_eq!(Restock::new(2).unwrap().apply(MAX_STOCK - 1).unwrap_err().field, "quantity");
        assert_eq!(Restock::new(MAX_STOCK as u64).unwrap().apply(0), Ok(MAX_STOCK));
        for bad in [0, MAX_STOCK as u64 + 1, u64::MAX] {
            assert_eq!(Restock::new(bad).unwrap_err().field, "quantity", "{bad}");
        }
        for bad in ["", "-1", "1.5", "ten"] {
            assert!(Restock::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_a_plain_product_and_trims_its_name() {
        let product = NewProduct::parse("  Chair ", "12.50", "3").unwrap();
        assert_eq!(product, NewProduct { name: "Chair".into(), price: Cents(1250), quantity: 3 });
        assert!(NewProduct::parse("Free sample", "0", "0").is_ok());
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(NewProduct::parse("  ", "1", "1").unwrap_err().field, "name");
        assert_eq!(NewProduct::parse(&"x".repeat(201), "1", "1").unwrap_err().field, "name");
        assert!(NewProduct::parse(&"é".repeat(200), "1", "1").is_ok(), "limit counts characters, not bytes");
        assert_eq!(NewProduct::parse("a\u{0}b", "1", "1").unwrap_err().field, "name");
        for invisible in ["\u{202E}riahc kaO", "Oak\u{200B}chair", "Oak\u{2066}chair", "\u{FEFF}Oak", "Oak\u{AD}chair"]
        {
            let error = NewProduct::parse(invisible, "1", "1").unwrap_err();
            assert_eq!(error.field, "name", "{invisible:?}");
            assert!(error.message.contains("invisible formatting characters"), "{}", error.message);
        }
        assert!(NewProduct::parse("Café crème 🪑 Ω", "1", "1").is_ok(), "letters, accents and symbols are fine");
        assert_eq!(NewProduct::parse("Chair", "-1", "1").unwrap_err().field, "price");
        assert_eq!(NewProduct::parse("Chair", "1.999", "1").unwrap_err().field, "price");
        assert_eq!(NewProduct::parse("Chair", "", "1").unwrap_err().field, "price");
        assert_eq!(NewProduct::parse("Chair", "1", "-1").unwrap_err().field, "quantity");
        assert_eq!(NewProduct::parse("Chair", "1", "1.5").unwrap_err().field, "quantity");
        assert_eq!(NewProduct::new("Chair", Cents(1), 1_000_001).unwrap_err().field, "quantity");
        assert_eq!(NewProduct::new("Chair", Cents(MAX_PRICE.0 + 1), 1).unwrap_err().field, "price");
        assert_eq!(
            NewProduct::parse("Chair", "1000000.01", "1").unwrap_err().to_string(),
            "price: must be at most 1000000.00"
        );
    }

    #[test]
    fn json_bodies_take_numbers_or_strings_holding_exactly_one() {
        let text = NumberInput::text;
        let chair = NewProduct::from_json("Chair", &text("19.99"), &text("5")).unwrap();
        assert_eq!(chair, NewProduct { name: "Chair".into(), price: Cents(1999), quantity: 5 });
        assert_eq!(NewProduct::from_json("Chair", &text("19.99"), &NumberInput::from(5)), Ok(chair));
        for (price, quantity, field) in [
            ("1e3", "1", "price"),
            (" 5", "1", "price"),
            ("", "1", "price"),
            ("abc", "1", "price"),
            ("-1", "1", "price"),
            ("1.234", "1", "price"),
            ("1000000.01", "1", "price"),
            ("99999999999999999999999", "1", "price"),
            ("1", "2.5", "quantity"),
            ("1", "1e3", "quantity"),
            ("1", " 5", "quantity"),
            ("1", "", "quantity"),
            ("1", "abc", "quantity"),
            ("1", "-1", "quantity"),
            ("1", "1000001", "quantity"),
            ("1", "99999999999999999999999", "quantity"),
        ] {
            let error = NewProduct::from_json("Chair", &text(price), &text(quantity)).unwrap_err();
            assert_eq!(error.field, field, "{price:?} {quantity:?}");
        }
    }

    #[test]
    fn error_message_reads_as_a_sentence() {
        let error = NewProduct::parse("Chair", "abc", "1").unwrap_err();
        assert_eq!(error.to_string(), "price: must be a number");
    }
}
