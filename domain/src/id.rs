//! Product and order ids: ULIDs, 26 characters of Crockford base32 (no I,
//! L, O or U), the first at most `7` (128 bits).
//!
//! ULIDs are case-insensitive (their spec); an [`Id`] is parsed once where
//! text comes in (a URL, a form, a JSON body, a stream entry, a hash field)
//! and is upper case from then on, so `01arz3...` names the same order as
//! `01ARZ3...` everywhere. Its lowest 16 bits name the partition it lives in.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The characters of an id.
const LENGTH: usize = 26;
/// The shortest start of an id the order search looks up: 8 characters
/// narrow it to about a second of orders (the first 10 are the time).
pub const MIN_PREFIX: usize = 8;

/// A product or order id: a ULID in upper case. Reads as a `&str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

/// Text that is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an id: ids are 26 characters of Crockford base32 (a ULID)")]
pub struct NotAnId {
    /// The text, cut to a length a log line can hold.
    pub text: String,
}

impl Id {
    /// Parses `text` in either letter case.
    pub fn parse(text: &str) -> Result<Id, NotAnId> {
        if is_id(text) {
            Ok(Id(text.to_ascii_uppercase()))
        } else {
            Err(NotAnId { text: text.chars().take(LENGTH + 8).collect() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowest 16 of its 128 bits, where ids made here carry the index
    /// of their partition (the last four characters hold 20 bits).
    pub fn partition_bits(&self) -> u16 {
        let last_four = self.0.bytes().skip(LENGTH - 4).fold(0_u32, |bits, c| (bits << 5) | crockford_value(c));
        (last_four & 0xFFFF) as u16
    }
}

/// The value of one Crockford base32 character of a valid, upper-case id.
fn crockford_value(c: u8) -> u32 {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    ALPHABET.iter().position(|a| *a == c).unwrap_or(0) as u32
}

impl Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Ids hash and compare as their text, so a map keyed by ids is looked up by text too.
impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for Id {
    type Err = NotAnId;
    fn from_str(text: &str) -> Result<Id, NotAnId> {
        Id::parse(text)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Id {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Checked like [`Id::parse`]: a JSON body cannot smuggle in a non-id.
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Id::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A ULID, either letter case on the way in, upper case on the way out."))
            .min_length(Some(LENGTH))
            .max_length(Some(LENGTH))
            .examples(["01JD3V6Q8ZK0M9X4W2T7Y5B1CE"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Id {}

/// Whether `text` has the shape of one of our ids (either letter case).
pub fn is_id(text: &str) -> bool {
    text.len() == LENGTH && is_crockford_start(text)
}

/// Whether `text` is the start of an id, [`MIN_PREFIX`] characters or more
/// (a whole id too), either letter case: what an order search by id takes.
pub fn is_id_prefix(text: &str) -> bool {
    (MIN_PREFIX..=LENGTH).contains(&text.len()) && is_crockford_start(text)
}

/// Crockford base32 (no I, L, O or U) whose first character is at most `7`.
fn is_crockford_start(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"iloIlLoOuU".contains(&b)))
        && text.as_bytes().first().is_some_and(|first| *first <= b'7')
}

#[cfg(test)]
mod tests {
    use super::{is_id, is_id_prefix, Id};

    #[test]
    fn ids_are_26_crockford_characters() {
        assert!(is_id("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"));
        assert!(is_id("01jd3v6q8zk0m9x4w2t7y5b1ca"));
        assert!(is_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
        for bad in [
            "",
            "nope",
            "../../etc",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1C",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1CAX",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1CU",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1C-",
        ] {
            assert!(!is_id(bad), "{bad}");
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_id_is_upper_case_whatever_case_it_came_in() {
        let id = Id::parse("01jd3v6q8zk0m9x4w2t7y5b1ca").unwrap();
        assert_eq!(id, "01JD3V6Q8ZK0M9X4W2T7Y5B1CA");
        assert_eq!(id, Id::parse("01JD3V6Q8ZK0M9X4W2T7Y5B1CA").unwrap());
        assert_eq!(id.to_string(), "01JD3V6Q8ZK0M9X4W2T7Y5B1CA");
        assert_eq!(&id[..2], "01", "reads as text");
    }

    #[test]
    fn json_holds_an_id_as_text_and_refuses_a_non_id() {
        let id: Id = serde_json::from_str("\"01jd3v6q8zk0m9x4w2t7y5b1ca\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"01JD3V6Q8ZK0M9X4W2T7Y5B1CA\"");
        let error = serde_json::from_str::<Id>("\"../../etc\"").unwrap_err().to_string();
        assert!(error.contains("is not an id"), "{error}");
    }

    #[test]
    fn the_partition_bits_are_the_lowest_sixteen() {
        // ...Z is 31 in the lowest 5 bits; ...ZZZZ is 20 bits of ones.
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y50000").unwrap().partition_bits(), 0);
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y50001").unwrap().partition_bits(), 1);
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y5000Z").unwrap().partition_bits(), 31);
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y50010").unwrap().partition_bits(), 32);
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y5ZZZZ").unwrap().partition_bits(), 0xFFFF);
        assert_eq!(Id::parse("01JD3V6Q8ZK0M9X4W2T7Y5Z000").unwrap().partition_bits(), 0x8000);
    }

    #[test]
    fn an_id_prefix_is_the_start_of_an_id_of_eight_characters_or_more() {
        assert!(is_id_prefix("01JD3V6Q"));
        assert!(is_id_prefix("01jd3v6q8zk"));
        assert!(is_id_prefix("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"), "a whole id");
        for bad in ["01JD3V6", "", "Keyboard", "81JD3V6Q", "01JD3V6Q-", "01JD3V6QU", "01JD3V6Q8ZK0M9X4W2T7Y5B1CAX"] {
            assert!(!is_id_prefix(bad), "{bad}");
        }
    }
}
